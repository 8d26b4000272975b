"""Know before you send (issue 30): the plan against the journal, and the warnings only it can give.

A file is uploaded, edited and planned again; what the dry run says each row
will do (new, correction, unchanged, unknown) is checked against what the real
run then does to the emulator. The warnings (a second signal made by a new
``partner_unique_id``, a timezone that the file's own offsets contradict, a
conversion before its call) are checked on files made to show them, and for
no false alarm on the sample files and the genuine-file corpus.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from conftest import SAMPLES, TOKEN, assert_no_traceback, run_cli, write_csv, write_xlsx

TZ = "America/Los_Angeles"
HEADER = ["Transaction ID", "Name", "Partner Unique ID", "Description", "Sale Amount", "Occurred At Time"]
WHEN = "2026/11/02 10:00:00 AM"
FIRST = [
    ["00000000-00000001", "Sale", "P-1", "first", "100.00", WHEN],
    ["00000000-00000002", "Sale", "P-2", "second", "50.00", WHEN],
    ["00000000-00000003", "Quote", "P-3", "third", "", WHEN],
]
# The next export: P-2's amount corrected, a new row, the others as they were.
EDITED = [
    FIRST[0],
    ["00000000-00000002", "Sale", "P-2", "second", "55.00", WHEN],
    FIRST[2],
    ["00000000-00000004", "Sale", "P-4", "fourth", "20.00", WHEN],
]
NEW_WARNINGS = ("duplicate-across-runs", "timezone-contradicts-file", "occurred-before-call")


def rows_of(path: Path) -> list[dict]:
    if path.suffix == ".xlsx":
        values = list(load_workbook(path).active.iter_rows(values_only=True))
        return [{k: ("" if v is None else str(v)) for k, v in zip(values[0], row)} for row in values[1:]]
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def write(path: Path, rows: list[list]) -> Path:
    return write_xlsx(path, [HEADER, *rows]) if path.suffix == ".xlsx" else write_csv(path, [HEADER, *rows])


def upload(emulator, path: Path, *args, timezone: str = TZ):
    result = run_cli(
        "upload", path, "--timezone", timezone, "--base-url", emulator.base_url, *args, "--summary-json", summary(path)
    )
    assert_no_traceback(result)
    return result


def summary(path: Path) -> Path:
    return path.with_name(path.name + ".summary.json")


def read_summary(path: Path) -> dict:
    return json.loads(summary(path).read_text(encoding="utf-8"))


def report_of(path: Path, kind: str = "results") -> Path:
    return path.with_name(f"{path.stem}.{kind}{'.xlsx' if path.suffix == '.xlsx' else '.csv'}")


def plan_of(path: Path) -> Path:
    """A dry run's report: the file's plan, beside the report of the last real run."""
    return report_of(path, "plan")


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_file_uploaded_edited_and_planned_again_says_what_each_row_will_do(emulator, tmp_path, suffix):
    path = write(tmp_path / f"june{suffix}", FIRST)
    first = upload(emulator, path)
    assert first.code == 0, first.output
    assert read_summary(path)["plan"] == {"new": 3}
    assert [r["plan"] for r in rows_of(report_of(path))] == ["new"] * 3
    first_ids = {r["Partner Unique ID"]: r["signal_transaction_id"] for r in rows_of(report_of(path))}

    # The next export, under the same name: a dry run asks the journal and sends nothing.
    write(path, EDITED)
    sent = emulator.requests
    dry = upload(emulator, path, "--dry-run")
    assert dry.code == 0, dry.output
    assert emulator.requests == sent
    assert read_summary(path)["plan"] == {"new": 1, "correction": 1, "unchanged": 2}
    report = rows_of(plan_of(path))
    assert [r["status"] for r in report] == ["dry-run"] * 4
    assert [r["plan"] for r in report] == ["unchanged", "correction", "unchanged", "new"]
    assert report[1]["plan_note"].startswith("confirmed on 20")
    assert report[1]["plan_note"].endswith("(row 3) with another sale_amount")
    assert "the journal's plan (what a real run does with each valid row):" in dry.output
    assert "  correction      1   confirmed before with other content" in dry.output

    # The real run does what the plan said, and says how many of its rows were corrections.
    real = upload(emulator, path)
    assert real.code == 0, real.output
    done = read_summary(path)
    assert done["statuses"] == {"skipped": 2, "updated": 1, "created": 1}
    assert done["confirmed_by_plan"] == {"new": 1, "correction": 1}
    assert "of the 2 row(s) the API confirmed now, 1 were corrections" in real.output
    report = rows_of(report_of(path))
    assert [r["plan"] for r in report] == ["unchanged", "correction", "unchanged", "new"]
    assert report[1]["corrects_transaction_id"] == first_ids["P-2"]
    amounts = {s["partner_unique_id"]: s["sale_amount"] for s in emulator.signals()}
    assert amounts["P-2"] == "55.00" and amounts["P-4"] == "20.00"

    # Planned once more: nothing left to send.
    again = upload(emulator, path, "--dry-run")
    assert read_summary(path)["plan"] == {"unchanged": 4}, again.output


def test_a_manual_call_file_planned_again_shows_new_unchanged_and_unknown(tmp_path):
    from test_engage import ACCOUNT, AGENTS, ENV, FAST, EngageEmulator, read_report

    engage = EngageEmulator(engage_rate_limit=100_000, lost_answer_rate=0.5, seed=7)
    try:
        rows = [["username", "destination", "ringDuration", "callerId"]]
        rows += [[AGENTS[i % 3], f"(650) 555-{1000 + i}", "20", "866-123-4567"] for i in range(8)]
        path = write_csv(tmp_path / "dial.csv", rows)
        args = ("--api", "engage_manual_call", "--account-id", ACCOUNT, "--base-url", engage.voice, *FAST)
        first = run_cli("upload", path, *args, env=ENV, token=None)
        assert_no_traceback(first)
        statuses = [r["status"] for r in read_report(tmp_path / "dial.results.csv")]
        assert set(statuses) == {"created", "unknown"}, statuses
        created = [i for i, s in enumerate(statuses) if s == "created"]

        # One dialled row gets another destination: a new call, not a correction of the first.
        edited = created[0]
        rows[1 + edited][1] = "(650) 555-2999"
        write_csv(path, rows)
        dials = len(engage.state()["dials"])
        dry = run_cli("upload", path, *args, "--dry-run", "--summary-json", tmp_path / "s.json", env=ENV, token=None)
        assert_no_traceback(dry)
        assert len(engage.state()["dials"]) == dials  # a dry run dials nobody
        plan = [r["plan"] for r in read_report(tmp_path / "dial.plan.csv")]
        expected = ["unknown" if s == "unknown" else "unchanged" for s in statuses]
        expected[edited] = "new"
        assert plan == expected
        counts = json.loads((tmp_path / "s.json").read_text())["plan"]
        assert counts == {"new": 1, "unchanged": len(created) - 1, "unknown": statuses.count("unknown")}
        unknown_note = read_report(tmp_path / "dial.plan.csv")[statuses.index("unknown")]["plan_note"]
        assert unknown_note.startswith("sent before; no answer said what happened")
        assert "  unknown   " in dry.output and "only retry --include-unknown sends it" in dry.output
    finally:
        engage.stop()


def test_a_new_partner_id_for_a_confirmed_signal_is_warned_about_before_it_makes_a_second_one(emulator, tmp_path):
    path = write(tmp_path / "orders.csv", [FIRST[0]])
    assert upload(emulator, path).code == 0
    signal_id = rows_of(report_of(path))[0]["signal_transaction_id"]
    # Re-exported with new ids: the same call, name, amount and time under P-1b (a second signal);
    # the same call and name with another amount is another sale, not a duplicate.
    write(
        path,
        [
            ["00000000-00000001", "Sale", "P-1b", "first", "100.00", WHEN],
            ["00000000-00000001", "Sale", "P-1c", "add-on", "15.00", WHEN],
        ],
    )
    dry = upload(emulator, path, "--dry-run")
    report = rows_of(plan_of(path))
    assert [r["plan"] for r in report] == ["new", "new"]
    warning = report[0]["warning"]
    assert warning.startswith("the same call, Name, amount and time as the signal confirmed on 20")
    assert f"(row 2, {signal_id}) under another Partner Unique ID" in warning
    assert "sending it makes a second signal" in warning
    assert report[1]["warning"] == ""
    assert read_summary(path)["rows_with_warnings"] == 1, dry.output


def test_the_sample_files_uploaded_then_planned_again_raise_no_new_warning(emulator, tmp_path):
    for name in ("signals.csv", "signals.xlsx"):
        path = tmp_path / name
        path.write_bytes((SAMPLES / name).read_bytes())
        upload(emulator, path)
        upload(emulator, path, "--dry-run")
        report = rows_of(plan_of(path))
        assert not [r["warning"] for r in report if any(w in r["warning"] for w in ("second signal", "started"))]
        assert {r["plan"] for r in report} <= {"unchanged", "new", ""}
        checked = run_cli("validate", path, "--timezone", TZ, "--report", tmp_path / "v.csv")
        text = (tmp_path / "v.csv").read_text(encoding="utf-8-sig")
        assert "say otherwise" not in text and "before the call started" not in text, checked.output


# ------------------------------------------------------------------ the timezone and the call's start


def zone_file(tmp_path: Path, offset_time: str) -> Path:
    return write_csv(
        tmp_path / "mixed.csv",
        [
            ["Transaction ID", "Name", "Partner Unique ID", "Occurred At Time"],
            ["00000000-00000001", "Sale", "1", offset_time],
            ["00000000-00000002", "Sale", "2", "2026/06/01 11:00:00 AM"],
            ["00000000-00000003", "Sale", "3", "2026/06/02 09:30:00 AM"],
        ],
    )


def test_a_timezone_the_files_own_offsets_contradict_is_warned_about_naming_both(tmp_path):
    path = zone_file(tmp_path, "2026-06-01T10:00:00+02:00")
    result = run_cli("validate", path, "--timezone", "America/Chicago", "--report", tmp_path / "v.csv")
    assert result.code == 0, result.output  # a warning, not a refusal
    rows = rows_of(tmp_path / "v.csv")
    assert rows[0]["warning"] == ""  # the time with its own offset is exact whatever the zone
    for row in rows[1:]:
        assert (
            "is read as a wall-clock time in America/Chicago, but the file's own times say otherwise"
            in (row["warning"])
        )
        assert (
            "row 2's Occurred At Time '2026-06-01T10:00:00+02:00' carries UTC+02:00, where America/Chicago is "
            "UTC-05:00 on 2026-06-01" in row["warning"]
        )
    assert "warnings        2" in result.output

    # The zone the file was written in: no warning. Nor for UTC times, which any system exports.
    for zone, offset_time in (("Europe/Paris", "2026-06-01T10:00:00+02:00"), ("America/Chicago", "2026-06-01T08:00Z")):
        path = zone_file(tmp_path, offset_time)
        result = run_cli("validate", path, "--timezone", zone, "--report", tmp_path / "v.csv")
        assert [r["warning"] for r in rows_of(tmp_path / "v.csv")] == ["", "", ""], (zone, result.output)


def test_a_conversion_before_its_calls_start_is_warned_about(tmp_path):
    path = write_csv(
        tmp_path / "early.csv",
        [
            ["Call Start Time", "Calling Phone Number", "Name", "Occurred At Time"],
            ["2026/11/02 09:15:00 AM", "(415) 555-0134", "Sale", "2026/11/02 08:15:00 AM"],  # an hour before
            ["2026/11/02 09:15:00 AM", "(415) 555-0134", "Quote", "2026/11/02 09:14:30 AM"],  # clocks differ
            ["2026/11/02 09:15:00 AM", "(415) 555-0134", "Lead", "2026/11/02 09:20:00 AM"],
        ],
    )
    result = run_cli("validate", path, "--timezone", TZ, "--report", tmp_path / "v.csv")
    assert result.code == 0, result.output
    warnings = [r["warning"] for r in rows_of(tmp_path / "v.csv")]
    assert warnings[0] == (
        "Occurred At Time '2026-11-02 16:15:00 UTC': is before the call started (2026-11-02 17:15:00 UTC, the "
        "row's Call Start Time): a conversion happens on or after its call; check the two times' dates and "
        "timezones"
    )
    assert warnings[1:] == ["", ""]


# ------------------------------------------------------------------ folder mode and the Python API


def test_a_nightly_folder_run_says_what_changed_per_file(emulator, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write(inbox / "orders.csv", FIRST)
    args = ("upload", inbox, "--timezone", TZ, "--base-url", emulator.base_url)
    first = run_cli(*args, "--summary-json", tmp_path / "night1.json")
    assert first.code == 0, first.output
    write(inbox / "orders.csv", EDITED)  # tomorrow's export, under the same name
    second = run_cli(*args, "--summary-json", tmp_path / "night2.json")
    assert second.code == 0, second.output
    night = json.loads((tmp_path / "night2.json").read_text())
    (only,) = night["files"]
    assert only["summary"]["plan"] == {"new": 1, "correction": 1, "unchanged": 2}
    assert only["summary"]["confirmed_by_plan"] == {"new": 1, "correction": 1}
    assert "  unchanged       2   confirmed before with the same content: skipped" in second.output
    assert ".csv: done (1 new, 1 correction, 2 unchanged)" in second.output  # the nightly log's line (done/ has one)


def test_upload_rows_dry_run_plans_against_the_rows_source(emulator, tmp_path):
    from uploader import upload_rows

    def rows(data):
        return [dict(zip(HEADER, row)) for row in data]

    options = dict(
        source="crm.orders", base_url=emulator.base_url, token=TOKEN, timezone=TZ, state_dir=tmp_path / "state"
    )
    upload_rows(rows(FIRST), **options)
    planned = upload_rows(rows(EDITED), dry_run=True, **options)
    assert planned.rows["plan"].tolist() == ["unchanged", "correction", "unchanged", "new"]
    assert planned.summary.plan == {"new": 1, "correction": 1, "unchanged": 2}
    assert "sale_amount" in planned.rows.loc[1, "plan_note"]


# ------------------------------------------------------------------ the fast path decides as the slow one


def test_rows_recognised_by_their_fingerprints_are_planned_exactly_as_built_ones(tmp_path):
    """Journal.sift (a rerun recognises confirmed rows without building them) against Journal.plan, on edited files."""
    import random
    import shutil

    import numpy as np

    from uploader.config import resolve
    from uploader.journal import Journal, Occurrences
    from uploader.outcome import Outcome
    from uploader.pipeline.stream import check_table
    from uploader.read import read_table

    settings = resolve({"timezone": TZ, "base_url": "https://invoca.net/api/2020-10-01"})
    target = settings.target

    def checked(rows: list[list]) -> object:
        path = write_csv(tmp_path / "f.csv", [HEADER, *rows])
        validation = check_table(read_table(path, fields=target.fields), settings)
        return validation.rows[validation.valid.to_numpy()]

    def confirm(journal: Journal, rows) -> None:
        work, _, ids = journal.sift(rows, target, seen=Occurrences(), fingerprints_seen=Occurrences(), deferred={})
        journal.record_many(
            [(ids[i.row], Outcome(i.row, "created", 201, signal_transaction_id="S")) for w in work for i in w]
        )

    for trial in range(12):
        rng = random.Random(trial)
        ids_ = [f"00000000-0000000{n}" for n in range(1, 8)]
        base = [
            [
                rng.choice(ids_),
                rng.choice(["Sale", "Quote"]),
                f"P-{rng.randrange(6)}",
                "d",
                f"{rng.randrange(3)}.00",
                WHEN,
            ]
            for _ in range(14)
        ]
        state = tmp_path / f"state{trial}"
        journal = Journal.open(state, "f.csv", "signals", settings.base_url)
        confirm(journal, checked(base))
        journal.close()
        # The next file: some rows edited, some added, some dropped, some moved.
        edited = [list(r) for r in base if rng.random() > 0.15]
        for row in edited:
            if rng.random() < 0.2:
                row[4] = f"{rng.randrange(3)}.50"
        edited += [list(rng.choice(base)) for _ in range(3)]
        rng.shuffle(edited[: len(edited) // 2])
        rows = checked(edited)
        copy = tmp_path / f"copy{trial}"
        shutil.copytree(state, copy)
        fast = Journal(next((state / "journals").glob("*.sqlite")))
        slow = Journal(next((copy / "journals").glob("*.sqlite")))
        for deferred in (None, {}):
            got = fast.sift(rows, target, seen=Occurrences(), fingerprints_seen=Occurrences(), deferred=deferred)
            fast_deferred = dict(deferred or {})
            deferred2 = None if deferred is None else {}
            want = slow.plan(target.prepare(rows), seen=Occurrences(), deferred=deferred2)
            assert [[i.row for i in lane] for lane in got[0]] == [[i.row for i in lane] for lane in want[0]], trial
            assert sorted(got[1]) == sorted(want[1]), trial
            assert sorted(fast_deferred) == sorted(deferred2 or {}), trial
            for lane in got[0]:
                for item in lane:
                    assert got[2][item.row].identity == want[2][item.row].identity
        assert np.all(fast._cache().fp[:-1] < fast._cache().fp[1:])  # the pages were read, sorted, unique
        fast.close()
        slow.close()


def test_occurrences_are_counted_as_a_plain_loop_counts_them():
    import random

    from uploader.journal import Occurrences

    for trial in range(100):
        rng = random.Random(trial)
        counted, plain = Occurrences(), {}
        for _ in range(rng.randint(1, 5)):
            pairs = [
                rng.choice([1, 2, 3, 2**63 + 5, 2**64 - 1, rng.randrange(2**64)]) for _ in range(rng.randint(0, 30))
            ]
            expected = []
            for pair in pairs:
                expected.append(plain.get(pair, 0))
                plain[pair] = plain.get(pair, 0) + 1
            assert counted.number(pairs) == expected, (trial, pairs)


# The journal's tables as the version before the plan wrote them (commit 0a1a5ca).
EARLIER_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE confirmed (identity TEXT PRIMARY KEY, key_hash TEXT NOT NULL, payload_hash TEXT NOT NULL,
    row INTEGER NOT NULL, status TEXT NOT NULL, http_status INTEGER, signal_transaction_id TEXT,
    corrects_transaction_id TEXT, call_transaction_id TEXT, confirmed_at REAL NOT NULL, ids TEXT);
CREATE TABLE last_applied (key_hash TEXT PRIMARY KEY, payload_hash TEXT NOT NULL);
CREATE TABLE pending (identity TEXT PRIMARY KEY, row INTEGER NOT NULL, since REAL NOT NULL, error TEXT);
CREATE TABLE final (identity TEXT PRIMARY KEY, row INTEGER NOT NULL, http_status INTEGER,
    error_class TEXT NOT NULL, error TEXT, answered_at REAL NOT NULL);
CREATE TABLE reports (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, written_at REAL NOT NULL, job TEXT NOT NULL,
    settings TEXT NOT NULL);
"""


def test_a_journal_an_earlier_version_wrote_is_planned_and_then_kept_up_to_date(emulator, tmp_path):
    import sqlite3

    state = tmp_path / "state"
    path = write(tmp_path / "june.csv", FIRST)
    assert upload(emulator, path, "--state-dir", state).code == 0
    (journal,) = (state / "journals").glob("*.sqlite")
    # The same journal as the earlier version kept it: its tables, its columns, no salt.
    earlier = tmp_path / "earlier.sqlite"
    db = sqlite3.connect(earlier)
    db.executescript(EARLIER_SCHEMA)
    db.execute("ATTACH DATABASE ? AS now", (str(journal),))
    db.execute(
        "INSERT INTO confirmed SELECT identity, key_hash, payload_hash, row, status, http_status, "
        "signal_transaction_id, corrects_transaction_id, call_transaction_id, confirmed_at, ids FROM now.confirmed"
    )
    db.execute("INSERT INTO last_applied SELECT key_hash, payload_hash FROM now.last_applied")
    db.execute("INSERT INTO meta SELECT * FROM now.meta WHERE name IN ('input', 'api', 'base_url')")
    db.commit()
    db.execute("DETACH DATABASE now")
    db.close()
    for part in journal.parent.glob(journal.name + "*"):
        part.unlink()
    earlier.rename(journal)

    write(path, EDITED)
    dry = upload(emulator, path, "--state-dir", state, "--dry-run")
    assert read_summary(path)["plan"] == {"new": 1, "correction": 1, "unchanged": 2}, dry.output
    report = rows_of(plan_of(path))
    assert report[1]["plan_note"].endswith("(row 3) with other content")  # no field digests then
    sent = emulator.requests
    real = upload(emulator, path, "--state-dir", state)
    assert real.code == 0 and emulator.requests == sent + 2, real.output
    # From now on the journal has what the plan needs: a later edit names its fields.
    write(path, [*EDITED[:3], ["00000000-00000004", "Sale", "P-4", "fourth", "21.00", WHEN]])
    upload(emulator, path, "--state-dir", state, "--dry-run")
    assert rows_of(plan_of(path))[3]["plan_note"].endswith("(row 5) with another sale_amount")


def test_a_dry_run_between_an_upload_and_its_retry_leaves_the_report_to_retry(make_emulator, tmp_path):
    from test_reliability import HEADER as ORDERS
    from test_reliability import many_calls

    emulator = make_emulator(calls_file=many_calls(tmp_path, 12), fail_rate=0.5, seed=3)
    path = write_csv(
        tmp_path / "orders.csv", [ORDERS] + [[f"CALL-{i:05d}", "Sale", str(i), "o", "1.00"] for i in range(12)]
    )
    once = ("--max-attempts", "1", "--stop-after-failures", "0")
    first = upload(emulator, path, *once)
    failed = [r for r in rows_of(report_of(path)) if r["status"] == "failed"]
    assert failed, first.output
    emulator.control("faults", {"fail_rate": 0})
    dry = upload(emulator, path, "--dry-run")
    assert read_summary(path)["plan"] == {"new": len(failed), "unchanged": 12 - len(failed)}, dry.output
    assert "report: " + str(plan_of(path)) in dry.output
    # The report of the real run is untouched: its retry sends exactly the failed rows.
    assert [r for r in rows_of(report_of(path)) if r["status"] == "failed"] == failed
    sent = emulator.requests
    retried = run_cli("retry", report_of(path), "--base-url", emulator.base_url)
    assert retried.code == 0, retried.output
    assert emulator.requests == sent + len(failed) and len(emulator.signals()) == 12
    assert "the journal's plan" in retried.output


def test_a_folder_dry_run_plans_each_file_and_leaves_it_for_the_real_run(emulator, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write(inbox / "orders.csv", FIRST)
    args = ("upload", inbox, "--timezone", TZ, "--base-url", emulator.base_url)
    dry = run_cli(*args, "--dry-run", "--summary-json", tmp_path / "dry.json")
    assert dry.code == 0, dry.output
    (planned,) = json.loads((tmp_path / "dry.json").read_text())["files"]
    assert planned["outcome"] == "planned, nothing sent: the file stays" and planned["summary"]["plan"] == {"new": 3}
    assert (inbox / "orders.csv").exists() and (inbox / "orders.plan.csv").exists() and emulator.requests == 0
    real = run_cli(*args)
    assert real.code == 0, real.output
    assert (inbox / "done" / "orders.csv").exists() and len(emulator.signals()) == 3
    assert not (inbox / "done" / "orders.plan.csv").exists()  # the plan was not taken for a file to send


def test_a_contradicted_timezone_is_said_before_any_row_is_sent(emulator, tmp_path):
    from uploader.config import resolve
    from uploader.events import Warned
    from uploader.run import Run

    path = zone_file(tmp_path, "2026-06-01T10:00:00+02:00")
    settings = resolve(
        {"timezone": "America/Chicago", "base_url": emulator.base_url, "state_dir": str(tmp_path / "s")},
        environ={"INVOCA_API_TOKEN": TOKEN},
        need_token=True,
    )
    run = Run(path, settings, job="upload")
    heard = []
    run.subscribe(lambda event: heard.append((event, emulator.requests)) if isinstance(event, Warned) else None)
    run.run()
    ((warned, requests_then),) = heard
    assert warned.code == "timezone-contradicts-file" and requests_then == 0
    assert "carries UTC+02:00, where America/Chicago is UTC-05:00" in warned.message
    result = run_cli(
        "upload",
        zone_file(tmp_path, "2026-06-01T10:00:00+02:00"),
        "--timezone",
        "America/Chicago",
        "--base-url",
        emulator.base_url,
        "--dry-run",
    )
    assert "warning: Occurred At Time '2026/06/01 11:00:00 AM': is read as a wall-clock time in America/Chicago" in (
        result.stderr
    )
