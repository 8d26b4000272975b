"""Reliability end to end: faults, kill -9, reruns, retry, folders, locks, config, logs.

The promise under test: no row is lost, no row is applied twice, and a rerun
finishes the job without resending what was already confirmed.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli_upload import report_rows

from conftest import ROOT, TOKEN, assert_no_traceback, run_cli, write_csv

TZ = "America/Los_Angeles"
HEADER = ["transaction_id", "name", "partner_unique_id", "description", "sale_amount"]


def many_calls(tmp_path, count):
    path = tmp_path / "calls.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["transaction_id", "start_time", "calling_phone_number", "duration_in_seconds"])
        for i in range(count):
            writer.writerow([f"CALL-{i:05d}", 1793639700 + 60 * i, f"+1415555{i % 10000:04d}", 60])
    return path


def signals_file(tmp_path, rows, calls, name="big.csv"):
    """`rows` signals over `calls` calls; every 5th row repeats an earlier key with new content."""
    data = []
    for i in range(rows):
        if i % 5 == 4:
            key = i - 3  # an update of row i-3's signal: must be applied after it
            data.append([f"CALL-{key % calls:05d}", "Sale", str(key), f"update {i}", f"{i}.50"])
        else:
            data.append([f"CALL-{i % calls:05d}", "Sale", str(i), f"row {i}", f"{i}.00"])
    return write_csv(tmp_path / name, [HEADER] + data), data


def expected_state(data):
    """What the file says: per (call, partner id), the last row's content."""
    state = {}
    for call, _, partner, description, amount in data:
        state[(call, partner)] = (description, amount)
    return state


def actual_state(emulator):
    return {
        (s["call_transaction_id"], s["partner_unique_id"]): (s["description"], s["sale_amount"])
        for s in emulator.signals()
    }


def upload(emulator, path, *args):
    return run_cli("upload", path, "--base-url", emulator.base_url, *args)


def test_every_fault_at_once_and_the_state_is_exactly_the_file(tmp_path, make_emulator, backend):
    calls = many_calls(tmp_path, 200)
    emulator = make_emulator(
        calls_file=calls,
        fail_rate=0.08,
        rate_limit_rate=0.01,
        retry_after=1,
        drop_rate=0.05,
        lost_answer_rate=0.05,
        seed=7,
    )
    path, data = signals_file(tmp_path, 300, 200)
    result = upload(emulator, path, "--concurrency", "8", "--max-attempts", "10", "-v")
    assert result.code == 0, result.output
    assert_no_traceback(result)
    assert actual_state(emulator) == expected_state(data)  # every signal, none extra, updates in order
    statuses = {r["status"] for r in report_rows(tmp_path / "big.results.csv")}
    assert statuses <= {"created", "updated"}
    faults = json.loads(_get(emulator, "/_emulator/signals"))["faults"]
    assert set(faults) == {"503", "429", "drop", "lost"}  # each kind really happened


@pytest.mark.slow
def test_long_fault_run(tmp_path, make_emulator):
    calls = many_calls(tmp_path, 1000)
    emulator = make_emulator(
        calls_file=calls,
        fail_rate=0.1,
        rate_limit_rate=0.01,
        retry_after=1,
        drop_rate=0.05,
        lost_answer_rate=0.1,
        seed=11,
        latency_ms=5,
    )
    path, data = signals_file(tmp_path, 3000, 1000)
    result = upload(emulator, path, "--concurrency", "16", "--max-attempts", "12")
    assert result.code == 0, result.output
    assert actual_state(emulator) == expected_state(data)


def test_giving_up_reports_retryable_failures_and_retry_finishes_them(tmp_path, make_emulator, backend):
    calls = many_calls(tmp_path, 20)
    broken = make_emulator(calls_file=calls, fail_rate=1.0, seed=1)
    path, data = signals_file(tmp_path, 20, 20)
    # Every row fails: without --stop-after-failures 0 the run would stop early (tested elsewhere).
    result = upload(broken, path, "--max-attempts", "2", "--stop-after-failures", "0")
    assert result.code == 1
    report = tmp_path / "big.results.csv"
    rows = report_rows(report)
    assert {(r["status"], r["error_class"], r["failure_kind"]) for r in rows} == {
        ("failed", "ServiceUnavailable", "retryable")
    }
    assert "gave up after 2 attempts" in rows[0]["error"]

    healthy = make_emulator(calls_file=calls)
    result = run_cli("retry", report, "--base-url", healthy.base_url)
    assert result.code == 0, result.output
    rows = report_rows(report)  # updated in place
    assert {r["status"] for r in rows} == {"created", "updated"}
    assert [r["row"] for r in rows] == [str(i) for i in range(2, 22)]
    assert actual_state(healthy) == expected_state(data)


def test_retry_leaves_not_found_rows_unless_asked(tmp_path, make_emulator):
    few = many_calls(tmp_path, 3)  # CALL-00000..2 exist; CALL-00003.. not yet
    path = write_csv(
        tmp_path / "in.csv",
        [
            HEADER,
            ["CALL-00001", "Sale", "1", "a", "1.00"],
            ["CALL-00004", "Sale", "2", "late call", "2.00"],
            ["CALL-00002", "Sale", "3", "bad", "1.234"],
        ],
    )
    first = make_emulator(calls_file=few)
    upload(first, path)
    report = tmp_path / "in.results.csv"
    assert [r["failure_kind"] for r in report_rows(report)] == ["", "not-found", ""]

    later = make_emulator(calls_file=many_calls(tmp_path, 10))  # the call has arrived
    result = run_cli("retry", report, "--base-url", later.base_url)
    assert "no failed rows to send again" in result.output
    assert later.requests == 0
    result = run_cli("retry", report, "--base-url", later.base_url, "--include-not-found")
    assert [r["status"] for r in report_rows(report)] == ["created", "created", "invalid"]
    assert result.code == 1  # the invalid row is still invalid
    assert later.requests == 1


@pytest.mark.posix
def test_kill_9_mid_run_then_rerun_completes_without_resending_confirmed(tmp_path, make_emulator, backend):
    calls = many_calls(tmp_path, 400)
    emulator = make_emulator(calls_file=calls, latency_ms=15)
    path, data = signals_file(tmp_path, 400, 400)
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNAL_UPLOADER_")}
    env["INVOCA_API_TOKEN"] = TOKEN
    env.update(backend.env)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uploader",
            "upload",
            path,
            "--base-url",
            emulator.base_url,
            "--concurrency",
            "4",
            "--state-dir",
            state,
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline and backend.confirmed(state) < 120:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    confirmed = backend.confirmed(state)
    assert 120 <= confirmed < 400, "the kill should land mid-run"
    assert not (tmp_path / "big.results.csv").exists()  # no half report: none at all

    requests_before = emulator.requests
    result = upload(emulator, path, "--state-dir", state)
    assert result.code == 0, result.output
    resent = emulator.requests - requests_before
    assert resent == 400 - confirmed  # only the unconfirmed rows (in flight at the kill included)
    assert actual_state(emulator) == expected_state(data)
    rows = report_rows(tmp_path / "big.results.csv")
    assert len(rows) == 400
    assert sum(r["status"] == "skipped" for r in rows) == confirmed
    assert {r["status"] for r in rows} <= {"created", "updated", "skipped"}
    assert all(r["signal_transaction_id"] for r in rows)  # complete: every row has its id


def _confirmed(journal):
    """Rows confirmed in one SQLite journal file (read-only, while a run may be writing it)."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM confirmed").fetchone()[0]
    except sqlite3.Error:
        return 0


def _get(emulator, path):
    import urllib.request

    root = emulator.base_url.split("/api/")[0]
    with urllib.request.urlopen(root + path, timeout=5) as answer:
        return answer.read().decode()


def test_a_second_run_over_the_same_input_is_refused(tmp_path, emulator, isolated_state, backend):
    from uploader.config import resolve
    from uploader.pipeline.upload import source_journal

    path = write_csv(tmp_path / "in.csv", [HEADER, ["00000000-00000001", "Sale", "1", "", ""]])
    # A run of a file of the same name in progress (the page's, say): the same source, the same journal.
    settings = resolve({"base_url": emulator.base_url, "state_dir": isolated_state, "journal": backend.url})
    with source_journal(settings, "in.csv"):
        result = upload(emulator, path)
    assert result.code == 2
    assert "already working on" in result.stderr
    assert emulator.requests == 0
    assert upload(emulator, path).code == 0  # and once it is over, it runs


def test_config_file_with_flags_overriding(tmp_path, emulator):
    path = write_csv(tmp_path / "in.csv", [["call_start_time", "name"], ["2026/11/02 09:15:00 AM", "Sale"]])
    config = tmp_path / "uploader.toml"
    config.write_text(f'base_url = "{emulator.base_url}"\ntimezone = "America/New_York"\nconcurrency = 2\nrate = 50\n')
    result = run_cli("upload", path, "--config", config)
    assert result.code == 1  # 09:15 New York is 06:15 Pacific: no call then
    result = run_cli("upload", path, "--config", config, "--timezone", TZ)
    assert result.code == 0, result.output  # the flag wins
    config.write_text('token = "abc"\n')
    result = run_cli("upload", path, "--config", config)
    assert result.code == 2 and "does not belong in a config file" in result.stderr
    assert "abc" not in result.output


def test_folder_runs_for_nightly_imports(tmp_path, emulator):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good = write_csv(inbox / "a_good.csv", [HEADER, ["00000000-00000001", "Sale", "1", "ok", "1.00"]])
    bad = write_csv(inbox / "b_bad.csv", [HEADER, ["00000000-00000002", "Sale", "1", "", "$1"]])
    broken = inbox / "c_broken.csv"
    broken.write_bytes(b"")
    (inbox / "notes.txt.bak").write_text("ignored")
    for i, p in enumerate((good, bad, broken)):
        os.utime(p, (1000 + i, 1000 + i))  # oldest first
    log = tmp_path / "nightly.jsonl"
    result = run_cli(
        "upload", inbox, "--base-url", emulator.base_url, "--log-file", log, "--summary-json", tmp_path / "nightly.json"
    )
    assert result.code == 2, result.output  # the worst: a file-level error
    nightly = json.loads((tmp_path / "nightly.json").read_text())
    assert [(Path(f["file"]).name, f["exit_code"]) for f in nightly["files"]] == [
        ("a_good.csv", 0),
        ("b_bad.csv", 1),
        ("c_broken.csv", 2),
    ]
    assert nightly["files"][0]["summary"]["statuses"] == {"created": 1}
    assert (inbox / "done" / "a_good.csv").exists() and (inbox / "done" / "a_good.results.csv").exists()
    assert (inbox / "failed" / "b_bad.csv").exists() and (inbox / "failed" / "b_bad.results.csv").exists()
    assert "the file is empty" in (inbox / "failed" / "c_broken.csv.error.txt").read_text()
    assert result.stdout.index("a_good.csv") < result.stdout.index("b_bad.csv")

    # The same content dropped again is not imported twice.
    requests = emulator.requests
    write_csv(inbox / "a_good_again.csv", [HEADER, ["00000000-00000001", "Sale", "1", "ok", "1.00"]])
    result = run_cli("upload", inbox, "--base-url", emulator.base_url, "--log-file", log)
    assert result.code == 0, result.output
    assert "already imported as a_good.csv" in result.stdout
    assert emulator.requests == requests
    assert (inbox / "done" / "a_good_again.csv").exists()

    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert {e["event"] for e in events} == {"row", "summary"}
    assert {(e["status"]) for e in events if e["event"] == "row"} == {"created", "invalid"}
    assert TOKEN not in log.read_text()


def test_log_file_has_one_line_per_row_and_a_summary(tmp_path, emulator):
    path = write_csv(
        tmp_path / "in.csv",
        [HEADER, ["00000000-00000001", "Sale", "1", "", ""], ["99999999", "Sale", "1", "", ""], ["x", "", "", "", ""]],
    )
    log = tmp_path / "run.jsonl"
    upload(emulator, path, "--log-file", log)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    rows = sorted((e["row"], e["status"]) for e in events if e["event"] == "row")
    assert rows == [(2, "created"), (3, "failed"), (4, "invalid")]
    assert events[-1]["event"] == "summary" and events[-1]["statuses"]["created"] == 1


def test_retry_writes_to_report_when_asked_and_leaves_the_original(tmp_path, make_emulator):
    calls = many_calls(tmp_path, 5)
    broken = make_emulator(calls_file=calls, fail_rate=1.0, seed=1)
    path, _data = signals_file(tmp_path, 5, 5)
    upload(broken, path, "--max-attempts", "1")
    report = tmp_path / "big.results.csv"
    before = report.read_bytes()
    healthy = make_emulator(calls_file=calls)
    result = run_cli("retry", report, "--base-url", healthy.base_url, "--report", tmp_path / "second.xlsx")
    assert result.code == 0, result.output
    assert "UserWarning" not in result.stderr
    assert report.read_bytes() == before
    assert {r["status"] for r in report_rows(tmp_path / "second.xlsx")} == {"created", "updated"}
