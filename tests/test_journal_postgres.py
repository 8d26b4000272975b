"""The journal and the run lock in a real PostgreSQL database, shared by runners that share nothing else.

Each "machine" here is a process of its own with its own state folder, its
own folder of local locks (``XDG_RUNTIME_DIR``) and its own home for state
(``XDG_STATE_HOME``): all they share is the database's URL, as two workers
of an orchestrator would. The journal's other promises (kill -9 and resume,
retry then rerun, manual calls never dialled twice, lost answers) run against
both backends in test_reliability.py, test_one_journal.py and test_engage.py
(their ``backend`` parameter).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pg_server
import pytest
from test_cli_upload import report_rows
from test_reliability import actual_state, expected_state, many_calls, signals_file

from conftest import ROOT, TOKEN, assert_no_traceback, run_cli

pytestmark = pytest.mark.posix  # kill -9 and XDG folders; the backend itself is tested on every platform by CI


class Machine:
    """A runner with nothing of its own in common with the others but the database URL."""

    def __init__(self, tmp_path: Path, name: str, url: str):
        self.home = tmp_path / name
        self.state = self.home / "state"
        self.url = url
        (self.home / "run").mkdir(parents=True)

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNAL_UPLOADER_", "INVOCA_", "PG"))}
        env.update(
            INVOCA_API_TOKEN=TOKEN,
            SIGNAL_UPLOADER_JOURNAL=self.url,
            PGPASSWORD=pg_server.PASSWORD,
            XDG_RUNTIME_DIR=str(self.home / "run"),
            XDG_STATE_HOME=str(self.home / "xdg"),
        )
        return env

    def start(self, path: Path, base_url: str, *args) -> subprocess.Popen:
        command = [sys.executable, "-m", "uploader", "upload", str(path), "--base-url", base_url]
        command += ["--state-dir", str(self.state), "--no-progress", *map(str, args)]
        return subprocess.Popen(
            command, env=self.env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def run(self, path: Path, base_url: str, *args) -> tuple[int, str, str]:
        process = self.start(path, base_url, *args)
        out, err = process.communicate(timeout=300)
        return process.returncode, out, err


@pytest.fixture
def database(postgres_server):
    return postgres_server.database()


def test_a_second_machine_finds_the_first_ones_confirmed_rows_and_sends_none(tmp_path, make_emulator, database):
    emulator = make_emulator(calls_file=many_calls(tmp_path, 50))
    path, data = signals_file(tmp_path, 60, 50)
    first, second = Machine(tmp_path, "a", database), Machine(tmp_path, "b", database)
    code, out, err = first.run(path, emulator.base_url)
    assert code == 0, out + err
    sent = emulator.requests
    assert sent == 60

    code, out, err = second.run(path, emulator.base_url, "--report", tmp_path / "second.csv")
    assert code == 0, out + err
    assert emulator.requests == sent  # nothing sent again
    rows = report_rows(tmp_path / "second.csv")
    assert {r["status"] for r in rows} == {"skipped"} and all(r["signal_transaction_id"] for r in rows)
    assert re.search(r"unchanged\s+60\s", out), out
    assert not (second.state / "journals").exists()  # its state folder holds no journal: the database does
    assert actual_state(emulator) == expected_state(data)


def test_two_machines_at_once_one_sends_and_the_other_is_refused_or_waits(tmp_path, make_emulator, database):
    emulator = make_emulator(calls_file=many_calls(tmp_path, 200), latency_ms=10)
    path, data = signals_file(tmp_path, 200, 200)
    a, b = Machine(tmp_path, "a", database), Machine(tmp_path, "b", database)
    runs = [
        m.start(path, emulator.base_url, "--concurrency", "2", "--report", tmp_path / f"{m.home.name}.csv")
        for m in (a, b)
    ]
    answers = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in runs]
    codes = sorted(code for code, _, _ in answers)
    assert codes == [0, 2], answers
    refused = next(err for code, _, err in answers if code == 2)
    assert "already working on big.csv" in refused and "signal-uploader pid" in refused, refused
    assert "--wait-for-lock" in refused
    assert_no_traceback(type("R", (), {"output": refused})())
    assert emulator.requests == 200  # each row once

    # Given --wait-for-lock, the second waits for the first, then finds every row confirmed (another
    # API address: another source, never sent).
    fresh = make_emulator(calls_file=many_calls(tmp_path, 200), latency_ms=10)
    runs = [
        m.start(
            path, fresh.base_url, "--concurrency", "2", "--wait-for-lock", "120", "--report", tmp_path / f"w{i}.csv"
        )
        for i, m in enumerate((a, b))
    ]
    answers = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in runs]
    assert [code for code, _, _ in answers] == [0, 0], answers
    statuses = [{r["status"] for r in report_rows(tmp_path / f"w{i}.csv")} for i in range(2)]
    assert {"skipped"} in statuses and any(s <= {"created", "updated"} for s in statuses), statuses
    assert fresh.requests == 200
    assert actual_state(fresh) == expected_state(data)


def test_kill_9_one_machine_mid_file_and_the_other_takes_the_source_over(tmp_path, make_emulator, postgres_server):
    database = postgres_server.database()
    emulator = make_emulator(calls_file=many_calls(tmp_path, 400), latency_ms=15)
    path, data = signals_file(tmp_path, 400, 400)
    a, b = Machine(tmp_path, "a", database), Machine(tmp_path, "b", database)
    from conftest import Backend

    journal = Backend("postgresql", database, postgres_server)
    process = a.start(path, emulator.base_url, "--concurrency", "4")
    deadline = time.time() + 60
    while time.time() < deadline and journal.confirmed() < 120:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    confirmed = journal.confirmed()
    assert 120 <= confirmed < 400, "the kill should land mid-run"

    before = emulator.requests
    # At once, no waiting: the dead runner's lock ended with its connection.
    code, out, err = b.run(path, emulator.base_url, "--report", tmp_path / "b.csv")
    assert code == 0, out + err
    assert emulator.requests - before == 400 - confirmed  # only the unconfirmed rows
    rows = report_rows(tmp_path / "b.csv")
    assert sum(r["status"] == "skipped" for r in rows) == confirmed
    assert actual_state(emulator) == expected_state(data)


def test_the_database_going_away_mid_run_stops_it_with_a_report_and_a_rerun_is_exact(tmp_path, make_emulator):
    server = pg_server.PostgresServer()  # its own: this test stops it
    try:
        database = server.database()
        from conftest import Backend

        journal = Backend("postgresql", database, server)
        emulator = make_emulator(calls_file=many_calls(tmp_path, 400), latency_ms=15)
        path, data = signals_file(tmp_path, 400, 400)
        machine = Machine(tmp_path, "a", database)
        process = machine.start(path, emulator.base_url, "--concurrency", "4")
        deadline = time.time() + 60
        while time.time() < deadline and journal.confirmed() < 100:
            time.sleep(0.05)
        server.stop("immediate")
        at_stop = emulator.requests
        out, err = process.communicate(timeout=120)
        assert process.returncode == 4, out + err
        assert "journal's database postgresql://uploader@127.0.0.1" in err and "cannot be reached" in err, err
        assert pg_server.PASSWORD not in out + err
        assert "Traceback" not in err
        # It stopped at once: at most the requests in flight, and the next batch of each worker, went out.
        assert emulator.requests - at_stop <= 8
        rows = report_rows(tmp_path / "big.results.csv")
        assert len(rows) == 400
        failed = [r for r in rows if r["status"] == "failed"]
        assert failed and {r["error_class"] for r in failed} == {"NotSent"}, failed[:3]

        server.start()
        recorded = journal.confirmed()
        before = emulator.requests
        code, out, err = machine.run(path, emulator.base_url)
        assert code == 0, out + err
        assert emulator.requests - before == 400 - recorded  # exactly what the journal could not record
        assert actual_state(emulator) == expected_state(data)
    finally:
        server.remove()


def test_manual_calls_the_database_going_away_dials_nothing_it_did_not_note_first(tmp_path):
    from test_engage import ACCOUNT, AGENTS, ENV, EngageEmulator

    from conftest import write_csv

    server = pg_server.PostgresServer()
    engage = EngageEmulator(engage_rate_limit=100_000, latency_ms=40)
    try:
        database = server.database()
        rows = [["username", "destination", "ringDuration", "callerId"]]
        rows += [[AGENTS[i % 3], f"(650) 555-{1000 + i}", "20", "866-123-4567"] for i in range(150)]
        path = write_csv(tmp_path / "dial.csv", rows)
        machine = Machine(tmp_path, "a", database)
        env = {**machine.env(), **ENV}
        env.pop("INVOCA_API_TOKEN")
        command = [sys.executable, "-m", "uploader", "upload", str(path), "--api", "engage_manual_call"]
        command += ["--account-id", ACCOUNT, "--base-url", engage.voice, "--state-dir", str(machine.state)]
        command += ["--rate", "200", "--exceed-documented-rate", "--concurrency", "4", "--no-progress"]
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.time() + 60
        while time.time() < deadline and len(engage.state()["dials"]) < 30:
            time.sleep(0.02)
        server.stop("immediate")
        out, err = process.communicate(timeout=120)
        assert process.returncode == 4, out + err
        assert "cannot be reached" in err
        dialled = sorted(d["destination"] for d in engage.state()["dials"])
        assert 30 <= len(dialled) < 150

        server.start()
        # Every dial that happened was noted before it left: confirmed, or pending (unknown to a rerun).
        again = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert again.returncode in (0, 1), again.stdout + again.stderr
        after = sorted(d["destination"] for d in engage.state()["dials"])
        assert len(after) == len(set(after)), "a destination was dialled twice"
        report = report_rows(tmp_path / "dial.results.csv")
        assert {r["status"] for r in report} <= {"created", "skipped", "unknown"}, report
        unknown = {"".join(c for c in r["destination"] if c.isdigit()) for r in report if r["status"] == "unknown"}
        assert len(unknown) <= 4  # at most the requests in flight when the database went
        everyone = {f"650555{1000 + i}" for i in range(150)}
        assert everyone - set(after) <= unknown  # a row never dialled is one the journal holds as unknown
    finally:
        engage.stop()
        server.remove()


def test_the_password_is_never_printed_logged_or_written(tmp_path, make_emulator, postgres_server):
    emulator = make_emulator(calls_file=many_calls(tmp_path, 10))
    path, _ = signals_file(tmp_path, 10, 10)
    database = postgres_server.database()
    with_password = database.replace("uploader@", f"uploader:{pg_server.PASSWORD}@")
    log = tmp_path / "run.log.jsonl"
    result = run_cli(
        "upload",
        path,
        "--base-url",
        emulator.base_url,
        "--journal",
        with_password,
        "-vv",
        "--log-file",
        log,
        env={"PGPASSWORD": ""},
    )
    assert result.code == 0, result.output
    retry = run_cli("retry", tmp_path / "big.results.csv", "--journal", with_password, "-vv", env={"PGPASSWORD": ""})
    assert retry.code == 0, retry.output
    wrong = run_cli(
        "upload",
        path,
        "--base-url",
        emulator.base_url,
        "--journal",
        database.replace("uploader@", "uploader:nope@"),
        env={"PGPASSWORD": ""},
    )
    assert wrong.code == 4 and "password authentication failed" in wrong.stderr and "nope" not in wrong.output
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    said = result.output + retry.output + wrong.output
    assert pg_server.PASSWORD not in said
    assert not [p for p in written if pg_server.PASSWORD.encode() in p.read_bytes()]
    # Nor in the database itself: every text of every journal table, and the sources' list.
    dump = subprocess.run(
        [pg_server._binary("pg_dump"), "--data-only", database],
        env={**os.environ, "PGPASSWORD": pg_server.PASSWORD},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dump.returncode == 0, dump.stderr
    assert "confirmed" in dump.stdout and pg_server.PASSWORD not in dump.stdout


def test_the_password_from_a_password_file(tmp_path, make_emulator, postgres_server):
    """libpq's password file (PGPASSFILE, the ~/.pgpass format), as a mounted secret would provide it."""
    emulator = make_emulator(calls_file=many_calls(tmp_path, 5))
    path, _ = signals_file(tmp_path, 5, 5)
    database = postgres_server.database()
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{postgres_server.port}:*:{pg_server.USER}:{pg_server.PASSWORD}\n")
    passfile.chmod(0o600)
    environment = {"PGPASSWORD": "", "PGPASSFILE": str(passfile), "SIGNAL_UPLOADER_JOURNAL": database}
    result = run_cli("upload", path, "--base-url", emulator.base_url, env=environment)
    assert result.code == 0, result.output
    assert pg_server.PASSWORD not in result.output
    journal = postgres_server.query(database, "SELECT name FROM signal_uploader.sources")
    assert journal == [("big.csv",)]
