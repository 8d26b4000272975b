"""Stage 5b: the journal, so that a rerun finishes the job without resending.

One small SQLite file per input file, API and base URL, under ``--state-dir``.
It holds each row's *confirmed* result (a 200 or 201), keyed by the row's
identity and a hash of its payload, and is committed as each answer arrives,
so it survives ``kill -9`` at any moment: at worst the requests that were in
flight are sent again, which the API's idempotency makes harmless.

What it stores is hashes and the API's transaction ids, never the token and
never the row's content (phone numbers are personal data).

A rerun plans per *lane* (rows sharing a key, in file order): rows already
confirmed with the same payload are skipped, and from the first row that is
not, the rest of the lane is sent, so the last row still wins. If every row of
a lane is confirmed but the last payload the server saw for that key is not
the lane's last row (the file was reordered), the last row is sent again.

For a target that may not be sent twice (a manual call dials), rows are
planned one by one instead, and each request is marked *pending* in the
journal, committed, before it goes out. An answer that settles it (a
success, a refusal) clears the mark; a timeout, a lost answer or a 5xx
leaves it, as does ``kill -9`` mid-request. A rerun reports a pending row
``unknown`` and does not send it; only ``retry --include-unknown`` does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .outcome import UNKNOWN, Outcome, Prepared, lanes

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS confirmed (
    identity TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    row INTEGER NOT NULL,
    status TEXT NOT NULL,
    http_status INTEGER,
    signal_transaction_id TEXT,  -- the first version's three ids; now in ids
    corrects_transaction_id TEXT,
    call_transaction_id TEXT,
    confirmed_at REAL NOT NULL,
    ids TEXT  -- JSON: the ids the target names, e.g. {"signal_transaction_id": "..."}
);
CREATE TABLE IF NOT EXISTS last_applied (key_hash TEXT PRIMARY KEY, payload_hash TEXT NOT NULL);
-- Requests of a target that may not be sent twice, marked before they go out and
-- kept while what happened is unknown: a rerun never sends them again unasked.
CREATE TABLE IF NOT EXISTS pending (identity TEXT PRIMARY KEY, row INTEGER NOT NULL, since REAL NOT NULL,
                                    error TEXT);
"""


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/signal-uploader``, else ``~/.local/state/signal-uploader``."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "signal-uploader"


def known_sources(state_dir: Path) -> list[dict]:
    """What every journal of a state folder knows: each source's API, rows confirmed, rows pending, last answer.

    Read-only: a run writing one of them at the same moment is not disturbed.
    """
    out = []
    for path in sorted((Path(state_dir) / "journals").glob("*.sqlite")):
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
            try:
                meta = dict(db.execute("SELECT name, value FROM meta"))
                confirmed, last = db.execute("SELECT count(*), max(confirmed_at) FROM confirmed").fetchone()
                pending = db.execute("SELECT count(*) FROM pending").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error:
            continue  # not a journal of ours, or being created
        out.append({"source": meta.get("input", path.stem), "api": meta.get("api", ""),
                    "base_url": meta.get("base_url", ""), "confirmed": confirmed, "pending": pending,
                    "last_confirmed": last})
    return sorted(out, key=lambda s: s["last_confirmed"] or 0, reverse=True)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()


def payload_hash(payload: dict) -> str:
    return _digest(json.dumps(payload, sort_keys=True, separators=(",", ":")))


@dataclass(frozen=True)
class Entry:
    """A row's place in the journal."""

    identity: str
    key_hash: str
    payload_hash: str


@dataclass
class Earlier:
    """A confirmed result from an earlier run, with the ids its answer carried."""

    row: int
    status: str
    http_status: int | None
    ids: dict[str, str]
    error: str = ""  # for an unknown row: what happened when it was sent

    def __getattr__(self, name: str) -> str:
        if name.endswith("_id"):
            return self.__dict__.get("ids", {}).get(name, "")
        raise AttributeError(name)


_LEGACY_IDS = ("signal_transaction_id", "corrects_transaction_id", "call_transaction_id")


class Occurrences:
    """How often each (key, payload) pair has appeared so far in a file, counted compactly.

    A pair seen once costs 8 bytes (its 64-bit hash in a sorted array); only
    pairs that repeat get a dict entry. A file is counted chunk by chunk.

    >>> seen = Occurrences()
    >>> seen.number([7, 8, 7]), seen.number([8, 9, 7])
    ([0, 0, 1], [1, 0, 2])
    """

    def __init__(self) -> None:
        self._once = np.empty(0, dtype=np.uint64)  # sorted: every pair of the earlier chunks
        self._repeated: dict[int, int] = {}  # pairs seen more than once: how many times so far

    def number(self, pairs: list[int]) -> list[int]:
        """The occurrence index of each pair (0 the first time), the list read in order."""
        hashes = np.fromiter(pairs, dtype=np.uint64, count=len(pairs))
        # np.isin and np.union1d are ten times slower than a binary search here
        positions = np.searchsorted(self._once, hashes)
        found = self._once[np.minimum(positions, max(len(self._once) - 1, 0))] == hashes if len(self._once) \
            else np.zeros(len(hashes), dtype=bool)
        seen_before = found.tolist()
        here: dict[int, int] = {}  # this list's count so far, by pair
        earlier: dict[int, int] = {}  # the earlier lists' count, by pair
        out = []
        for pair, before in zip(pairs, seen_before):
            if pair not in earlier:
                earlier[pair] = self._repeated.get(pair, 1) if before else 0
            count = here.get(pair, 0)
            out.append(earlier[pair] + count)
            here[pair] = count + 1
        for pair, count in here.items():
            if earlier[pair] + count > 1:
                self._repeated[pair] = earlier[pair] + count
        new = np.sort(hashes[~found])
        new = new[np.r_[True, new[1:] != new[:-1]]] if len(new) else new
        self._once = np.insert(self._once, np.searchsorted(self._once, new), new)
        return out


def entries(prepared: list[Prepared], seen: Occurrences | None = None) -> dict[int, Entry]:
    """Identity of each request: key + payload + which occurrence of that pair.

    Independent of row numbers, so inserting a row above does not make the
    whole file look new. ``seen`` carries the occurrence counts from one
    chunk of a file to the next.
    """
    seen = Occurrences() if seen is None else seen
    hashes = []
    for item in prepared:
        key_hash = _digest(item.key)
        content = payload_hash(item.payload)
        hashes.append((key_hash, content, int(_digest(key_hash, content)[:16], 16)))
    occurrences = seen.number([pair for _, _, pair in hashes])
    return {item.row: Entry(_digest(key_hash, content, str(occurrence)), key_hash, content)
            for item, (key_hash, content, _), occurrence in zip(prepared, hashes, occurrences)}


class Journal:
    """The SQLite journal of one input, API and base URL."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # WAL: a commit is durable once written, so kill -9 loses nothing
        # committed; NORMAL sync is enough for a process crash.
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        # Pending marks are written from the sender's workers while answers are recorded here.
        self._lock = threading.RLock()
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(confirmed)")}
        if "ids" not in columns:  # a journal from before targets named their ids
            self.db.execute("ALTER TABLE confirmed ADD COLUMN ids TEXT")

    @classmethod
    def for_input(cls, state_dir: Path, input_path: Path, api: str, base_url: str,
                  content: str | None = None, name: str | None = None) -> Journal:
        """The journal file for this input, API and base URL (never the token).

        Found by the caller's ``name`` for the source when there is one (a
        table has no path: ``crm.orders``; a browser upload lands in a
        temporary file: its original name), else by the input's path; or
        else by its content (``content``, its SHA-256): the same file under
        another name (a hard link, a copy uploaded from elsewhere) finds the
        journal of its first upload.
        """
        resolved = str(Path(input_path).resolve())
        folder = Path(state_dir) / "journals"
        if name:
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:40]
            path = folder / f"{stem}-{api}-{_digest('name:' + name, api, base_url)[:16]}.sqlite"
        else:
            path = folder / f"{Path(input_path).stem[:40]}-{api}-{_digest(resolved, api, base_url)[:16]}.sqlite"
        alias = folder / "by-content" / f"{api}-{_digest(content or '', api, base_url)[:32]}" if content else None
        try:
            if not path.exists() and alias is not None and alias.exists():
                earlier = folder / alias.read_text(encoding="utf-8").strip()
                if earlier.parent == folder and earlier.exists():
                    path = earlier
            journal = cls(path)
            journal.db.execute("INSERT OR IGNORE INTO meta VALUES ('input', ?), ('api', ?), ('base_url', ?)",
                               (name or resolved, api, base_url))
            if alias is not None:
                alias.parent.mkdir(parents=True, exist_ok=True)
                alias.write_text(path.name, encoding="utf-8")
        except (OSError, sqlite3.Error) as exc:
            from .errors import InputError

            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise InputError(f"cannot write the journal {path} ({reason})",
                             hint="the state folder must be writable: choose another with --state-dir") from None
        return journal

    def plan(self, prepared: list[Prepared], *, force: bool = False, seen: Occurrences | None = None,
             deferred: dict[str, tuple[Prepared, Entry]] | None = None, idempotent: bool = True,
             release_unknown: bool = False
             ) -> tuple[list[list[Prepared]], dict[int, Earlier], dict[int, Entry]]:
        """Split the work: lanes to send, and rows already confirmed (skipped).

        A file read in chunks is planned chunk by chunk, with one ``seen``
        (see :func:`entries`) and one ``deferred`` for the whole file. A
        lane that is all confirmed but whose last row is not what the server
        last applied may be followed by more rows of its key in a later
        chunk, so its last row is not sent at once: it waits in ``deferred``
        (by key) until a later chunk sends or confirms that key, or the file
        ends (:meth:`deferred_lanes`).
        """
        ids = entries(prepared, seen)
        if not idempotent:
            return self._plan_once_only(prepared, ids, force=force, release_unknown=release_unknown)
        if force:
            return lanes(prepared), {}, ids
        done = self._confirmed([e.identity for e in ids.values()])
        applied = self._last_applied([e.key_hash for e in ids.values()])
        to_send: list[list[Prepared]] = []
        skipped: dict[int, Earlier] = {}
        for lane in lanes(prepared):
            first_new = next((i for i, item in enumerate(lane) if ids[item.row].identity not in done), None)
            last = ids[lane[-1].row]
            if deferred is not None:
                deferred.pop(last.key_hash, None)  # this chunk has the key's later rows
                if first_new is None and applied.get(last.key_hash) != last.payload_hash:
                    deferred[last.key_hash] = (lane[-1], last)
            elif first_new is None and applied.get(last.key_hash) != last.payload_hash:
                first_new = len(lane) - 1  # reordered since: make the last row win again
            cut = len(lane) if first_new is None else first_new
            for item in lane[:cut]:
                skipped[item.row] = done[ids[item.row].identity]
            if cut < len(lane):
                to_send.append(lane[cut:])
        return to_send, skipped, ids

    def _plan_once_only(self, prepared: list[Prepared], ids: dict[int, Entry], *, force: bool,
                        release_unknown: bool) -> tuple[list[list[Prepared]], dict[int, Earlier], dict[int, Entry]]:
        """Row by row: confirmed rows are skipped (unless ``force``), pending ones reported unknown (unless released)."""
        identities = [e.identity for e in ids.values()]
        done = {} if force else self._confirmed(identities)
        pending = {} if release_unknown else self.pending(identities)
        to_send: list[Prepared] = []
        skipped: dict[int, Earlier] = {}
        for item in prepared:
            identity = ids[item.row].identity
            if identity in done:
                skipped[item.row] = done[identity]
            elif identity in pending:
                skipped[item.row] = Earlier(item.row, UNKNOWN, None, {}, pending[identity])
            else:
                to_send.append(item)
        return lanes(to_send), skipped, ids

    def pending(self, identities: list[str]) -> dict[str, str]:
        """The identities marked pending, with what happened when they were sent."""
        query = "SELECT identity, error FROM pending JOIN temp.wanted ON pending.identity = temp.wanted.value"
        return {identity: error or "" for identity, error in self._lookup(query, identities)}

    def mark_pending(self, entry: Entry, row: int) -> None:
        """Commit that a request which may not be sent twice is about to go out."""
        with self._lock, self.db:
            self.db.execute("BEGIN")
            self.db.execute("INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?)",
                            (entry.identity, row, time.time(), "the run stopped before its answer"))

    def _confirmed(self, identities: list[str]) -> dict[str, Earlier]:
        query = ("SELECT identity, row, status, http_status, ids, signal_transaction_id, corrects_transaction_id, "
                 "call_transaction_id FROM confirmed JOIN temp.wanted ON confirmed.identity = temp.wanted.value")
        found = {}
        for identity, row, status, http_status, ids, *legacy in self._lookup(query, identities):
            found[identity] = Earlier(row, status, http_status, json.loads(ids) if ids else
                                      {name: value for name, value in zip(_LEGACY_IDS, legacy) if value})
        return found

    def _last_applied(self, key_hashes: list[str]) -> dict[str, str]:
        query = ("SELECT key_hash, payload_hash FROM last_applied "
                 "JOIN temp.wanted ON last_applied.key_hash = temp.wanted.value")
        return dict(self._lookup(query, key_hashes))

    def _lookup(self, query: str, values: list[str]) -> list[tuple]:
        """Rows for just these values (a chunk's), not the whole journal: a join with a temporary table."""
        with self._lock, self.db:
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (value TEXT PRIMARY KEY)")
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM temp.wanted")
            self.db.executemany("INSERT OR IGNORE INTO temp.wanted VALUES (?)", ((v,) for v in values))
            return self.db.execute(query).fetchall()

    def record(self, entry: Entry, outcome: Outcome) -> None:
        """Commit one confirmed answer (a no-op for anything else)."""
        self.record_many([(entry, outcome)])

    def record_many(self, answers: list[tuple[Entry, Outcome]]) -> None:
        """Commit the confirmed answers of a batch in one transaction.

        Answers arrive in lane order, so for a key the last one here is the
        last one applied.
        """
        confirmed = [(e, o) for e, o in answers if o.confirmed]
        unknown = [(" ".join(str(x) for x in (o.error_class, o.http_status) if x) or "no answer", e.identity)
                   for e, o in answers if o.status == UNKNOWN]
        settled = [(e.identity,) for e, o in answers if o.status != UNKNOWN]
        if not confirmed and not unknown and not self._has_pending:
            return
        now = time.time()
        with self._lock, self.db:  # one transaction: every table or none
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT OR REPLACE INTO confirmed (identity, key_hash, payload_hash, row, status, http_status, "
                "confirmed_at, ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(e.identity, e.key_hash, e.payload_hash, o.row, o.status, o.http_status, now,
                  json.dumps(o.ids, separators=(",", ":"))) for e, o in confirmed],
            )
            self.db.executemany("INSERT OR REPLACE INTO last_applied VALUES (?, ?)",
                                [(e.key_hash, e.payload_hash) for e, _ in confirmed])
            if self._has_pending:
                self.db.executemany("UPDATE pending SET error = ? WHERE identity = ?", unknown)
                self.db.executemany("DELETE FROM pending WHERE identity = ?", settled)

    @property
    def _has_pending(self) -> bool:
        return self.db.execute("SELECT EXISTS (SELECT 1 FROM pending)").fetchone()[0] == 1

    def confirmed_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM confirmed").fetchone()[0]

    def close(self) -> None:
        self.db.close()
