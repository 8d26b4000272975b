"""Pacing (rate, pause, AIMD, backoff), the sender's retry rules, and journal planning."""

import threading
import time

import pytest

from uploader.config import Secret
from uploader.journal import Journal
from uploader.pacing import AdaptiveLimit, Pause, RateLimiter, RetryPolicy, backoff
from uploader.sender import Outcome, Prepared, Sender, SendPolicy
from uploader.targets import SIGNALS

from conftest import TOKEN


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_rate_limiter_spaces_starts():
    clock = FakeClock()
    limiter = RateLimiter(4, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        limiter.wait()
    assert clock.now == pytest.approx(1.0)  # 5 starts at 4/s: 0, .25, .5, .75, 1.0


def test_pause_holds_every_waiter_until_it_ends():
    clock = FakeClock()
    pause = Pause(clock=clock, sleep=clock.sleep)
    pause.extend(3)
    pause.extend(1)  # a shorter Retry-After does not shorten the pause
    pause.wait()
    assert clock.now == pytest.approx(3)


def test_aimd_halves_once_per_round_and_climbs_back():
    limit = AdaptiveLimit(16)
    for _ in range(10):  # a burst of failures from requests already in flight
        limit.on_overload()
    assert limit.limit == 8 and limit.decreases == 1
    for _ in range(8):  # a round of failures at the new limit: halve again
        limit.on_overload()
    assert limit.limit == 4
    for _ in range(4 + 5 + 6 + 7):
        limit.on_success()
    assert limit.limit == 8
    for _ in range(1000):
        limit.on_success()
    assert limit.limit == 16  # never above --concurrency


def test_aimd_bounds_in_flight_requests():
    limit = AdaptiveLimit(3)
    peak, current, lock = [0], [0], threading.Lock()

    def work():
        limit.acquire()
        with lock:
            current[0] += 1
            peak[0] = max(peak[0], current[0])
        time.sleep(0.01)
        with lock:
            current[0] -= 1
        limit.release()

    threads = [threading.Thread(target=work) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 3


def test_backoff_is_capped_and_jittered():
    waits = [backoff(attempt, base=0.5, cap=4) for attempt in range(1, 12) for _ in range(20)]
    assert max(waits) <= 4 and min(waits) >= 0 and len(set(waits)) > 100


@pytest.mark.parametrize(
    "status,error_class,kind",
    [
        (None, "ConnectionError", "retryable"),
        (429, "", "retryable"),
        (503, "", "retryable"),
        (401, "NotAuthorized", "fix-config"),
        (403, "UnauthorizedAdvertiser", "fix-config"),
        (403, "UnauthorizedOperation", "fix-config"),
        (403, "RecordInvalid", "fix-data"),
        (404, "RecordNotFound", "not-found"),
    ],
)
def test_failure_kinds(status, error_class, kind):
    # The platform's 403 classes are the Signal target's declaration (config_classes), read by its classify hook.
    from uploader.outcome import Outcome
    from uploader.targets import SIGNALS

    assert SIGNALS.classify(Outcome(2, "failed", status, error_class)) == kind


def _items(n, key=lambda i: f"k{i}"):
    return [
        Prepared(
            i + 2,
            key(i),
            {
                "search": {"transaction_id": "00000000-00000001"},
                "signal": {"name": "Sale", "partner_unique_id": key(i), "description": str(i)},
            },
        )
        for i in range(n)
    ]


def test_sender_backs_off_under_overload_and_never_retries_refusals(make_emulator):
    emulator = make_emulator(fail_rate=0.5, seed=3)
    sender = Sender(
        SIGNALS,
        emulator.base_url,
        Secret(TOKEN),
        SendPolicy(concurrency=8, retry=RetryPolicy(max_attempts=20, backoff_base=0.01, backoff_cap=0.05)),
    )
    outcomes = list(sender.send_all([[item] for item in _items(60)]))
    assert {o.status for o in outcomes} == {"created"}
    assert sender.limit.decreases >= 1 and sender.retries > 0

    refusing = make_emulator()
    sender = Sender(SIGNALS, refusing.base_url, Secret(TOKEN), SendPolicy(retry=RetryPolicy(max_attempts=5)))
    bad = Prepared(2, "k", {"search": {"transaction_id": "nope"}, "signal": {"name": "Sale"}})
    [outcome] = list(sender.send_all([[bad]]))
    assert (outcome.http_status, outcome.attempts) == (404, 1)
    assert refusing.requests == 1


def test_journal_plans_prefixes_and_keeps_the_last_row_winning(tmp_path):
    journal = Journal(tmp_path / "j.sqlite")
    # rows 2, 3, 4 share a key; 5 has its own
    items = _items(4, key=lambda i: "A" if i < 3 else "B")
    work, skipped, ids = journal.plan(items)
    assert [[i.row for i in lane] for lane in work] == [[2, 3, 4], [5]] and skipped == {}
    for item in items[:2]:  # killed after rows 2 and 3 were confirmed
        journal.record(ids[item.row], Outcome(item.row, "created", 201, signal_transaction_id=f"S{item.row}"))
    work, skipped, ids = journal.plan(items)
    assert [[i.row for i in lane] for lane in work] == [[4], [5]]
    assert skipped[2].signal_transaction_id == "S2"
    for item in items[2:]:
        journal.record(ids[item.row], Outcome(item.row, "updated", 200))
    assert journal.plan(items)[0] == []  # all done

    # The file is reordered: row 4's content now comes first. All rows are
    # confirmed, but the server holds what was row 4, so the new last row goes again.
    reordered = [
        Prepared(2, "A", items[2].payload),
        Prepared(3, "A", items[0].payload),
        Prepared(4, "A", items[1].payload),
        items[3],
    ]
    work, skipped, _ = journal.plan(reordered)
    assert [[i.row for i in lane] for lane in work] == [[4]]
    assert sorted(skipped) == [2, 3, 5]
    assert [[i.row for i in lane] for lane in journal.plan(items, force=True)[0]] == [[2, 3, 4], [5]]


def test_a_journal_written_before_targets_named_their_ids_still_skips_its_rows(tmp_path):
    import sqlite3

    from uploader.journal import entries

    items = _items(2)
    ids = entries(items)
    # The first version's table: three fixed id columns, no "ids".
    db = sqlite3.connect(tmp_path / "old.sqlite")
    db.executescript("""
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE confirmed (identity TEXT PRIMARY KEY, key_hash TEXT NOT NULL, payload_hash TEXT NOT NULL,
            row INTEGER NOT NULL, status TEXT NOT NULL, http_status INTEGER, signal_transaction_id TEXT,
            corrects_transaction_id TEXT, call_transaction_id TEXT, confirmed_at REAL NOT NULL);
        CREATE TABLE last_applied (key_hash TEXT PRIMARY KEY, payload_hash TEXT NOT NULL);""")
    entry = ids[2]
    db.execute(
        "INSERT INTO confirmed VALUES (?, ?, ?, 2, 'created', 201, 'S2', NULL, 'C2', 0)",
        (entry.identity, entry.key_hash, entry.payload_hash),
    )
    db.execute("INSERT INTO last_applied VALUES (?, ?)", (entry.key_hash, entry.payload_hash))
    db.commit()
    db.close()

    journal = Journal(tmp_path / "old.sqlite")
    work, skipped, ids = journal.plan(items)
    assert [[i.row for i in lane] for lane in work] == [[3]]
    assert (skipped[2].signal_transaction_id, skipped[2].call_transaction_id) == ("S2", "C2")
    journal.record(ids[3], Outcome(3, "created", 201, signal_transaction_id="S3"))
    assert journal.plan(items)[1][3].signal_transaction_id == "S3"


def test_journal_holds_no_content_and_no_token(tmp_path):
    journal = Journal(tmp_path / "j.sqlite")
    item = Prepared(
        2, "id:T1\x1fsale\x1f1", {"search": {"calling_phone_number": "+14155550134"}, "signal": {"name": "Sale"}}
    )
    _, _, ids = journal.plan([item])
    journal.record(ids[2], Outcome(2, "created", 201, signal_transaction_id="S1"))
    journal.close()
    raw = (tmp_path / "j.sqlite").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("j.sqlite-*"))
    assert b"4155550134" not in raw and b"Sale" not in raw and TOKEN.encode() not in raw


def _arrivals(emulator):
    import json
    import urllib.request

    root = emulator.base_url.split("/api/")[0]
    with urllib.request.urlopen(f"{root}/_emulator/arrivals", timeout=5) as answer:
        return json.load(answer)["arrivals"]


def test_retry_after_pauses_every_worker(make_emulator):
    # 5 % of requests are answered 429 "Retry-After: 1"; answers take 50 ms, so
    # the other workers would send a dozen requests during that second if they went on.
    emulator = make_emulator(rate_limit_rate=0.05, retry_after=1, seed=2, latency_ms=50)
    sender = Sender(
        SIGNALS, emulator.base_url, Secret(TOKEN), SendPolicy(concurrency=4, retry=RetryPolicy(max_attempts=20))
    )
    outcomes = list(sender.send_all([[item] for item in _items(60)]))
    assert {o.status for o in outcomes} == {"created"}
    arrivals = _arrivals(emulator)
    first_429 = next(t for t, fault in arrivals if fault == "429")
    # Requests already on the wire may land just after the 429; none is sent during the pause.
    during = [t for t, _ in arrivals if first_429 + 0.3 < t < first_429 + 0.8]
    assert during == []
    assert any(t >= first_429 + 0.95 for t, _ in arrivals)


def test_rate_caps_requests_per_second(make_emulator):
    emulator = make_emulator()
    sender = Sender(SIGNALS, emulator.base_url, Secret(TOKEN), SendPolicy(concurrency=8, rate=20))
    list(sender.send_all([[item] for item in _items(30)]))
    times = sorted(t for t, _ in _arrivals(emulator))
    assert times[-1] - times[0] >= 29 / 20 - 0.05  # 30 starts at most 20 a second, across all workers


def test_occurrence_counts_across_chunks_match_a_plain_count():
    import random

    from uploader.journal import Occurrences

    rng = random.Random(3)
    pairs = [rng.choice([rng.getrandbits(64), rng.randrange(50)]) for _ in range(5000)]  # some repeat often
    seen, plain, got, expected = Occurrences(), {}, [], []
    for start in range(0, len(pairs), 700):  # chunks of uneven sizes
        chunk = pairs[start : start + rng.randrange(1, 700)]
        got += seen.number(chunk)
        for pair in chunk:
            expected.append(plain.get(pair, 0))
            plain[pair] = plain.get(pair, 0) + 1
    assert got == expected
