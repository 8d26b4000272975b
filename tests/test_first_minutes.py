"""What a new user meets in the first minutes, and readings that were wrong: the real CLI, as they run it.

A missing file, a wrong base URL (no version, a closed port, another API's address), an emulator after a
plain install, headers that need mapping, the requests a dry run builds; ids with their zeros, midnight
times, a quoted sep= line, hidden rows, a workbook whose rows are on another sheet, floats from Python;
and a workbook report whose numbers and dates stay numbers and dates.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from test_cli_upload import report_rows
from test_engage import ACCOUNT, KIM_1

from conftest import ROOT, SAMPLES, TOKEN, assert_no_traceback, run_cli, write_csv, write_xlsx

TZ = ("--timezone", "America/Los_Angeles")


def test_a_missing_file_is_said_plainly_by_every_command(tmp_path, emulator):
    for command in (
        ("upload", "--base-url", emulator.base_url),
        ("validate",),
        ("retry", "--base-url", emulator.base_url),
    ):
        result = run_cli(command[0], tmp_path / "nosuch.csv", *command[1:])
        assert result.code == 2, result.output
        assert "nosuch.csv: no such file" in result.stderr and "internal error" not in result.output
        assert_no_traceback(result)


def test_a_base_url_without_the_api_version_stops_at_once_and_says_what_to_check(tmp_path, emulator):
    rows = [["transaction_id", "name"]] + [[f"00000000-0000000{i}", "Sale"] for i in range(1, 10)]
    path = write_csv(tmp_path / "in.csv", rows)
    wrong = emulator.base_url.rsplit("/", 1)[0]  # .../api, without 2020-10-01
    result = run_cli("upload", path, "--base-url", wrong, "--concurrency", "1")
    assert result.code == 4, result.output
    assert_no_traceback(result)
    assert "the base URL looks wrong" in result.stderr
    assert "hint: check --base-url" in result.stderr and "https://invoca.net/api/2020-10-01" in result.stderr
    assert emulator.requests == 0  # the emulator counts only requests to its APIs: none reached one
    lines = report_rows(tmp_path / "in.results.csv")
    assert [r["error_class"] for r in lines[:2]] == ["NoSuchEndpoint", "NoSuchEndpoint"]
    assert {r["error_class"] for r in lines[2:]} == {"NotSent"}
    assert lines[0]["failure_kind"] == "fix-config" and "match rate" not in result.stdout
    # Once told the right address, retry sends them all.
    fixed = run_cli("retry", tmp_path / "in.results.csv", "--base-url", emulator.base_url)
    assert fixed.code == 0, fixed.output
    assert len(emulator.signals()) == 9


def test_a_closed_port_stops_after_one_attempt(tmp_path, emulator):
    path = write_csv(
        tmp_path / "in.csv", [["transaction_id", "name"], ["00000000-00000001", "Sale"], ["00000000-00000002", "Sale"]]
    )
    port = emulator.base_url.split(":")[2].split("/")[0]
    emulator.stop()
    result = run_cli("upload", path, "--base-url", f"http://127.0.0.1:{port}/api/2020-10-01", "--concurrency", "1")
    assert result.code == 4, result.output
    assert f"nothing answered at http://127.0.0.1:{port}/api/2020-10-01 (connection refused)" in result.stderr
    lines = report_rows(tmp_path / "in.results.csv")
    assert [r["error_class"] for r in lines] == ["ConnectionError", "NotSent"]
    assert "gave up after" not in lines[0]["error"]  # not retried: nothing listens there


def test_engage_rows_sent_to_the_platform_base_url_are_told_so(tmp_path, emulator):
    path = write_csv(tmp_path / "hangups.csv", [["uii"], [KIM_1]])
    result = run_cli(
        "upload",
        path,
        "--api",
        "engage_hangup",
        "--account-id",
        ACCOUNT,
        "--base-url",
        emulator.base_url,
        env={"ENGAGE_VOICE_TOKEN": "demo-engage-token"},
        token=None,
    )
    assert result.code == 1, result.output
    line = report_rows(tmp_path / "hangups.results.csv")[0]
    assert line["error_class"] == "NoSuchEndpoint"
    assert "not Engage Voice's" in line["error"] and "https://engage.ringcentral.com/voice" in line["error"]


def test_after_a_plain_install_the_emulator_has_its_calls(tmp_path):
    """The wheel, installed apart from the source tree: the emulator's calls come with it."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("signal_uploader-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    environment = {**os.environ, "PYTHONPATH": str(target), "XDG_STATE_HOME": str(tmp_path / "state")}
    where = subprocess.run(
        [sys.executable, "-c", "import uploader; print(uploader.__file__)"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(target)), where  # the installed copy, not the source tree
    ready = tmp_path / "url"
    emulator = subprocess.Popen(
        [sys.executable, "-m", "uploader", "emulator", "--port", "0", "--ready-file", str(ready)],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(200):
            if ready.exists() and ready.read_text():
                break
            time.sleep(0.05)
        banner = emulator.stdout.readline()
        assert "12 calls loaded; 5 live calls" in banner and "7 active calls" in banner, banner
        sample = tmp_path / "signals.csv"
        sample.write_bytes((SAMPLES / "signals.csv").read_bytes())
        upload = subprocess.run(
            [
                sys.executable,
                "-m",
                "uploader",
                "upload",
                str(sample),
                *TZ,
                "--base-url",
                ready.read_text().strip(),
                "--no-progress",
            ],
            cwd=tmp_path,
            env={**environment, "INVOCA_API_TOKEN": "demo-token"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert upload.returncode == 1, upload.stderr  # the sample's invalid rows and its call not found
        assert "created         7" in upload.stdout and "match rate 90.0%" in upload.stdout
    finally:
        emulator.terminate()
        emulator.wait(10)


def test_columns_are_mapped_on_the_command_line_and_a_missing_one_names_the_closest(tmp_path, emulator):
    path = write_csv(
        tmp_path / "crm.csv",
        [
            ["Signal Name", "Transaction ID", "Occurred At", "Notes"],
            ["Sale", "00000000-00000001", "2026/11/02 10:00:00", "internal"],
        ],
    )
    missing = run_cli("validate", path, *TZ)
    assert missing.code == 2
    assert "the file's headers closest to it: 'Signal Name'" in missing.stderr
    assert "--map 'Signal Name=name'" in missing.stderr
    mapped = run_cli("upload", path, *TZ, "--base-url", emulator.base_url, "--map", "Signal Name=name")
    assert mapped.code == 0, mapped.output
    assert "'Occurred At' looks like occurred_at_time" in mapped.stderr  # the next column to map
    assert "--map 'Occurred At=occurred_at_time'" in mapped.stderr
    both = run_cli(
        "upload",
        path,
        *TZ,
        "--base-url",
        emulator.base_url,
        "--map",
        "Signal Name=name",
        "--map",
        "Occurred At=occurred_at_time",
        "--map",
        "Notes=",
    )
    assert both.code == 0, both.output
    assert "looks like" not in both.stderr  # Notes was left out on purpose: no suggestion for it
    (signal,) = emulator.signals()
    assert signal["occurred_at_time_t"] == int(dt.datetime(2026, 11, 2, 18, 0, tzinfo=dt.UTC).timestamp())
    bad = run_cli("validate", path, "--map", "Signal Name")
    assert bad.code == 2 and "is not HEADER=FIELD" in bad.output


def test_show_requests_prints_what_would_be_sent_with_the_token_masked(tmp_path, emulator):
    path = write_csv(
        tmp_path / "in.csv",
        [
            ["transaction_id", "name", "sale_amount"],
            ["00000000-00000001", "Sale", "10.00"],
            ["00000000-00000002", "Sale", "$5"],
            ["00000000-00000004", "Quote", ""],
        ],
    )
    checked = run_cli("validate", path, "--show-requests", "5")
    assert checked.code == 1
    assert checked.stdout.count("POST {base}/transactions/signals.json") == 2  # the two valid rows
    dry = run_cli("upload", path, "--base-url", emulator.base_url, "--dry-run", "--show-requests", "1")
    assert dry.code == 1 and emulator.requests == 0
    assert f"row 2: POST {emulator.base_url}/transactions/signals.json" in dry.stdout
    assert '"oauth_token": "***"' in dry.stdout and '"sale_amount": "10.00"' in dry.stdout
    sent = run_cli("upload", path, "--base-url", emulator.base_url, "--show-requests", "1")
    assert '"oauth_token": "***"' in sent.stdout and TOKEN not in sent.output
    calls = run_cli(
        "upload",
        write_csv(tmp_path / "u.csv", [["transaction_id", "Disposition"], ["T-1", "SALE"]]),
        "--api",
        "calls_in_progress",
        "--organization-type",
        "Advertiser",
        "--organization-id",
        "1",
        "--dry-run",
        "--show-requests",
        "1",
        "--base-url",
        emulator.base_url,
    )
    assert "PUT " in calls.stdout and "oauth_token=***" in calls.stdout  # the token where this API takes it


# ------------------------------------------------------------------ readings


def test_an_id_with_its_leading_zeros_is_valid_whatever_the_other_ids_width(tmp_path):
    rows = [["transaction_id", "name"]] + [[f"00000000-0000000{i}", "Sale"] for i in range(1, 6)]
    rows.append(["00012345", "Sale"])  # zeros intact, text: as written
    path = write_csv(tmp_path / "ids.csv", rows)
    result = run_cli("validate", path, "--report", tmp_path / "r.csv")
    assert result.code == 0, result.output
    # An all-digit id without its zeros, among zero-padded ones of one width: still invalid.
    padded = [["transaction_id", "name"]] + [[f"{i:08d}", "Sale"] for i in (1001, 2002, 3003, 4004)]
    path = write_csv(tmp_path / "lost.csv", padded + [["12345", "Sale"], ["00012345", "Sale"]])
    result = run_cli("validate", path, "--report", tmp_path / "r2.csv")
    assert [r["status"] for r in report_rows(tmp_path / "r2.csv")] == ["valid"] * 4 + ["invalid", "valid"]


def test_a_time_at_midnight_is_a_time_when_its_cell_shows_one(tmp_path, emulator):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["name", "call_start_time", "calling_phone_number", "duration_in_seconds"])
    sheet.append(["Sale", dt.datetime(2026, 11, 3, 0, 0, 0), "(415) 555-0134", 60])
    sheet.append(["Sale", dt.datetime(2026, 11, 3, 0, 0, 0), "(415) 555-0134", 60])
    sheet["B2"].number_format = "dd-mm-yyyy hh:mm:ss"  # a time of day shown: midnight
    sheet["B3"].number_format = "dd-mm-yyyy"  # a date only: no time of day
    path = tmp_path / "midnight.xlsx"
    workbook.save(path)
    result = run_cli("validate", path, *TZ, "--report", tmp_path / "r.csv")
    lines = report_rows(tmp_path / "r.csv")
    assert [r["status"] for r in lines] == ["valid", "invalid"], result.output
    assert lines[0]["call_start_time"] == "2026/11/03 00:00:00"
    assert "a date but no time of day" in lines[1]["error"]


def test_a_quoted_sep_line_names_the_delimiter(tmp_path):
    path = tmp_path / "lo.csv"
    path.write_bytes(b'"sep=;"\r\ntransaction_id;name;sale_amount\r\n00000000-00000001;Sale;1.50\r\n')
    result = run_cli("validate", path, "--report", tmp_path / "r.csv")
    assert result.code == 0, result.output
    assert "declares the delimiter ';'" in result.stderr
    with open(tmp_path / "r.csv", newline="", encoding="utf-8-sig") as handle:  # in the file's own dialect
        assert next(iter(csv.DictReader(handle, delimiter=";")))["sale_amount"] == "1.50"


def test_hidden_and_filtered_rows_are_counted_and_can_be_left_out(tmp_path, emulator):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["transaction_id", "name", "partner_unique_id"])
    for i in range(1, 8):
        sheet.append([f"00000000-0000000{i}", "Sale", f"H-{i}"])
    for row in (3, 5, 6):  # filtered out of the view
        sheet.row_dimensions[row].hidden = True
    sheet.auto_filter.ref = "A1:C8"
    path = tmp_path / "filtered.xlsx"
    workbook.save(path)
    shown = run_cli("validate", path)
    assert "3 row(s) are hidden or filtered out in the sheet" in shown.stderr
    assert "--skip-hidden-rows leaves them out" in shown.stderr and "valid           7" in shown.stdout
    result = run_cli("upload", path, "--base-url", emulator.base_url, "--skip-hidden-rows")
    assert result.code == 0, result.output
    assert "left out 3 row(s) hidden or filtered out" in result.stderr
    assert sorted(s["partner_unique_id"] for s in emulator.signals()) == ["H-1", "H-3", "H-6", "H-7"]
    assert [r["row"] for r in report_rows(tmp_path / "filtered.results.xlsx")] == ["2", "4", "7", "8"]


def test_a_workbook_opened_on_another_sheet_names_the_one_with_the_rows(tmp_path):
    path = write_xlsx(
        tmp_path / "book.xlsx",
        [["Total", 12], ["Average", 3]],
        sheet="Summary",
        extra_sheets={
            "Pivot": [["Region", "Count"]],
            "June": [["transaction_id", "name"], ["00000000-00000001", "Sale"]],
        },
    )
    result = run_cli("validate", path)
    assert result.code == 2
    assert "sheet 'Summary' (the active sheet): no 'name' column" in result.stderr
    assert "hint: the sheet 'June' has the columns: choose it with --sheet 'June'" in result.stderr
    assert run_cli("validate", path, "--sheet", "June").code == 0


def test_floats_from_python_read_as_a_workbook_cell_of_the_same_value(tmp_path, emulator):
    from uploader import upload_rows, validate_rows

    amount = 0.1 + 0.2  # 0.30000000000000004: a spreadsheet shows 0.3
    checked = validate_rows([{"transaction_id": "00000000-00000001", "name": "Sale", "sale_amount": amount}])
    assert checked.ok and checked.rows.loc[0, "sale_amount"] == "0.3"
    book = write_xlsx(
        tmp_path / "f.xlsx", [["transaction_id", "name", "sale_amount"], ["00000000-00000001", "Sale", amount]]
    )
    assert run_cli("validate", book).code == 0
    result = upload_rows(
        [{"transaction_id": "00000000-00000001", "name": "Sale", "sale_amount": amount}],
        source="floats",
        base_url=emulator.base_url,
        token=TOKEN,
    )
    assert result.ok and emulator.signals()[0]["sale_amount"] in ("0.3", 0.3)


# ------------------------------------------------------------------ the report


def test_a_workbook_report_keeps_numbers_and_dates_and_reads_back_the_same(tmp_path, emulator):
    book = write_xlsx(
        tmp_path / "march.xlsx",
        [
            ["transaction_id", "name", "partner_unique_id", "sale_amount", "occurred_at_time", "Notes"],
            ["00000000-00000001", "Sale", "M-1", 149.99, dt.datetime(2026, 11, 2, 10, 0), "=not a formula"],
            ["00000000-00000002", "Sale", "M-2", 20, dt.datetime(2026, 11, 3, 0, 0), ""],
            ["99999999-99999999", "Sale", "M-3", 5.5, dt.datetime(2026, 11, 3, 9, 30), ""],
        ],
        formats={"E": "yyyy-mm-dd hh:mm"},
        text_columns="F",
    )
    result = run_cli("upload", book, *TZ, "--base-url", emulator.base_url)
    assert result.code == 1, result.output  # the last call does not exist
    report = tmp_path / "march.results.xlsx"
    sheet = load_workbook(report).active
    header = [c.value for c in sheet[1]]
    first = {name: cell for name, cell in zip(header, sheet[2])}
    assert first["sale_amount"].value == 149.99 and first["sale_amount"].data_type == "n"
    assert first["occurred_at_time"].value == dt.datetime(2026, 11, 2, 10, 0)
    assert first["Notes"].value == "'=not a formula" and first["Notes"].data_type == "s"
    assert first["transaction_id"].data_type == "s"
    assert sum(row[header.index("sale_amount")].value for row in sheet.iter_rows(min_row=2)) == pytest.approx(175.49)
    assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, len(header)).column_letter}4"
    # Read back by retry, the same rows: the midnight time is a time, nothing changed is sent again.
    sent = emulator.requests
    again = run_cli("retry", report, "--include-not-found")
    assert again.code == 1, again.output
    assert emulator.requests == sent + 1  # only the not-found row
    sheet = load_workbook(report).active
    assert sheet.cell(3, header.index("occurred_at_time") + 1).value == dt.datetime(2026, 11, 3, 0, 0)
    assert sheet.cell(2, header.index("sale_amount") + 1).data_type == "n"  # still numbers after the rewrite
    rerun = run_cli("upload", book, *TZ, "--base-url", emulator.base_url)
    assert rerun.code == 1 and emulator.requests == sent + 2  # the original's rerun: only that row again
    signals = json.dumps(emulator.signals())
    assert "M-1" in signals and "M-2" in signals


def test_reports_keep_nothing_secret(tmp_path, emulator):
    path = write_csv(tmp_path / "in.csv", [["transaction_id", "name"], ["00000000-00000001", "Sale"]])
    assert run_cli("upload", path, "--base-url", emulator.base_url, "--token-file", _token_file(tmp_path)).code == 0
    for found in Path(os.environ["XDG_STATE_HOME"]).rglob("*"):
        if found.is_file():
            assert TOKEN.encode() not in found.read_bytes(), found


def _token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN)
    path.chmod(0o600)
    return path
