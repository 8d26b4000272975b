"""Every stop leaves a report and an exact journal: signals, a full disk, a read-only state
folder, an input rewritten mid-run, the same file under two names. Real CLI, emulator on loopback."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli_upload import report_rows
from test_reliability import _confirmed, actual_state, expected_state, many_calls, signals_file

from conftest import ROOT, TOKEN, run_cli


def start_upload(path, emulator, *args, state=None, preexec_fn=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNAL_UPLOADER_", "INVOCA_"))}
    env["INVOCA_API_TOKEN"] = TOKEN
    env["SIGNAL_UPLOADER_CHUNK_ROWS"] = "100"  # several chunks: a stop between them is seen
    command = [sys.executable, "-m", "uploader", "upload", path, "--base-url", emulator.base_url, *args]
    if state is not None:
        command += ["--state-dir", state]
    return subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec_fn
    )


def wait_for_confirmed(state: Path, at_least: int, timeout: float = 60) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = list((state / "journals").glob("*.sqlite")) if (state / "journals").exists() else []
        if found and _confirmed(found[0]) >= at_least:
            return found[0]
        time.sleep(0.05)
    raise AssertionError("the upload did not get going")


@pytest.mark.parametrize("number, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_a_signal_stops_sending_and_writes_the_complete_report(tmp_path, make_emulator, number, code):
    emulator = make_emulator(calls_file=many_calls(tmp_path, 400), latency_ms=20)
    path, data = signals_file(tmp_path, 400, 400)
    state = tmp_path / "state"
    process = start_upload(path, emulator, "--concurrency", "4", state=state)
    journal = wait_for_confirmed(state, 60)
    process.send_signal(number)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    assert "stopping: no new rows are sent" in stderr
    assert "row(s) not sent; report written to" in stderr and "run the same command again" in stderr
    assert "400 row(s)" in stdout  # the summary is printed

    rows = report_rows(tmp_path / "big.results.csv")
    assert len(rows) == 400  # complete: every row has its line
    confirmed = _confirmed(journal)
    statuses = [r["status"] for r in rows]
    assert statuses.count("created") + statuses.count("updated") == confirmed < 400
    unsent = [r for r in rows if r["status"] == "failed"]
    assert unsent and all(r["error_class"] == "NotSent" and r["failure_kind"] == "retryable" for r in unsent)
    assert not list(tmp_path.glob(".big.results.csv.*"))  # no temporary files left

    before = emulator.requests
    again = run_cli("upload", path, "--base-url", emulator.base_url, "--state-dir", state)
    assert again.code == 0, again.output
    assert emulator.requests - before == 400 - confirmed  # the journal stayed exact
    assert actual_state(emulator) == expected_state(data)


def test_a_second_signal_stops_at_once(tmp_path, make_emulator):
    emulator = make_emulator(calls_file=many_calls(tmp_path, 300), latency_ms=3000)  # answers take 3 s
    path, _ = signals_file(tmp_path, 300, 300)
    process = start_upload(path, emulator, "--concurrency", "2", state=tmp_path / "state")
    wait_for_confirmed(tmp_path / "state", 0)  # the journal is open: sending starts
    time.sleep(1.0)  # requests in flight, none answered
    process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - started < 2
    assert process.returncode == 143
    assert "stopped at once by a second SIGTERM" in stderr
    assert "Traceback" not in stderr


def test_an_input_rewritten_mid_run_stops_with_a_report(tmp_path, make_emulator):
    emulator = make_emulator(calls_file=many_calls(tmp_path, 600), latency_ms=10)
    path, _ = signals_file(tmp_path, 600, 600)
    original = path.read_bytes()
    state = tmp_path / "state"
    process = start_upload(path, emulator, "--concurrency", "2", state=state)
    wait_for_confirmed(state, 20)
    # The nightly export is rewritten while the upload runs (a new file over the old one).
    path.write_bytes(original.replace(b"row ", b"new "))
    _stdout, stderr = process.communicate(timeout=120)
    # Chunks of 100 rows: the change is seen before the next chunk is read.
    assert process.returncode == 4, stderr
    assert "changed while it was being uploaded" in stderr
    assert "Traceback" not in stderr
    rows = report_rows(tmp_path / "big.results.csv")
    assert 0 < len(rows) < 600
    assert not any("new " in r["description"] for r in rows)  # never mixed with the new content
    sent = {s["description"] for s in emulator.signals()}
    assert not any(d.startswith("new ") for d in sent)


def _can_mount() -> bool:
    return (
        shutil.which("unshare") is not None
        and subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True).returncode == 0
    )


def in_mount_namespace(setup: str, *args) -> subprocess.CompletedProcess:
    """Run the CLI after ``setup`` (a mount) in a private mount namespace: nothing leaks to the machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNAL_UPLOADER_", "INVOCA_"))}
    env["INVOCA_API_TOKEN"] = TOKEN
    env["SIGNAL_UPLOADER_CHUNK_ROWS"] = "100"
    command = " ".join(shlex.quote(str(a)) for a in [sys.executable, "-m", "uploader", *args])
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", f"{setup} && exec {command}"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(not _can_mount(), reason="needs unshare -m (a private mount namespace) for a small filesystem")
def test_a_report_that_cannot_be_written_names_the_path_and_a_rerun_skips_what_was_sent(tmp_path, make_emulator):
    emulator = make_emulator(calls_file=many_calls(tmp_path, 300))
    path, data = signals_file(tmp_path, 300, 300)
    state = tmp_path / "state"
    small = tmp_path / "small"
    small.mkdir()
    report = small / "big.results.csv"
    # The report goes to a 16 KB filesystem of this command's own, which it outgrows.
    result = in_mount_namespace(
        f"mount -t tmpfs -o size=16k tmpfs {small}",
        "upload",
        path,
        "--base-url",
        emulator.base_url,
        "--state-dir",
        state,
        "--report",
        report,
    )
    assert "Traceback" not in result.stderr
    assert result.returncode == 4, result.stderr
    assert f"could not write the report {report} (No space left on device)" in result.stderr
    assert "internal error" not in result.stderr
    assert emulator.requests > 0

    before = emulator.requests
    again = run_cli("upload", path, "--base-url", emulator.base_url, "--state-dir", state)
    assert again.code == 0, again.output
    rows = report_rows(tmp_path / "big.results.csv")
    skipped = sum(r["status"] == "skipped" for r in rows)
    assert skipped == before  # every answer of the first run was journaled
    assert emulator.requests - before == 300 - skipped
    assert actual_state(emulator) == expected_state(data)


def test_stale_part_files_of_a_killed_run_are_cleaned(tmp_path, make_emulator):
    emulator = make_emulator(calls_file=many_calls(tmp_path, 3))
    path, _ = signals_file(tmp_path, 3, 3)
    stale = tmp_path / ".big.results.csv.abc123.part.csv"
    stale.write_text("half a report")
    result = run_cli("upload", path, "--base-url", emulator.base_url)
    assert result.code == 0, result.output
    assert not stale.exists()


@pytest.mark.skipif(not _can_mount(), reason="needs unshare -m (a private mount namespace) to make a read-only folder")
def test_a_read_only_state_folder_is_a_clear_error_before_anything_is_sent(tmp_path, emulator):
    path, _ = signals_file(tmp_path, 3, 3)
    state = tmp_path / "ro-state"
    state.mkdir()
    # Root ignores file modes, so a read-only mount it is.
    result = in_mount_namespace(
        f"mount -t tmpfs -o ro,size=64k tmpfs {state}",
        "upload",
        path,
        "--base-url",
        emulator.base_url,
        "--state-dir",
        state,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert str(state) in result.stderr and "Read-only file system" in result.stderr
    assert "--state-dir" in result.stderr
    assert emulator.requests == 0


def test_the_same_file_under_two_names_is_not_uploaded_twice_at_once(tmp_path, make_emulator):
    emulator = make_emulator(calls_file=many_calls(tmp_path, 300), latency_ms=100)
    path, data = signals_file(tmp_path, 300, 300)
    link = tmp_path / "same.csv"
    os.link(path, link)
    first = start_upload(path, emulator, "--concurrency", "2", state=tmp_path / "one")  # about 15 s
    wait_for_confirmed(tmp_path / "one", 5)
    second = run_cli("upload", link, "--base-url", emulator.base_url, "--state-dir", tmp_path / "two")
    assert second.code == 2, second.output
    assert "already working on the same content" in second.stderr
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=60)
    assert first.returncode == 143
    journal = next((tmp_path / "one" / "journals").glob("*.sqlite"))
    confirmed = _confirmed(journal)
    assert 5 <= confirmed < 300
    sent = emulator.requests

    # The other name finds the first upload's journal by content: only the rest is sent.
    third = run_cli("upload", link, "--base-url", emulator.base_url, "--state-dir", tmp_path / "one")
    assert third.code == 0, third.output
    assert emulator.requests - sent == 300 - confirmed
    rows = report_rows(tmp_path / "same.results.csv")
    assert sum(r["status"] == "skipped" for r in rows) == confirmed
    assert actual_state(emulator) == expected_state(data)


def test_a_folder_run_leaves_a_file_still_being_written_for_the_next_run(tmp_path, make_emulator):
    import threading

    emulator = make_emulator(calls_file=many_calls(tmp_path, 50))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path, _ = signals_file(inbox, 50, 50, name="drop.csv")
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:10]))
    done = threading.Event()

    def keep_writing():  # the CRM's export, still appending a line every 0.2 s
        for line in lines[10:30]:
            if done.wait(0.2):
                return
            with open(path, "ab") as handle:
                handle.write(line)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        result = run_cli("upload", inbox, "--base-url", emulator.base_url)
    finally:
        done.set()
        writer.join()
    assert result.code == 0, result.output
    assert "drop.csv: still being written: left for the next run" in result.stdout
    assert path.exists() and emulator.requests == 0

    path.write_bytes(b"".join(lines))
    os.utime(path, (time.time() - 10, time.time() - 10))  # settled
    result = run_cli("upload", inbox, "--base-url", emulator.base_url)
    assert result.code == 0, result.output
    assert (inbox / "done" / "drop.csv").exists() and emulator.requests == 50
