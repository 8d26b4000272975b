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

**One journal per source.** A source is known by its *name*: a file's name
(``june bulk.csv``, whether the command line, the web page or a folder run
sends it), or the name a caller gives rows (``crm.orders``). Every way of
sending a source's rows (``upload``, ``retry`` of its report, folder mode, the
page, ``upload_rows``, the dlt destination) confirms them in the same file. A
copy under another name finds it by its content. A report remembers which
source it came from (:meth:`Journal.remember_report`), so ``retry REPORT``
confirms rows where the upload of the original file will look for them.

A *final* answer (the call had ended: nothing will ever change it) is kept
too, so that a rerun does not send what can only get the same answer again.
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
from pathlib import Path, PureWindowsPath

import numpy as np

from .locking import content_hash as file_sha256
from .outcome import FAILED, UNKNOWN, Outcome, Prepared, lanes

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
-- Answers no later request can change (the call had ended): a rerun does not send them; --force does.
CREATE TABLE IF NOT EXISTS final (identity TEXT PRIMARY KEY, row INTEGER NOT NULL, http_status INTEGER,
                                  error_class TEXT NOT NULL, error TEXT, answered_at REAL NOT NULL);
-- The reports written from this source, and the settings of the run that wrote each (never a secret):
-- `retry REPORT` finds its source here, by the report's path or, once it was moved, by its content.
CREATE TABLE IF NOT EXISTS reports (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, written_at REAL NOT NULL,
                                    job TEXT NOT NULL, settings TEXT NOT NULL);
"""


def default_state_dir() -> Path:
    """The system's state folder for the tool (:func:`uploader.folders.state_folder`)."""
    from .folders import state_folder

    return state_folder()


def known_sources(state_dir: Path) -> list[dict]:
    """What every journal of a state folder knows: each source's API, rows confirmed, rows pending, last answer.

    A source is named as its journal knows it (a file's name; a journal from
    before sources were named by their file's name shows the file's name too).
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
                final = _count(db, "final")
            finally:
                db.close()
        except sqlite3.Error:
            continue  # not a journal of ours, or being created
        out.append(
            {
                "source": _display_name(meta.get("input", path.stem)),
                "api": meta.get("api", ""),
                "base_url": meta.get("base_url", ""),
                "confirmed": confirmed,
                "pending": pending,
                "final": final,
                "last_confirmed": last,
            }
        )
    return sorted(out, key=lambda s: s["last_confirmed"] or 0, reverse=True)


def _source_stem(source: str) -> str:
    """``/data/June Bulk.csv.gz`` -> ``june bulk``: how a report's name refers to its source."""
    name = PureWindowsPath(_display_name(source)).name.lower()
    name = name[:-3] if name.endswith(".gz") else name
    return PureWindowsPath(name).stem


def _count(db: sqlite3.Connection, table: str) -> int:
    try:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:  # a journal from before the table existed
        return 0


def _display_name(source: str) -> str:
    """A source as people name it: a path (how journals named files before) by its file's name."""
    return PureWindowsPath(source).name if ("/" in source or "\\" in source) else source


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()


def payload_hash(payload: dict | None) -> str:
    return _digest(json.dumps(payload, sort_keys=True, separators=(",", ":")))


def _stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", PureWindowsPath(name).stem or name)[:40]


def _own_path(folder: Path, name: str, api: str, base_url: str) -> Path:
    return folder / f"{_stem(name)}-{api}-{_digest('name:' + name, api, base_url)[:16]}.sqlite"


def _legacy_path(folder: Path, input_path: Path, api: str, base_url: str) -> Path:
    """Where an earlier version kept the journal of an input, by its resolved path."""
    resolved = str(Path(input_path).resolve())
    return folder / f"{Path(input_path).stem[:40]}-{api}-{_digest(resolved, api, base_url)[:16]}.sqlite"


def _name_alias(folder: Path, name: str, api: str, base_url: str) -> Path:
    return folder / "by-name" / f"{api}-{_digest('name:' + name, api, base_url)[:32]}"


def _content_alias(folder: Path, content: str, api: str, base_url: str) -> Path:
    return folder / "by-content" / f"{api}-{_digest(content, api, base_url)[:32]}"


def _write_alias(alias: Path, journal: Path) -> None:
    alias.parent.mkdir(parents=True, exist_ok=True)
    alias.write_text(journal.name, encoding="utf-8")


def _follow(alias: Path, folder: Path) -> Path | None:
    try:
        target = folder / alias.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return target if target.parent == folder and target.exists() else None


def locate(state_dir: Path, name: str, api: str, base_url: str, *, content: str | None = None) -> Path:
    """Which journal file holds the source ``name`` (read only: nothing is created).

    Its own, once it exists; else the one its name was found to share; else
    the one of an earlier upload of the same content; else its own, new.

    >>> import tempfile
    >>> locate(tempfile.mkdtemp(), "june bulk.csv", "signals", "https://invoca.net/api/2020-10-01").name[:18]
    'june_bulk-signals-'
    """
    folder = Path(state_dir) / "journals"
    own = _own_path(folder, name, api, base_url)
    if own.exists():
        return own
    for alias in (
        _name_alias(folder, name, api, base_url),
        _content_alias(folder, content, api, base_url) if content else None,
    ):
        found = _follow(alias, folder) if alias is not None and alias.exists() else None
        if found is not None:
            return found
    return own


@dataclass(frozen=True)
class ReportRun:
    """Which source a report was written from, and the settings of the run that wrote it."""

    source: str  # what the source's journal knows it by (a file's name, a table's)
    api: str
    base_url: str
    settings: dict  # the run's settings that shape rows and requests (no secret)
    journal: Path
    found_by: str  # "path", "content" or "name" (a report of an earlier version, by its file name)


_REPORT_NAME = re.compile(r"(?P<stem>.+?)\.results(?:\.\d{8}-\d{6})?\.(?:csv|xlsx|xlsm)", re.IGNORECASE)


def find_report_run(
    state_dir: Path, report: Path, *, api: str | None = None, base_url: str | None = None
) -> ReportRun | None:
    """The run that wrote ``report``, from the journals of a state folder; None when none knows it.

    A report is known by its path, or by its content once moved elsewhere;
    a report no journal noted (written before reports were noted, or moved
    and edited) is matched by its file name (``june bulk.results.csv`` is
    the report of ``june bulk.csv``), the latest such source first.
    ``api`` and ``base_url``, when given, must match. Read-only.
    """
    report = Path(report)
    try:
        wanted, digest = str(report.resolve()), file_sha256(report)
    except OSError:
        return None
    best: tuple[int, float, ReportRun] | None = None
    named = _REPORT_NAME.fullmatch(report.name)
    for path in sorted((Path(state_dir) / "journals").glob("*.sqlite")):
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
            try:
                meta = dict(db.execute("SELECT name, value FROM meta"))
                if (api and meta.get("api") != api) or (base_url and meta.get("base_url") != base_url):
                    continue
                try:
                    rows = db.execute(
                        "SELECT path, sha256, written_at, settings FROM reports WHERE path = ? OR sha256 = ?",
                        (wanted, digest),
                    ).fetchall()
                except sqlite3.OperationalError:
                    rows = []  # a journal from before reports were noted
                last = db.execute("SELECT max(confirmed_at) FROM confirmed").fetchone()[0] or 0.0
            finally:
                db.close()
        except sqlite3.Error:
            continue
        source = meta.get("input", "")
        for noted, _sha, written_at, settings in rows:
            rank = 2 if noted == wanted else 1
            run = ReportRun(
                source,
                meta.get("api", ""),
                meta.get("base_url", ""),
                json.loads(settings),
                path,
                "path" if rank == 2 else "content",
            )
            if best is None or (rank, written_at) > best[:2]:
                best = (rank, written_at, run)
        if not rows and named and source and _source_stem(source) == named.group("stem").lower():
            run = ReportRun(
                source,
                meta.get("api", ""),
                meta.get("base_url", ""),
                {"api": meta.get("api", ""), "base_url": meta.get("base_url", "")},
                path,
                "name",
            )
            if best is None or (0, last) > best[:2]:
                best = (0, last, run)
    return None if best is None else best[2]


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
    error: str = ""  # for an unknown row: what happened when it was sent; for a final one, its answer
    error_class: str = ""  # for a final answer: its class (the call had ended)
    answered_at: float | None = None  # for a final answer: when it came

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
        found = (
            self._once[np.minimum(positions, max(len(self._once) - 1, 0))] == hashes
            if len(self._once)
            else np.zeros(len(hashes), dtype=bool)
        )
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
    return {
        item.row: Entry(_digest(key_hash, content, str(occurrence)), key_hash, content)
        for item, (key_hash, content, _), occurrence in zip(prepared, hashes, occurrences)
    }


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
        self._has_final = self.db.execute("SELECT EXISTS (SELECT 1 FROM final)").fetchone()[0] == 1
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(confirmed)")}
        if "ids" not in columns:  # a journal from before targets named their ids
            self.db.execute("ALTER TABLE confirmed ADD COLUMN ids TEXT")

    @classmethod
    def open(
        cls,
        state_dir: Path,
        name: str,
        api: str,
        base_url: str,
        *,
        content: str | None = None,
        legacy: tuple[Path, ...] = (),
    ) -> Journal:
        """The journal of the source ``name`` for this API and base URL (never the token).

        ``name`` is what the source is known by: a file's name, whichever
        front end sends it, or a table's. A name seen for the first time
        whose ``content`` (the file's SHA-256) an earlier upload had, under
        another name, finds that upload's journal, and keeps it from then on
        (an edited copy of it too). ``legacy`` are the paths of inputs whose
        journal an earlier version kept by path (a file's, a report's): what
        they confirmed is taken into this one, once.
        """
        folder = Path(state_dir) / "journals"
        path = locate(state_dir, name, api, base_url, content=content)
        try:
            journal = cls(path)
            journal.db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('input', ?), ('api', ?), ('base_url', ?)", (name, api, base_url)
            )
            for input_path in legacy:
                old = _legacy_path(folder, input_path, api, base_url)
                if old.exists() and old != path:
                    journal._take_over(old)
            if path != _own_path(folder, name, api, base_url):  # found by content: the name keeps it
                _write_alias(_name_alias(folder, name, api, base_url), path)
            if content:
                _write_alias(_content_alias(folder, content, api, base_url), path)
        except (OSError, sqlite3.Error) as exc:
            from .errors import InputError

            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise InputError(
                f"cannot write the journal {path} ({reason})",
                hint="the state folder must be writable: choose another with --state-dir",
            ) from None
        return journal

    def _take_over(self, old: Path) -> None:
        """Copy what a journal an earlier version kept by path knows into this one, then set it aside."""
        with self._lock, self.db:
            self.db.execute("ATTACH DATABASE ? AS old", (str(old),))
            try:
                self.db.execute("BEGIN")
                tables = {row[0] for row in self.db.execute("SELECT name FROM old.sqlite_master WHERE type='table'")}
                columns = {row[1] for row in self.db.execute("PRAGMA old.table_info(confirmed)")}
                ids = "ids" if "ids" in columns else "NULL"
                self.db.execute(
                    "INSERT OR IGNORE INTO confirmed (identity, key_hash, payload_hash, row, status, http_status, "
                    "signal_transaction_id, corrects_transaction_id, call_transaction_id, confirmed_at, ids) "
                    "SELECT identity, key_hash, payload_hash, row, status, http_status, signal_transaction_id, "
                    f"corrects_transaction_id, call_transaction_id, confirmed_at, {ids} FROM old.confirmed"
                )
                self.db.execute("INSERT OR IGNORE INTO last_applied SELECT * FROM old.last_applied")
                if "pending" in tables:
                    self.db.execute("INSERT OR IGNORE INTO pending SELECT * FROM old.pending")
                self.db.execute("COMMIT")
            finally:
                self.db.execute("DETACH DATABASE old")
        for suffix in ("", "-wal", "-shm"):
            part = old.with_name(old.name + suffix)
            if part.exists():
                os.replace(part, old.with_name(old.name + ".taken-over" + suffix))

    def plan(
        self,
        prepared: list[Prepared],
        *,
        force: bool = False,
        seen: Occurrences | None = None,
        deferred: dict[str, tuple[Prepared, Entry]] | None = None,
        idempotent: bool = True,
        release_unknown: bool = False,
        ids: dict[int, Entry] | None = None,
    ) -> tuple[list[list[Prepared]], dict[int, Earlier], dict[int, Entry]]:
        """Split the work: lanes to send, and rows an earlier run settled (skipped, final or unknown).

        A file read in chunks is planned chunk by chunk, with one ``seen``
        (see :func:`entries`) and one ``deferred`` for the whole file. A
        lane that is all confirmed but whose last row is not what the server
        last applied may be followed by more rows of its key in a later
        chunk, so its last row is not sent at once: it waits in ``deferred``
        (by key) until a later chunk sends or confirms that key, or the file
        ends (:meth:`deferred_lanes`).

        ``ids`` are the rows' entries when the caller computed them over more
        rows than it plans (``retry`` sends some rows of a report, but a row's
        identity counts the repeats before it in the whole file). A row whose
        earlier answer was final (the call had ended) is not sent again
        unless ``force``.
        """
        ids = entries(prepared, seen) if ids is None else ids
        settled: dict[int, Earlier] = {}
        if not force:
            final = self._final([ids[item.row].identity for item in prepared])
            if final:
                settled = {
                    item.row: final[ids[item.row].identity] for item in prepared if ids[item.row].identity in final
                }
                prepared = [item for item in prepared if item.row not in settled]
        if not idempotent:
            work, once, ids = self._plan_once_only(prepared, ids, force=force, release_unknown=release_unknown)
            return work, {**once, **settled}, ids
        if force:
            return lanes(prepared), {}, ids
        done = self._confirmed([ids[item.row].identity for item in prepared])
        applied = self._last_applied([ids[item.row].key_hash for item in prepared])
        to_send: list[list[Prepared]] = []
        skipped: dict[int, Earlier] = dict(settled)
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

    def _plan_once_only(
        self, prepared: list[Prepared], ids: dict[int, Entry], *, force: bool, release_unknown: bool
    ) -> tuple[list[list[Prepared]], dict[int, Earlier], dict[int, Entry]]:
        """Row by row: confirmed rows are skipped (unless ``force``), pending ones reported unknown (unless released)."""
        identities = [ids[item.row].identity for item in prepared]
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

    def _final(self, identities: list[str]) -> dict[str, Earlier]:
        """Rows whose earlier answer was final, as that answer."""
        if not self._has_final:
            return {}
        query = (
            "SELECT identity, row, http_status, error_class, error, answered_at FROM final "
            "JOIN temp.wanted ON final.identity = temp.wanted.value"
        )
        return {
            identity: Earlier(
                row, FAILED, http_status, {}, error or "", error_class=error_class, answered_at=answered_at
            )
            for identity, row, http_status, error_class, error, answered_at in self._lookup(query, identities)
        }

    def pending(self, identities: list[str]) -> dict[str, str]:
        """The identities marked pending, with what happened when they were sent."""
        query = "SELECT identity, error FROM pending JOIN temp.wanted ON pending.identity = temp.wanted.value"
        return {identity: error or "" for identity, error in self._lookup(query, identities)}

    def mark_pending(self, entry: Entry, row: int) -> None:
        """Commit that a request which may not be sent twice is about to go out."""
        with self._lock, self.db:
            self.db.execute("BEGIN")
            self.db.execute(
                "INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?)",
                (entry.identity, row, time.time(), "the run stopped before its answer"),
            )

    def _confirmed(self, identities: list[str]) -> dict[str, Earlier]:
        query = (
            "SELECT identity, row, status, http_status, ids, signal_transaction_id, corrects_transaction_id, "
            "call_transaction_id FROM confirmed JOIN temp.wanted ON confirmed.identity = temp.wanted.value"
        )
        found = {}
        for identity, row, status, http_status, ids, *legacy in self._lookup(query, identities):
            found[identity] = Earlier(
                row,
                status,
                http_status,
                json.loads(ids) if ids else {name: value for name, value in zip(_LEGACY_IDS, legacy) if value},
            )
        return found

    def _last_applied(self, key_hashes: list[str]) -> dict[str, str]:
        query = (
            "SELECT key_hash, payload_hash FROM last_applied "
            "JOIN temp.wanted ON last_applied.key_hash = temp.wanted.value"
        )
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
        unknown = [
            (" ".join(str(x) for x in (o.error_class, o.http_status) if x) or "no answer", e.identity)
            for e, o in answers
            if o.status == UNKNOWN
        ]
        settled = [(e.identity,) for e, o in answers if o.status != UNKNOWN]
        # Failures no later request can change (the target said so: Outcome.final): kept, so that a
        # rerun does not send them again.
        final = [(e, o) for e, o in answers if o.status == FAILED and o.final]
        if not confirmed and not unknown and not final and not self._has_pending and not self._has_final:
            return
        now = time.time()
        with self._lock, self.db:  # one transaction: every table or none
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT OR REPLACE INTO confirmed (identity, key_hash, payload_hash, row, status, http_status, "
                "confirmed_at, ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.identity,
                        e.key_hash,
                        e.payload_hash,
                        o.row,
                        o.status,
                        o.http_status,
                        now,
                        json.dumps(o.ids, separators=(",", ":")),
                    )
                    for e, o in confirmed
                ],
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO last_applied VALUES (?, ?)",
                [(e.key_hash, e.payload_hash) for e, _ in confirmed],
            )
            if self._has_pending:
                self.db.executemany("UPDATE pending SET error = ? WHERE identity = ?", unknown)
                self.db.executemany("DELETE FROM pending WHERE identity = ?", settled)
            if final:
                self.db.executemany(
                    "INSERT OR REPLACE INTO final VALUES (?, ?, ?, ?, ?, ?)",
                    [(e.identity, o.row, o.http_status, o.error_class, o.error, now) for e, o in final],
                )
                self._has_final = True
            elif confirmed and self._has_final:  # sent again with --force, and confirmed this time
                self.db.executemany("DELETE FROM final WHERE identity = ?", [(e.identity,) for e, _ in confirmed])

    @property
    def _has_pending(self) -> bool:
        return self.db.execute("SELECT EXISTS (SELECT 1 FROM pending)").fetchone()[0] == 1

    # -- the reports written from this source -------------------------------

    def remember_report(self, report: Path, *, job: str, settings: dict) -> None:
        """Note that ``report`` was written from this source, with the settings of its run (no secret in them).

        ``retry REPORT`` finds the source by the report's path, or by its
        content once it was moved; a report rewritten in place (a retry)
        replaces its earlier note.
        """
        report = Path(report)
        digest = file_sha256(report)
        with self._lock, self.db:
            self.db.execute("BEGIN")
            self.db.execute(
                "INSERT OR REPLACE INTO reports VALUES (?, ?, ?, ?, ?)",
                (str(report.resolve()), digest, time.time(), job, json.dumps(settings, sort_keys=True, default=str)),
            )

    def report_moved(self, old: Path, new: Path) -> None:
        """A report was moved (folder mode files it under done/ or failed/): it is known at its new place."""
        with self._lock, self.db:
            self.db.execute("BEGIN")
            self.db.execute(
                "UPDATE OR REPLACE reports SET path = ? WHERE path = ?",
                (str(Path(new).resolve()), str(Path(old).resolve())),
            )

    def confirmed_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM confirmed").fetchone()[0]

    def close(self) -> None:
        self.db.close()
