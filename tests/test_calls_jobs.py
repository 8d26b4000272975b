"""Finding calls as jobs of ``Run``: events, cancel and a complete output on every stop.

Against the emulator over loopback: lookups cancelled midway (through the
Python API and by Ctrl-C on the real CLI), a watch started and cancelled as a
``Run``, and a compressed shift of calls watched with the output on a timer
and every change in the log.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from uploader import find_calls, lookup_calls
from uploader.cancel import Cancellation
from uploader.config import resolve
from uploader.errors import Cancelled
from uploader.events import CallSeen, Finished, LookupAnswered, Opened, Polled
from uploader.live_calls import CallFilter
from uploader.pipeline.calls import CallsQuery
from uploader.run import Run
from uploader.secret import Secret

from conftest import ROOT, TOKEN, Emulator, write_csv

ORIGIN = 1_795_780_800.0  # 2026-11-24T12:00:00Z
ORG = {"organization_type": "Advertiser", "organization_id": "1234"}
ONE_CALL = [
    {
        "transaction_id": "T-1",
        "calling_phone_number": "+14155550134",
        "destination_phone_number": "+18885550100",
        "start_s": -60,
        "duration_s": 36000,
        "transfer_after_s": 0,
        "advertiser_id": "1234",
        "network_id": "99",
    }
]


def live_emulator(tmp_path: Path, calls: list[dict], **config) -> Emulator:
    path = tmp_path / "live_calls.json"
    path.write_text(json.dumps(calls), encoding="utf-8")
    config.setdefault("clock_start", ORIGIN)
    config.setdefault("clock_speed", 0.0)
    return Emulator(live_calls_file=path, **config)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def lookups_file(tmp_path: Path, rows: int) -> Path:
    return write_csv(tmp_path / "crm.csv", [["CRM Id", "transaction_id"]] + [[f"A{i}", "T-1"] for i in range(rows)])


# ---------------------------------------------------------------- lookups


def test_lookups_cancelled_midway_through_the_python_api_leave_every_row_in_the_output(tmp_path):
    emulator = live_emulator(tmp_path, ONE_CALL, latency_ms=60)
    try:
        out = tmp_path / "found.xlsx"
        stop, events = Cancellation(), []

        def listener(event):
            events.append(event)
            if sum(isinstance(e, LookupAnswered) for e in events) == 6:
                stop.cancel(Cancelled("cancelled from the page"))

        with pytest.raises(Cancelled) as caught:
            lookup_calls(
                lookups_file(tmp_path, 60),
                base_url=emulator.base_url,
                token=TOKEN,
                out=out,
                on_event=listener,
                cancellation=stop,
                concurrency=2,
                **ORG,
            )
        result = caught.value.result
        statuses = [row["lookup_status"] for row in result.rows]
        found = statuses.count("found")
        assert len(statuses) == 60 and 6 <= found <= 8  # the answers in flight when it stopped were kept
        assert statuses == ["found"] * found + ["not-looked-up"] * (60 - found)
        assert emulator.requests == found  # nothing was asked that is not in the output
        assert result.rows[-1]["lookup_error"] == "not looked up: cancelled from the page"
        assert f"{60 - found} lookup(s) not done" in caught.value.message and str(out) in caught.value.message
        from openpyxl import load_workbook

        sheet = load_workbook(out, read_only=True).active
        written = [row for row in sheet.iter_rows(values_only=True)]
        assert len(written) == 61 and written[1][:3] == ("A0", "T-1", "found")
        assert isinstance(events[0], Opened) and events[0].total == 60
        assert isinstance(events[-1], Finished) and events[-1].exit_code == caught.value.exit_code
    finally:
        emulator.stop()


@pytest.mark.posix
def test_ctrl_c_on_a_lookups_run_writes_every_row_and_says_how_many_were_not_done(tmp_path):
    emulator = live_emulator(tmp_path, ONE_CALL, latency_ms=150)
    try:
        out = tmp_path / "found.csv"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOCA_", "SIGNAL_UPLOADER_"))}
        env["INVOCA_API_TOKEN"] = TOKEN
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uploader",
                "calls",
                "--base-url",
                emulator.base_url,
                "--organization-type",
                "advertiser",
                "--organization-id",
                "1234",
                "--lookups",
                str(lookups_file(tmp_path, 200)),
                "--out",
                str(out),
                "-c",
                "1",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while emulator.requests < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
        assert process.returncode == 130, stderr
        rows = read_csv(out)
        assert len(rows) == 200
        done = [r for r in rows if r["lookup_status"] == "found"]
        assert 4 <= len(done) < 200 and len(done) == emulator.requests
        assert {r["lookup_status"] for r in rows} == {"found", "not-looked-up"}
        assert f"200 lookup(s): {len(done)} found, {200 - len(done)} not-looked-up" in stdout
        assert f"stopped by Ctrl-C; {200 - len(done)} lookup(s) not done; every row is in {out}" in stderr
        assert "Traceback" not in stderr
    finally:
        emulator.stop()


# ---------------------------------------------------------------- a watch as a Run


def test_a_watch_is_a_run_that_a_cancel_ends_normally_with_its_output_written(tmp_path):
    calls = ONE_CALL + [dict(ONE_CALL[0], transaction_id="T-2", start_s=5, duration_s=5, transfer_after_s=0)]
    emulator = live_emulator(tmp_path, calls)
    try:
        settings = resolve({"base_url": emulator.base_url, **ORG})
        from dataclasses import replace

        settings = replace(settings, token=Secret(TOKEN))
        out = tmp_path / "watch.jsonl"
        run = Run(None, settings, job="calls", query=CallsQuery(every=0.05, out=out, filters=CallFilter()))
        seen, polls = [], []
        run.subscribe(lambda e: seen.append((e.kind, e.row["transaction_id"])) if isinstance(e, CallSeen) else None)
        run.subscribe(lambda e: polls.append(e) if isinstance(e, Polled) else None)
        run.start()
        deadline = time.monotonic() + 20
        while not polls and time.monotonic() < deadline:
            time.sleep(0.02)
        emulator.control("clock", {"advance": 6})  # T-2 is on now, for five seconds of the clock
        while ("new", "T-2") not in seen and time.monotonic() < deadline:
            time.sleep(0.02)
        run.cancel()
        result = run.wait(timeout=20)
        assert result.exit_code == 0 and result.stopped == "cancelled"
        assert seen == [("new", "T-1"), ("new", "T-2")]
        written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [r["transaction_id"] for r in written] == ["T-1", "T-2"] and written[1]["first_seen_utc"]
        assert result.writes == 1  # the timer (60 s) never came round: once, at the end
        assert polls[-1].captured == 2 and result.polls == len(polls)
    finally:
        emulator.stop()


def test_find_calls_lists_once_and_watches_until_a_deadline(tmp_path):
    emulator = live_emulator(tmp_path, ONE_CALL)
    try:
        once = find_calls(base_url=emulator.base_url, token=TOKEN, **ORG)
        assert [row["transaction_id"] for row in once.rows] == ["T-1"] and once.exit_code == 0
        watched = find_calls(
            base_url=emulator.base_url, token=TOKEN, watch=0.1, until="1s", out=tmp_path / "w.csv", **ORG
        )
        assert watched.polls >= 2 and [r["transaction_id"] for r in read_csv(tmp_path / "w.csv")] == ["T-1"]
        assert watched.stopped is None
    finally:
        emulator.stop()


# ---------------------------------------------------------------- a shift


def shift(calls: int, hours: float, seed: int = 7) -> list[dict]:
    """``calls`` calls spread over ``hours`` hours, 1 to 12 minutes each, some carrying custom data."""
    rng = random.Random(seed)
    out = []
    for number in range(calls):
        start = rng.uniform(0, hours * 3600)
        out.append(
            {
                "transaction_id": f"S-{number:05d}",
                "calling_phone_number": f"+1415{rng.randrange(10**7):07d}",
                "destination_phone_number": "+18885550100",
                "start_s": start,
                "duration_s": rng.uniform(60, 720),
                "transfer_after_s": 0,
                "advertiser_id": "1234",
                "network_id": "99",
                **({"custom_data": {"Campaign": "Brand"}} if number % 3 == 0 else {}),
            }
        )
    return out


def test_a_compressed_shift_logs_every_call_after_every_poll_and_rewrites_the_workbook_on_a_timer(tmp_path):
    # One hour of 2,000 calls at 600x: six seconds. The bench runs the ten-hour shift of 20,000.
    emulator = live_emulator(tmp_path, shift(2000, 1.0), clock_speed=600.0)
    try:
        out = tmp_path / "shift.xlsx"
        settings = resolve({"base_url": emulator.base_url, **ORG})
        from dataclasses import replace

        settings = replace(settings, token=Secret(TOKEN))
        query = CallsQuery(every=0.1, until=time.time() + 6.5, out=out, write_every=2.0)
        started = time.monotonic()
        result = Run(None, settings, job="calls", query=query).run()
        elapsed = time.monotonic() - started
        log = [json.loads(line) for line in query.log_path().read_text(encoding="utf-8").splitlines()]
        new = [e["transaction_id"] for e in log if e["change"] == "new"]
        gone = {e["transaction_id"] for e in log if e["change"] == "gone"}
        assert len(new) == len(set(new)) == len(result.rows) > 1500  # of the 2,000 (a poll is 60 s of the clock)
        assert gone <= set(new) and len(gone) > 300  # calls that ended while watched say when they were last seen
        from openpyxl import load_workbook

        sheet = load_workbook(out, read_only=True).active
        assert sum(1 for _ in sheet.iter_rows(values_only=True)) == len(result.rows) + 1
        # The workbook is rewritten on its timer and once at the end, never per poll.
        assert 2 <= result.writes <= elapsed / 2.0 + 2 and result.polls > 5 * result.writes
    finally:
        emulator.stop()


def test_a_rejected_token_stops_a_lookups_run_with_every_row_written(tmp_path):
    emulator = live_emulator(tmp_path, ONE_CALL)
    try:
        out = tmp_path / "found.csv"
        from uploader.errors import AuthenticationError

        with pytest.raises(AuthenticationError) as caught:
            lookup_calls(
                lookups_file(tmp_path, 30),
                base_url=emulator.base_url,
                token="tok-REJECTED-9f3",
                out=out,
                concurrency=2,
                **ORG,
            )
        rows = read_csv(out)
        assert len(rows) == 30 and {r["lookup_status"] for r in rows} == {"not-looked-up"}
        assert emulator.requests <= 2  # the window, not the file
        assert "REJECTED-9f3" not in out.read_text(encoding="utf-8") + caught.value.message
    finally:
        emulator.stop()


def test_a_run_refuses_a_calls_job_without_its_query():
    settings = resolve({})
    with pytest.raises(ValueError, match="take a query"):
        Run(None, settings, job="calls")
    with pytest.raises(ValueError, match="needs a source"):
        Run(None, settings, job="upload")
