"""`Run` driven in-process, as the web page and the Python API drive it: events, cancel, rerun.

The emulator runs on loopback, over real HTTP; the run is the library's,
without the CLI.
"""

from __future__ import annotations

import threading

import pytest
from test_cli_upload import report_rows
from test_reliability import expected_state, many_calls, signals_file

from uploader.config import resolve
from uploader.errors import Cancelled
from uploader.events import ChunkChecked, ChunkDone, Finished, Opened, RowAnswered
from uploader.run import Run

from conftest import TOKEN


def settings_for(emulator, **extra):
    return resolve(
        dict(base_url=emulator.base_url, concurrency=2, **extra), environ={"INVOCA_API_TOKEN": TOKEN}, need_token=True
    )


def final_state(emulator):
    return {
        (s["call_transaction_id"], s["partner_unique_id"]): (s["description"], s["sale_amount"])
        for s in emulator.signals()
    }


def test_a_run_reports_every_row_as_it_is_answered(tmp_path, make_emulator):
    emulator = make_emulator(calls_file=many_calls(tmp_path, 30))
    path, data = signals_file(tmp_path, 60, 30)
    run = Run(path, settings_for(emulator, chunk_rows=25))
    events = []
    run.subscribe(events.append)
    result = run.run()

    assert result.exit_code == 0
    assert isinstance(events[0], Opened) and events[0].total == 60
    answered = [e.outcome for e in events if isinstance(e, RowAnswered)]
    assert sorted(o.row for o in answered) == list(range(2, 62))  # every row, once
    assert {o.status for o in answered} == {"created", "updated"}
    assert all(o.signal_transaction_id for o in answered)
    chunks = [e for e in events if isinstance(e, ChunkChecked)]
    assert [(c.first_row, c.rows) for c in chunks] == [(2, 25), (27, 25), (52, 10)]
    assert sum(e.rows for e in events if isinstance(e, ChunkDone)) == 60
    assert isinstance(events[-1], Finished) and events[-1].exit_code == 0 and events[-1].result is result
    assert final_state(emulator) == expected_state(data)


def test_cancel_midway_leaves_a_complete_report_and_a_rerun_sends_only_the_rest(tmp_path, make_emulator):
    emulator = make_emulator(calls_file=many_calls(tmp_path, 100), latency_ms=10)
    path, data = signals_file(tmp_path, 300, 100)
    run = Run(path, settings_for(emulator))
    answered: list[int] = []
    cancelled_at = threading.Event()

    @run.subscribe
    def cancel_after_40(event):
        if isinstance(event, RowAnswered):
            answered.append(event.outcome.row)
            if len(answered) == 40:
                run.cancel()
                cancelled_at.set()

    run.start()
    with pytest.raises(Cancelled) as stopped:
        run.wait(timeout=120)
    assert cancelled_at.is_set() and run.done
    result = stopped.value.result
    rows = report_rows(result.report_path)
    assert [int(r["row"]) for r in rows] == list(range(2, 302))  # complete: every row has its line
    sent = [r for r in rows if r["status"] in ("created", "updated")]
    not_sent = [r for r in rows if r["error_class"] == "NotSent"]
    assert len(sent) + len(not_sent) == 300
    assert 40 <= len(sent) < 300 and not_sent
    assert {r["failure_kind"] for r in not_sent} == {"retryable"}
    assert sorted(int(r["row"]) for r in sent) == sorted(answered)  # the events and the report agree
    requests_before = emulator.requests

    rerun = Run(path, settings_for(emulator))
    result = rerun.run()
    assert result.exit_code == 0
    statuses = {r["row"]: r["status"] for r in report_rows(result.report_path)}
    assert sum(1 for s in statuses.values() if s == "skipped") == len(sent)
    # Only the rows not sent went out again, each once (this emulator fails nothing).
    assert emulator.requests - requests_before == len(not_sent)
    assert final_state(emulator) == expected_state(data)


def test_a_failing_listener_costs_no_row(tmp_path, make_emulator):
    emulator = make_emulator(calls_file=many_calls(tmp_path, 10))
    path, data = signals_file(tmp_path, 10, 10)
    run = Run(path, settings_for(emulator))
    run.subscribe(lambda event: 1 / 0)
    assert run.run().exit_code == 0
    assert final_state(emulator) == expected_state(data)


def test_a_named_source_is_recognised_from_another_place_after_an_edit(tmp_path, make_emulator):
    # A browser upload lands in a temporary file; the page names it by the analyst's file name.
    emulator = make_emulator(calls_file=many_calls(tmp_path, 10))
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    path, data = signals_file(tmp_path / "first", 10, 10, name="upload-1a2b.csv")
    assert Run(path, settings_for(emulator), name="march.csv").run().exit_code == 0
    requests_before = emulator.requests

    # The analyst fixed one row and added one: a new temporary file, new content, the same name.
    data[3] = [data[3][0], "Sale", data[3][2], "fixed", "99.00"]
    data.append(["CALL-00007", "Sale", "new", "added", "1.00"])
    edited, _ = signals_file(tmp_path / "second", 0, 10, name="upload-9f8e.csv")
    edited.write_text(edited.read_text() + "".join(",".join(r) + "\n" for r in data))
    result = Run(edited, settings_for(emulator), name="march.csv").run()

    assert result.exit_code == 0
    statuses = [r["status"] for r in report_rows(result.report_path)]
    assert statuses.count("skipped") == 9
    assert emulator.requests - requests_before == 2  # the fixed row and the new one, nothing else
    assert final_state(emulator) == expected_state(data)

    # Without the name, the edited copy elsewhere is a new source: every row goes out again.
    requests_before = emulator.requests
    (tmp_path / "third").mkdir()
    elsewhere = tmp_path / "third" / "copy.csv"
    elsewhere.write_text(edited.read_text() + "CALL-00008,Sale,more,another,2.00\n")
    Run(elsewhere, settings_for(emulator)).run()
    assert emulator.requests - requests_before == 12
