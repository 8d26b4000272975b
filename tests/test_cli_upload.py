"""`signal-uploader upload` end to end: the real CLI, the emulator, real HTTP on loopback.

Each test asserts what the user would check: the server's final state, the
report's rows, the exit code and the message.
"""

import csv
import datetime as dt
import json

import pytest
from openpyxl import load_workbook

from conftest import SAMPLES, TOKEN, assert_no_traceback, run_cli, write_csv, write_xlsx

TZ = "America/Los_Angeles"
HEADER = [
    "Transaction ID",
    "Call Start Time",
    "Calling Phone Number",
    "Duration In Seconds",
    "Name",
    "Partner Unique ID",
    "Description",
    "Sale Amount",
    "Value",
    "Occurred At Time",
    "Custom Parameter 1",
]

# Calls in uploader/emulator/data/calls.csv used here:
#   00000000-00000001 2026-11-02T09:15:00-08:00 +14155550134 245s
#   00000000-00000004 2026-11-03T08:05:00-08:00 +13105550112 125s
#   00000000-00000005 2026-11-03T08:06:40-08:00 +13105550112  30s  (same caller, 100 s later)
#   00000000-00000006 2026-11-03T14:30:00-08:00 +16175550150 512s
ROWS = [
    # by transaction id; the second row corrects the first (same name + partner id)
    ["00000000-00000001", "", "", "", "Sale", "1", "first", "100.00", "true", "2026/11/02 10:00:00 AM", "web"],
    ["00000000-00000001", "", "", "", "sale", "1", "corrected", "110.00", "", "2026/11/02 10:00:00 AM", "web"],
    # a second sale on the same call: another partner id
    ["00000000-00000001", "", "", "", "Sale", "2", "add-on", "15.5", "1", "", ""],
    # by start time + caller + duration: the duration picks call 4 over call 5
    ["", "2026/11/03 08:06:00 AM", "(310) 555-0112", "120", "Quote", "", "by time", "", "false", "", ""],
    # by start time alone, compressed Pacific form, two minutes off
    ["", "20261103143200000", "", "", "Appointment", "", "compressed", "", "", "", ""],
    # invalid: never sent
    ["00000000-00000006", "", "", "", "Sale", "9", "bad money", "$5", "", "", ""],
    # not found
    ["99999999-99999999", "", "", "", "Sale", "1", "no such call", "", "", "", ""],
]


def upload(emulator, path, *args, token=TOKEN):
    return run_cli("upload", path, "--timezone", TZ, "--base-url", emulator.base_url, *args, token=token)


def report_rows(path):
    if str(path).endswith(".xlsx"):
        sheet = load_workbook(path).active
        values = list(sheet.iter_rows(values_only=True))
        header = values[0]
        return [{k: ("" if v is None else str(v)) for k, v in zip(header, row)} for row in values[1:]]
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def by_call(signals):
    return {(s["call_transaction_id"], s["name"], s["partner_unique_id"]): s for s in signals}


def check_final_state(emulator, api):
    signals = by_call(emulator.signals())
    assert set(signals) == {
        ("00000000-00000001", "Sale", "1"),
        ("00000000-00000001", "Sale", "2"),
        ("00000000-00000004", "Quote", ""),
        ("00000000-00000006", "Appointment", ""),
    }
    first = signals[("00000000-00000001", "Sale", "1")]
    assert first["description"] == "corrected" and first["sale_amount"] == "110.00"  # file order: last wins
    assert first["occurred_at_time_t"] == int(dt.datetime(2026, 11, 2, 18, 0, tzinfo=dt.UTC).timestamp())
    assert first["custom_parameter_1"] == "web" and first["value"] == "true"
    assert signals[("00000000-00000001", "Sale", "2")]["sale_amount"] == "15.5"
    assert signals[("00000000-00000004", "Quote", "")]["value"] == "false"
    assert all(s["api"] == api for s in signals.values())


def check_report(rows):
    assert [r["row"] for r in rows] == ["2", "3", "4", "5", "6", "7", "8"]
    assert [r["status"] for r in rows] == ["created", "updated", "created", "created", "created", "invalid", "failed"]
    assert [r["http_status"] for r in rows] == ["201", "200", "201", "201", "201", "", "404"]
    assert rows[1]["corrects_transaction_id"] == rows[0]["signal_transaction_id"] != ""
    assert rows[3]["call_transaction_id"] == "00000000-00000004"
    assert rows[4]["call_transaction_id"] == "00000000-00000006"
    assert rows[5]["error"].startswith("Sale Amount '$5'")
    assert rows[6]["error_class"] == "RecordNotFound"
    assert rows[6]["error"] == "No call found. Please refer to the documentation."
    # then the original columns, as read
    assert list(rows[0].keys())[12:] == HEADER
    assert rows[1]["Name"] == "sale" and rows[2]["Sale Amount"] == "15.5"


@pytest.mark.parametrize("api", ["signals", "call_outcomes"])
def test_csv_upload_lands_every_valid_row_on_the_right_call(tmp_path, emulator, api):
    path = write_csv(tmp_path / "march.csv", [HEADER] + ROWS)
    result = upload(emulator, path, "--api", api)
    assert result.code == 1, result.output  # an invalid and a failed row
    assert_no_traceback(result)
    check_final_state(emulator, api)
    assert emulator.requests == 6  # the invalid row was never sent
    report = tmp_path / "march.results.csv"  # the default: beside the input, same type
    check_report(report_rows(report))
    assert "created         4" in result.stdout and "updated         1" in result.stdout
    assert "failed          1   RecordNotFound: 1" in result.stdout
    assert "match rate 83.3% (5 of 6 rows found their call)" in result.stdout
    assert f"report: {report}" in result.stdout


def test_the_same_upload_in_a_real_process_and_in_the_test_runner_says_and_does_the_same(tmp_path, make_emulator):
    # Most tests run the CLI in this process (it spares the interpreter's start); this one keeps
    # that shortcut honest: the same command as a real process ends the same way, word for word.
    outcomes = []
    for process in (True, False):
        emulator = make_emulator()
        folder = tmp_path / ("process" if process else "runner")
        folder.mkdir()
        path = write_csv(folder / "march.csv", [HEADER] + ROWS)
        result = run_cli(
            "upload", path, "--timezone", TZ, "--base-url", emulator.base_url, "--no-progress", process=process
        )
        check_final_state(emulator, "signals")
        rows = report_rows(folder / "march.results.csv")
        check_report(rows)
        words = (result.stdout + result.stderr).replace(str(folder), "DIR").replace(emulator.base_url, "URL")
        outcomes.append((result.code, words, [(r["row"], r["status"], r["error"]) for r in rows]))
    assert outcomes[0][0] == 1
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("api", ["signals", "call_outcomes"])
def test_xlsx_upload_writes_a_highlighted_workbook(tmp_path, emulator, api):
    rows = [list(r) for r in ROWS]
    rows[0][9] = dt.datetime(2026, 11, 2, 10, 0)  # a real Excel date cell
    rows[0][7] = 100  # a number cell: "100", and the API gets "100"
    rows[3][1] = dt.datetime(2026, 11, 3, 8, 6)
    path = write_xlsx(tmp_path / "march.xlsx", [HEADER] + rows, formats={"J": "yyyy/mm/dd hh:mm AM/PM"})
    result = upload(emulator, path, "--api", api)
    assert result.code == 1, result.output
    report = tmp_path / "march.results.xlsx"
    check_report(report_rows(report))
    sheet = load_workbook(report).active
    status_fill = {sheet.cell(r, 2).value: sheet.cell(r, 2).fill.fgColor.rgb for r in range(2, 9)}
    assert status_fill["failed"].endswith("FFC7CE") and status_fill["invalid"].endswith("FFEB9C")
    assert status_fill["created"] in (None, "00000000")
    signals = by_call(emulator.signals())
    assert signals[("00000000-00000001", "Sale", "1")]["description"] == "corrected"
    assert ("00000000-00000004", "Quote", "") in signals


def test_report_path_and_format_can_be_chosen(tmp_path, emulator):
    path = write_csv(tmp_path / "in.csv", [HEADER] + ROWS[:1])
    result = upload(emulator, path, "--report", tmp_path / "out.xlsx", "--summary-json", tmp_path / "s.json")
    assert result.code == 0, result.output
    assert report_rows(tmp_path / "out.xlsx")[0]["status"] == "created"
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["statuses"] == {"created": 1}
    assert summary["match_rate"] == 1.0
    assert summary["report"] == str(tmp_path / "out.xlsx")


def test_failed_rows_of_a_report_are_a_valid_input(tmp_path, emulator):
    path = write_csv(tmp_path / "in.csv", [HEADER] + ROWS)
    upload(emulator, path)
    rows = report_rows(tmp_path / "in.results.csv")
    failed = [r for r in rows if r["status"] in ("failed", "invalid")]
    failed[0]["Sale Amount"] = "5.00"  # the analyst fixes the invalid row
    again = tmp_path / "fixed.csv"
    with open(again, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(failed)
    result = upload(emulator, again)
    assert "ignored column" not in result.stderr  # the report's own columns are recognised
    new = report_rows(tmp_path / "fixed.results.csv")
    assert [r["status"] for r in new] == ["created", "failed"]
    assert list(new[0].keys())[12:] == HEADER  # no doubled status columns


def test_rerunning_the_same_file_skips_what_was_confirmed(tmp_path, emulator):
    path = write_csv(tmp_path / "in.csv", [HEADER] + ROWS)
    upload(emulator, path)
    first = report_rows(tmp_path / "in.results.csv")
    before, requests = emulator.signals(), emulator.requests
    result = upload(emulator, path)
    assert result.code == 1
    assert emulator.requests - requests == 1  # only the row that was not confirmed (404)
    assert emulator.signals() == before
    rows = report_rows(tmp_path / "in.results.csv")
    assert [r["status"] for r in rows] == ["skipped"] * 5 + ["invalid", "failed"]
    # skipped rows carry the earlier run's transaction ids
    assert [r["signal_transaction_id"] for r in rows[:5]] == [r["signal_transaction_id"] for r in first[:5]]
    assert "skipped         5" in result.stdout


def test_force_sends_everything_again_without_duplicates(tmp_path, emulator):
    path = write_csv(tmp_path / "in.csv", [HEADER] + ROWS)
    upload(emulator, path)
    before = emulator.signals()
    upload(emulator, path, "--force")
    assert len(emulator.signals()) == len(before) == 4
    statuses = [r["status"] for r in report_rows(tmp_path / "in.results.csv")]
    assert statuses[:5] == ["updated"] * 5  # idempotent: name + partner_unique_id


def test_a_changed_row_is_sent_again(tmp_path, emulator):
    path = write_csv(tmp_path / "in.csv", [HEADER] + ROWS)
    upload(emulator, path)
    rows = [list(r) for r in ROWS]
    rows[2][7] = "16.00"  # the add-on's price is corrected
    write_csv(path, [HEADER] + rows)
    upload(emulator, path)
    statuses = [r["status"] for r in report_rows(tmp_path / "in.results.csv")]
    assert statuses[:5] == ["skipped", "skipped", "updated", "skipped", "skipped"]
    assert by_call(emulator.signals())[("00000000-00000001", "Sale", "2")]["sale_amount"] == "16.00"


def test_many_duplicates_apply_in_file_order_under_concurrency(tmp_path, emulator):
    rows = []
    for i in range(60):
        # 60 rows over 3 keys, interleaved; each key's last row must win.
        key = i % 3
        rows.append(["00000000-00000002", "", "", "", "Sale", str(key), f"v{i}", f"{i}.00", "", "", ""])
    path = write_csv(tmp_path / "dups.csv", [HEADER] + rows)
    result = upload(emulator, path, "--concurrency", "16")
    assert result.code == 0, result.output
    final = {s["partner_unique_id"]: s["description"] for s in emulator.signals()}
    assert final == {"0": "v57", "1": "v58", "2": "v59"}
    statuses = [r["status"] for r in report_rows(tmp_path / "dups.results.csv")]
    assert statuses[:3] == ["created"] * 3 and set(statuses[3:]) == {"updated"}


def test_dry_run_sends_nothing(tmp_path, emulator):
    path = write_csv(tmp_path / "in.csv", [HEADER] + ROWS)
    result = run_cli("upload", path, "--timezone", TZ, "--dry-run", token=None)
    assert result.code == 1  # one row is invalid
    assert "dry run: nothing sent" in result.stdout
    assert emulator.requests == 0
    statuses = [r["status"] for r in report_rows(tmp_path / "in.plan.csv")]  # the plan, not a run's report
    assert statuses == ["dry-run"] * 5 + ["invalid", "dry-run"]
    assert not (tmp_path / "in.results.csv").exists()


def test_rejected_token_stops_the_run_and_a_rerun_sends_the_rest(tmp_path, emulator):
    path = write_csv(tmp_path / "in.csv", [HEADER] + ROWS)
    result = upload(emulator, path, "--concurrency", "1", token="wrong-token")
    assert result.code == 2
    assert_no_traceback(result)
    assert "rejected the token" in result.stderr
    assert "wrong-token" not in result.output
    assert emulator.signals() == []
    assert emulator.requests == 1  # stopped at the first refusal
    rows = report_rows(tmp_path / "in.results.csv")
    assert rows[0]["http_status"] == "401" and rows[0]["failure_kind"] == "fix-config"
    assert {r["error_class"] for r in rows[1:] if r["status"] == "failed"} == {"NotSent"}
    result = upload(emulator, path)  # the token is fixed
    assert result.code == 1
    check_final_state(emulator, "signals")


def test_missing_token_is_a_usage_error_before_any_work(tmp_path, emulator):
    path = write_csv(tmp_path / "in.csv", [HEADER] + ROWS)
    result = upload(emulator, path, token=None)
    assert result.code == 2 and "INVOCA_API_TOKEN" in result.stderr
    assert not (tmp_path / "in.results.csv").exists()


def test_token_file(tmp_path, emulator):
    path = write_csv(tmp_path / "in.csv", [HEADER] + ROWS[:1])
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    result = upload(emulator, path, "--token-file", token_file, token=None)
    assert result.code == 0, result.output


def test_plain_http_is_refused_off_loopback(tmp_path):
    path = write_csv(tmp_path / "in.csv", [HEADER] + ROWS[:1])
    result = run_cli("upload", path, "--base-url", "http://api.example.com/api/2020-10-01")
    assert result.code == 2 and "https is required" in result.stderr


def test_unreachable_server_fails_rows_not_the_program(tmp_path, emulator):
    path = write_csv(tmp_path / "in.csv", [HEADER] + ROWS[:2])
    emulator.stop()
    result = upload(emulator, path, "--timeout", "2")
    # Nothing has ever answered at that address: the run stops at once (no retry, no 20 failures first),
    # saying the base URL looks wrong, with the report written.
    assert result.code == 4, result.output
    assert_no_traceback(result)
    assert "nothing answered at" in result.stderr and "check --base-url" in result.stderr
    rows = report_rows(tmp_path / "in.results.csv")
    assert rows[0]["error_class"] == "ConnectionError" and "gave up" not in rows[0]["error"]
    assert {r["error_class"] for r in rows} <= {"ConnectionError", "NotSent"}


def test_the_sample_files_upload(tmp_path, emulator):
    for name in ("signals.csv", "signals.xlsx"):
        source = SAMPLES / name
        copy = tmp_path / name
        copy.write_bytes(source.read_bytes())
        result = upload(emulator, copy)
        assert result.code == 1, result.output
        assert "RecordNotFound: 1" in result.stdout


# --- a file in many chunks: the same answers as in one ------------------------------


def _chunky_rows(count):
    """Rows whose keys repeat across chunks: (call, name, partner id) cycles; some have no partner id."""
    rows = []
    for n in range(count):
        call = f"00000000-0000000{1 + n % 6}"
        partner = "" if n % 10 == 9 else str(n % 4)
        money = "$1" if n % 17 == 16 else f"{n}.00"  # invalid now and then
        rows.append([call, "", "", "", "Sale", partner, f"row {n + 2}", money, "", "", ""])
    return rows


def test_chunked_upload_keeps_file_order_across_chunks_and_reruns_send_nothing(tmp_path, emulator):
    rows = _chunky_rows(150)
    path = write_csv(tmp_path / "many.csv", [HEADER] + rows)
    env = {"SIGNAL_UPLOADER_CHUNK_ROWS": "7"}  # 22 chunks; keys repeat across every boundary
    result = run_cli("upload", path, "--timezone", TZ, "--base-url", emulator.base_url, "--concurrency", "8", env=env)
    assert result.code == 1, result.stderr  # some rows are invalid
    report = report_rows(tmp_path / "many.results.csv")
    assert [r["row"] for r in report] == [str(n) for n in range(2, 152)]

    # The server holds, for each key, the last valid row of the file with that key.
    last: dict[tuple, str] = {}
    for row in rows:
        if not row[7].startswith("$"):
            last[(row[0], "Sale", row[5])] = row[6]
    state = {key: s["description"] for key, s in by_call(emulator.signals()).items()}
    assert state == last
    # Every row has its status; the first row of each key created it, the rest updated it.
    seen, expected = set(), []
    for row in rows:
        key = (row[0], row[5])
        if row[7].startswith("$"):
            expected.append("invalid")
        else:
            expected.append("updated" if key in seen else "created")
            seen.add(key)
    assert [r["status"] for r in report] == expected
    # Rows without a partner id that overwrite each other are flagged, across chunks too.
    no_id = [r for r, row in zip(report, rows) if row[5] == "" and not row[7].startswith("$")]
    assert no_id and all("with no Partner Unique ID" in r["warning"] for r in no_id)
    assert "rows 31, 61, 91, 121, 151 are the same call" in no_id[-1]["warning"]  # 5 chunks apart

    sent = emulator.requests
    again = run_cli("upload", path, "--timezone", TZ, "--base-url", emulator.base_url, env=env)
    assert again.code == 1
    assert emulator.requests == sent  # the journal answers for every chunk: nothing is sent again
    statuses = [r["status"] for r in report_rows(tmp_path / "many.results.csv")]
    assert statuses == ["skipped" if s != "invalid" else "invalid" for s in expected]


def test_rejected_token_stops_every_later_chunk(tmp_path, emulator):
    path = write_csv(tmp_path / "many.csv", [HEADER] + _chunky_rows(40))
    result = run_cli(
        "upload",
        path,
        "--timezone",
        TZ,
        "--base-url",
        emulator.base_url,
        env={"SIGNAL_UPLOADER_CHUNK_ROWS": "5"},
        token="wrong-token",
    )
    assert result.code == 2
    assert_no_traceback(result)
    report = report_rows(tmp_path / "many.results.csv")
    assert len(report) == 40
    assert {r["status"] for r in report} == {"failed", "invalid"}
    # Requests already in flight in the first chunk got their 401; no later chunk sent anything.
    refused = [r for r in report if r["http_status"] == "401"]
    assert 1 <= len(refused) == emulator.requests <= 5
    assert all(int(r["row"]) <= 6 for r in refused)
    invalid = sum(r["status"] == "invalid" for r in report)
    assert sum(r["error_class"] == "NotSent" for r in report) == 40 - len(refused) - invalid


def test_reordered_file_in_chunks_sends_only_the_new_last_row(tmp_path, emulator):
    filler = [
        [f"00000000-0000000{2 + n % 4}", "", "", "", "Quote", str(n), f"filler {n}", "", "", "", ""] for n in range(12)
    ]
    first = ["00000000-00000001", "", "", "", "Sale", "7", "first version", "1.00", "", "", ""]
    second = ["00000000-00000001", "", "", "", "Sale", "7", "second version", "2.00", "", "", ""]
    env = {"SIGNAL_UPLOADER_CHUNK_ROWS": "4"}
    path = tmp_path / "orders.csv"
    write_csv(path, [HEADER, first] + filler + [second])  # rows 2 and 15: four chunks apart
    assert run_cli("upload", path, "--timezone", TZ, "--base-url", emulator.base_url, env=env).code == 0
    assert by_call(emulator.signals())[("00000000-00000001", "Sale", "7")]["description"] == "second version"

    write_csv(path, [HEADER, second] + filler + [first])  # the same rows, the other way round
    sent = emulator.requests
    assert run_cli("upload", path, "--timezone", TZ, "--base-url", emulator.base_url, env=env).code == 0
    assert emulator.requests == sent + 1  # only the row that must now win
    assert by_call(emulator.signals())[("00000000-00000001", "Sale", "7")]["description"] == "first version"
    statuses = [r["status"] for r in report_rows(tmp_path / "orders.results.csv")]
    assert statuses == ["skipped"] * 13 + ["updated"]
