"""One journal per source: however a row was sent (upload, retry, a folder, the Python API, the page), the
next run of the same file knows it. The real CLI against the emulator over loopback; what a user would
check: the requests the emulator saw, what it holds, the report's rows, the exit code and the message.
"""

from __future__ import annotations

import csv
import shutil
import sqlite3

from test_cli_upload import report_rows
from test_engage import ACCOUNT, AGENTS, ENDED, ENV, FAST, KIM_1, EngageEmulator, read_report
from test_reliability import HEADER, many_calls

from conftest import TOKEN, assert_no_traceback, run_cli, write_csv, write_xlsx

OFFLINE = "raj.iyer@example.com"  # an agent of the bundled Engage sample who is not logged in


def orders(tmp_path, count, name="june bulk.csv"):
    rows = [[f"CALL-{i:05d}", "Sale", str(i), f"order {i}", f"{i}.00"] for i in range(count)]
    return write_csv(tmp_path / name, [HEADER] + rows)


def test_rows_confirmed_by_retry_are_skipped_by_the_next_upload_of_the_original(tmp_path, make_emulator, backend):
    emulator = make_emulator(calls_file=many_calls(tmp_path, 40), fail_rate=0.5, seed=3)
    path = orders(tmp_path, 40)
    first = run_cli(
        "upload", path, "--base-url", emulator.base_url, "--max-attempts", "1", "--stop-after-failures", "0"
    )
    assert first.code == 1, first.output
    report = tmp_path / "june bulk.results.csv"
    failed = [r for r in report_rows(report) if r["status"] == "failed"]
    assert 5 < len(failed) < 35  # about half failed
    # The summary names the next step, the exact command.
    assert "next: send again the" in first.stdout
    assert f"signal-uploader retry '{report}'" in first.stdout

    emulator.control("faults", {"fail_rate": 0})  # the API recovers
    retried = run_cli("retry", report)  # no option: the report's run knew the base URL and the rest
    assert retried.code == 0, retried.output
    assert {r["status"] for r in report_rows(report)} <= {"created", "updated"}
    assert len(emulator.signals()) == 40

    before = emulator.requests
    again = run_cli("upload", path, "--base-url", emulator.base_url)
    assert again.code == 0, again.output
    assert emulator.requests == before  # nothing sent again: retry confirmed its rows for june bulk.csv
    assert [r["status"] for r in report_rows(report)] == ["skipped"] * 40
    assert all(r["signal_transaction_id"] for r in report_rows(report))  # with the ids retry got


def test_a_retry_of_a_row_whose_correction_went_through_leaves_the_correction_on_the_server(tmp_path, make_emulator):
    # Row 2 reports a sale, row 3 corrects it (same call, name and partner id): the file means row 3.
    # The first request fails and the second goes through (seed 1 at a 50 % fault rate, one at a time).
    emulator = make_emulator(calls_file=many_calls(tmp_path, 2), fail_rate=0.5, seed=1)
    path = write_csv(
        tmp_path / "june bulk.csv",
        [
            HEADER,
            ["CALL-00000", "Sale", "1", "first price", "149.99"],
            ["CALL-00000", "Sale", "1", "corrected", "159.99"],
        ],
    )
    first = run_cli(
        "upload", path, "--base-url", emulator.base_url, "--max-attempts", "1", "--stop-after-failures", "0",
        "--concurrency", "1",
    )  # fmt: skip
    report = tmp_path / "june bulk.results.csv"
    assert [r["status"] for r in report_rows(report)] == ["failed", "created"], first.output
    emulator.control("faults", {"fail_rate": 0})

    retried = run_cli("retry", report)
    assert retried.code == 0, retried.output
    # The failed row went, and its correction after it again: the correction is what the API holds.
    assert [(s["description"], s["sale_amount"]) for s in emulator.signals()] == [("corrected", "159.99")]
    assert [r["status"] for r in report_rows(report)] == ["updated", "updated"]  # the signal existed: 200
    assert emulator.requests == 4

    again = run_cli("upload", path, "--base-url", emulator.base_url)
    assert again.code == 0, again.output
    assert emulator.requests == 4  # the journal knows the file's last row is what was applied
    assert [r["status"] for r in report_rows(report)] == ["skipped", "skipped"]


def test_a_copy_elsewhere_and_an_edited_copy_of_the_same_name_meet_the_same_journal(tmp_path, emulator):
    first = tmp_path / "monday"
    first.mkdir()
    rows = [
        ["00000000-00000001", "Sale", "A-1", "first", "10.00"],
        ["00000000-00000002", "Sale", "A-2", "second", "20.00"],
    ]
    path = write_csv(first / "export.csv", [HEADER] + rows)
    assert run_cli("upload", path, "--base-url", emulator.base_url).code == 0
    sent = emulator.requests

    # the same name in another folder (the page's stored copy, a download folder), one row changed
    later = tmp_path / "tuesday"
    later.mkdir()
    rows[1][3] = "second, corrected"
    copy = write_csv(later / "export.csv", [HEADER] + rows)
    result = run_cli("upload", copy, "--base-url", emulator.base_url)
    assert result.code == 0, result.output
    assert emulator.requests == sent + 1  # only the changed row
    assert [r["status"] for r in report_rows(later / "export.results.csv")] == ["skipped", "updated"]

    # a copy under another name is known by its content, and keeps that journal once edited
    renamed = later / "export (1).csv"
    shutil.copy(copy, renamed)
    assert run_cli("upload", renamed, "--base-url", emulator.base_url).code == 0
    assert emulator.requests == sent + 1
    rows.append(["00000000-00000004", "Sale", "A-3", "third", "30.00"])
    write_csv(renamed, [HEADER] + rows)
    assert run_cli("upload", renamed, "--base-url", emulator.base_url).code == 0
    assert emulator.requests == sent + 2  # only the new row: the edited copy kept its journal
    assert len(emulator.signals()) == 3


def test_a_refused_manual_call_retried_then_the_file_dropped_again_dials_each_destination_once(tmp_path, backend):
    engage = EngageEmulator(engage_rate_limit=100_000)
    try:
        rows = [
            ["username", "destination", "ringDuration", "callerId"],
            [AGENTS[0], "(650) 555-2001", "20", "866-123-4567"],
            [AGENTS[1], "(650) 555-2002", "20", "866-123-4567"],
            [OFFLINE, "(650) 555-2003", "20", "866-123-4567"],  # not logged in: a definite refusal
            [AGENTS[2], "(650) 555-2004", "20", "866-123-4567"],
        ]
        path = write_csv(tmp_path / "dial.csv", rows)
        command = (
            "upload",
            path,
            "--api",
            "engage_manual_call",
            "--account-id",
            ACCOUNT,
            "--base-url",
            engage.voice,
            *FAST,
        )
        first = run_cli(*command, env=ENV, token=None)
        assert first.code == 1, first.output
        report = tmp_path / "dial.results.csv"
        lines = read_report(report)
        assert [r["status"] for r in lines] == ["created", "created", "failed", "created"]
        assert lines[2]["error_class"] == "agent.not.available" and lines[2]["failure_kind"] == "fix-data"

        engage.control("engage/agent", {"username": OFFLINE, "online": True})  # the agent is back
        # No --api, --account-id or --base-url: the report's run knew them (and its pace).
        retried = run_cli("retry", report, env=ENV, token=None)
        assert retried.code == 0, retried.output
        assert [r["status"] for r in read_report(report)] == ["created"] * 4

        # The nightly re-drop of the same, unchanged file: nothing is dialled again.
        again = run_cli(*command, env=ENV, token=None)
        assert again.code == 0, again.output
        assert [r["status"] for r in read_report(report)] == ["skipped"] * 4
        dials = sorted(d["destination"] for d in engage.state()["dials"])
        assert dials == ["6505552001", "6505552002", "6505552003", "6505552004"]  # one dial per destination
    finally:
        engage.stop()


def test_a_folder_run_a_retry_and_the_file_dropped_again_with_a_new_row_dial_each_destination_once(tmp_path):
    engage = EngageEmulator(engage_rate_limit=100_000)
    try:
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        header = ["username", "destination", "ringDuration", "callerId"]
        rows = [[AGENTS[0], "(650) 555-3001", "20", "866-123-4567"], [OFFLINE, "(650) 555-3002", "20", "866-123-4567"]]
        write_csv(inbox / "dial.csv", [header] + rows)
        command = (
            "upload",
            inbox,
            "--api",
            "engage_manual_call",
            "--account-id",
            ACCOUNT,
            "--base-url",
            engage.voice,
            *FAST,
        )
        first = run_cli(*command, env=ENV, token=None)
        assert first.code == 1, first.output
        report = inbox / "failed" / "dial.results.csv"
        assert [r["status"] for r in read_report(report)] == ["created", "failed"]
        assert "signal-uploader retry" in first.stdout and "failed/dial.results.csv" in first.stdout

        engage.control("engage/agent", {"username": OFFLINE, "online": True})
        retried = run_cli("retry", report, env=ENV, token=None)  # the report, moved to failed/, is still known
        assert retried.code == 0, retried.output

        rows.append([AGENTS[1], "(650) 555-3003", "20", "866-123-4567"])  # tomorrow's export: one row more
        write_csv(inbox / "dial.csv", [header] + rows)
        again = run_cli(*command, env=ENV, token=None)
        assert again.code == 0, again.output
        assert [r["status"] for r in read_report(inbox / "done" / "dial.results.csv")] == [
            "skipped",
            "skipped",
            "created",
        ]
        dials = sorted(d["destination"] for d in engage.state()["dials"])
        assert dials == ["6505553001", "6505553002", "6505553003"]
    finally:
        engage.stop()


def test_a_final_answer_is_kept_and_a_rerun_sends_nothing_that_can_only_get_it_again(tmp_path):
    engage = EngageEmulator(engage_rate_limit=100_000)
    try:
        path = write_csv(tmp_path / "hangups.csv", [["uii"], [KIM_1], [ENDED]])
        command = ("upload", path, "--api", "engage_hangup", "--account-id", ACCOUNT, "--base-url", engage.voice, *FAST)
        first = run_cli(*command, env=ENV, token=None)
        assert first.code == 1, first.output
        assert [r["failure_kind"] for r in read_report(tmp_path / "hangups.results.csv")] == ["", "call-ended"]
        sent = len(engage.requests_log())
        again = run_cli(*command, env=ENV, token=None)
        assert again.code == 1, again.output
        assert len(engage.requests_log()) == sent  # the ended call is not sent again
        lines = read_report(tmp_path / "hangups.results.csv")
        assert [(r["status"], r["failure_kind"]) for r in lines] == [("skipped", ""), ("failed", "call-ended")]
        assert "--force sends it again" in lines[1]["error"]
        assert "next:" not in again.stdout  # nothing a retry could change
        forced = run_cli(*command, "--force", env=ENV, token=None)
        assert forced.code == 1 and len(engage.requests_log()) == sent + 2
    finally:
        engage.stop()


def test_retry_keeps_the_upload_settings_and_says_what_it_leaves(tmp_path, emulator):
    # Wall-clock times need --timezone; the upload had it, the retry is not asked again.
    path = write_csv(
        tmp_path / "in.csv",
        [
            ["call_start_time", "calling_phone_number", "name"],
            ["2026/11/02 09:15:00 AM", "(415) 555-0134", "Sale"],
            ["2026/11/02 06:00:00 AM", "(415) 555-0199", "Sale"],
        ],
    )  # no such call
    first = run_cli("upload", path, "--timezone", "America/Los_Angeles", "--base-url", emulator.base_url)
    assert first.code == 1
    report = tmp_path / "in.results.csv"
    assert [r["failure_kind"] for r in report_rows(report)] == ["", "not-found"]
    assert f"signal-uploader retry {report} --include-not-found" in first.stdout

    quiet = run_cli("retry", report)
    assert quiet.code == 1
    assert "no failed rows to send again" in quiet.stderr
    assert "1 row(s) whose call was not found yet are left out" in quiet.stderr
    assert "--include-not-found sends them" in quiet.stderr
    sent = emulator.requests
    asked = run_cli("retry", report, "--include-not-found")
    assert_no_traceback(asked)
    assert asked.code == 1 and "--timezone" not in asked.output  # read with the upload's timezone
    assert emulator.requests == sent + 1
    assert report_rows(report)[1]["error_class"] == "RecordNotFound"


def test_a_report_moved_edited_or_from_an_older_version_still_finds_its_source(tmp_path, make_emulator, isolated_state):
    emulator = make_emulator(calls_file=many_calls(tmp_path, 6), fail_rate=1.0)
    path = orders(tmp_path, 6, "week.csv")
    assert (
        run_cli(
            "upload", path, "--base-url", emulator.base_url, "--max-attempts", "1", "--stop-after-failures", "0"
        ).code
        == 1
    )
    emulator.control("faults", {"fail_rate": 0})
    report = tmp_path / "week.results.csv"

    # moved elsewhere (found by its content)
    elsewhere = tmp_path / "sent" / "week.results.csv"
    elsewhere.parent.mkdir()
    shutil.move(report, elsewhere)
    lines = list(csv.reader(elsewhere.read_text(encoding="utf-8-sig").splitlines()))
    assert run_cli("retry", elsewhere, "--max-attempts", "1").code == 0
    assert run_cli("upload", path, "--base-url", emulator.base_url).code == 0
    assert emulator.requests == 6 + 6  # the failed first attempts, then each row once
    assert len(emulator.signals()) == 6

    # a report that no journal noted (an older version's): by its name, with a note; or told with --source
    for journal in (isolated_state / "journals").glob("*.sqlite"):
        with sqlite3.connect(journal) as db:
            db.execute("DELETE FROM reports")
    lines[1][1] = "failed"  # pretend its first row failed
    stale = tmp_path / "old" / "week.results.csv"
    stale.parent.mkdir()
    with open(stale, "w", newline="", encoding="utf-8-sig") as handle:
        csv.writer(handle).writerows(lines)
    result = run_cli("retry", stale, "--base-url", emulator.base_url)
    assert result.code == 0, result.output
    assert "taken to be the report of week.csv (by its name)" in result.stderr
    assert emulator.requests == 12  # that row was confirmed for week.csv already: skipped
    renamed = tmp_path / "old" / "misc.csv"  # a name no source had, a content no journal noted
    with open(renamed, "w", newline="", encoding="utf-8-sig") as handle:
        csv.writer(handle).writerows(lines)
    unknown = run_cli("retry", renamed, "--base-url", emulator.base_url)
    assert unknown.code == 2 and "no journal" in unknown.stderr and "--source FILE" in unknown.stderr
    told = run_cli("retry", renamed, "--base-url", emulator.base_url, "--source", path)
    assert told.code == 0, told.output
    assert emulator.requests == 12


def test_a_fixed_report_uploaded_as_a_file_skips_what_its_upload_confirmed(tmp_path, emulator):
    path = write_csv(
        tmp_path / "leads.csv",
        [
            HEADER,
            ["00000000-00000001", "Sale", "L-1", "good", "10.00"],
            ["00000000-00000002", "Sale", "L-2", "bad", "$20"],
        ],
    )
    assert run_cli("upload", path, "--base-url", emulator.base_url).code == 1
    report = tmp_path / "leads.results.csv"
    lines = list(csv.reader(report.read_text(encoding="utf-8-sig").splitlines()))
    lines[2][-1] = "20.00"  # the invalid amount fixed in the report
    with open(report, "w", newline="", encoding="utf-8-sig") as handle:
        csv.writer(handle).writerows(lines)
    sent = emulator.requests
    fixed = run_cli("upload", report, "--base-url", emulator.base_url, "--report", tmp_path / "fixed.csv")
    assert fixed.code == 0, fixed.output
    assert "leads.results.csv is the report of leads.csv" in fixed.stderr
    assert emulator.requests == sent + 1  # only the fixed row; the confirmed one is skipped
    assert [r["status"] for r in report_rows(tmp_path / "fixed.csv")] == ["skipped", "created"]


def test_upload_rows_and_a_file_of_that_name_share_a_journal(tmp_path, emulator, isolated_state, backend):
    from uploader import upload_rows

    rows = [{"transaction_id": "00000000-00000001", "name": "Sale", "partner_unique_id": "P-1"}]
    result = upload_rows(rows, source="crm.csv", base_url=emulator.base_url, token=TOKEN, journal=backend.url)
    assert result.summary.statuses == {"created": 1}
    path = write_csv(
        tmp_path / "crm.csv", [["transaction_id", "name", "partner_unique_id"], ["00000000-00000001", "Sale", "P-1"]]
    )
    again = run_cli("upload", path, "--base-url", emulator.base_url)
    assert again.code == 0 and emulator.requests == 1
    assert [r["status"] for r in report_rows(tmp_path / "crm.results.csv")] == ["skipped"]


def test_a_journal_of_the_earlier_layout_keyed_by_path_is_taken_over(tmp_path, emulator, isolated_state):
    # An earlier version kept a file's journal under a name made from its full path.
    import hashlib

    path = write_csv(tmp_path / "legacy.csv", [["transaction_id", "name"], ["00000000-00000001", "Sale"]])
    assert run_cli("upload", path, "--base-url", emulator.base_url).code == 0
    journals = isolated_state / "journals"
    (current,) = journals.glob("legacy-*.sqlite")

    def digest(*parts):
        return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()

    old = journals / f"legacy-signals-{digest(str(path.resolve()), 'signals', emulator.base_url)[:16]}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        if current.with_name(current.name + suffix).exists():
            current.with_name(current.name + suffix).rename(old.with_name(old.name + suffix))
    again = run_cli("upload", path, "--base-url", emulator.base_url)
    assert again.code == 0, again.output
    assert emulator.requests == 1  # what the old journal confirmed was taken over
    assert not old.exists() and list(journals.glob("legacy-*.taken-over"))


def test_the_page_and_the_command_line_meet_in_one_journal(tmp_path, emulator, isolated_state, backend):
    """The page's library (its Workspace) stores an upload as a copy; the CLI then uploads the analyst's file."""
    from uploader.config import resolve
    from uploader.web.workspace import Workspace, journal_sources

    book = write_xlsx(
        tmp_path / "June Bulk.xlsx",
        [
            ["transaction_id", "name", "partner_unique_id", "sale_amount"],
            ["00000000-00000001", "Sale", "J-1", 149.99],
            ["00000000-00000002", "Sale", "J-2", 20],
        ],
    )
    settings = resolve(
        {"base_url": emulator.base_url, "state_dir": isolated_state, "journal": backend.url}, environ={}
    )  # `serve --journal URL`
    work = Workspace(settings, environ={"INVOCA_API_TOKEN": TOKEN})
    stored = work.add_file(book.name, [book.read_bytes()])
    preview = work.preview(stored.id, {"api": "signals", "timezone": "America/New_York"})
    run = work.upload(preview.id)
    run.run.wait(60)
    assert run.record["exit_code"] == 0 and emulator.requests == 2
    sources = [s["source"] for s in journal_sources(settings)]
    assert sources == ["June Bulk.xlsx"]  # the analyst's name, not the stored copy's path

    result = run_cli("upload", book, "--base-url", emulator.base_url)
    assert result.code == 0, result.output
    assert emulator.requests == 2  # the CLI upload of the same workbook sends nothing
    assert [r["status"] for r in report_rows(tmp_path / "June Bulk.results.xlsx")] == ["skipped", "skipped"]
    assert [s["source"] for s in journal_sources(settings)] == ["June Bulk.xlsx"]


def test_a_journal_written_by_a_newer_version_is_refused_not_misread(tmp_path, make_emulator, isolated_state, backend):
    import sqlite3

    emulator = make_emulator(calls_file=many_calls(tmp_path, 3))
    path = orders(tmp_path, 3)
    assert run_cli("upload", path, "--base-url", emulator.base_url).code == 0
    if backend.url:
        (schema,) = backend.server.query(backend.url, "SELECT schema_name FROM signal_uploader.sources")[0]
        backend.server.query(backend.url, f"UPDATE {schema}.meta SET value = '99' WHERE name = 'schema_version'")
    else:
        (journal,) = (isolated_state / "journals").glob("*.sqlite")
        with sqlite3.connect(journal) as db:
            db.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    before = emulator.requests
    result = run_cli("upload", path, "--base-url", emulator.base_url)
    assert result.code == 2, result.output
    assert "written by a newer signal-uploader" in result.stderr and "upgrade signal-uploader" in result.stderr
    assert_no_traceback(result)
    assert emulator.requests == before
