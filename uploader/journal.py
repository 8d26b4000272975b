"""Stage 5b: the journal, so that a rerun finishes the job without resending.

One small SQLite file per input file, API and base URL, under ``--state-dir``.
It holds each row's *confirmed* result (a 200 or 201), keyed by the row's
identity and a hash of its payload, and is committed as each answer arrives,
so it survives ``kill -9`` at any moment: at worst the requests that were in
flight are sent again, which the API's idempotency makes harmless.

What it stores is hashes and the API's transaction ids, never the token and
never the row's content (phone numbers are personal data). For the plan
(:mod:`uploader.plan`) it also keeps, per confirmed row, a 64-bit hash of the
row but for its own id (a second signal made by mistake is warned about) and
its fingerprint (:meth:`Journal.sift` recognises it without building it), and
per key a 4-byte digest of each field, keyed by a secret of the journal, so a
correction can say which fields differ, never what they held.

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
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path, PureWindowsPath

import numpy as np
import pandas as pd

from . import plan
from .journal_db import SCHEMA_VERSION, Db, PgLocation, PgSourceLock, PostgresDb, PostgresStore, SqliteDb
from .locking import content_hash as file_sha256
from .outcome import FAILED, UNKNOWN, Outcome, Prepared, lanes, mix64

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
    ids TEXT,  -- JSON: the ids the target names, e.g. {"signal_transaction_id": "..."}
    twin_hash TEXT  -- the row but for its own id (Target.twin): finds a second signal made by mistake
);
-- How a rerun recognises confirmed rows without building their requests (Journal.sift), appended with
-- each commit as packed 64-bit integers, read whole in one go (a later page wins): `fingerprints`, per
-- row (fingerprint with which of the file's equal rows it was, pair, the pair's occurrence, key hash,
-- payload hash, identity); `applied`, per key in the order applied (key hash, payload hash). An
-- accelerator only: what it does not hold is asked of the tables above.
CREATE TABLE IF NOT EXISTS recognition (page INTEGER PRIMARY KEY AUTOINCREMENT, fingerprints BLOB, applied BLOB);
-- Per key, the content the API holds now: what a later row of the key corrects (the plan's `correction`).
-- `fields`: a keyed digest of each field's value (never the value), so a plan can say which fields differ:
-- per field, its number in the meta list `field_names` (2 bytes) and its digest (4 bytes).
CREATE TABLE IF NOT EXISTS last_applied (key_hash TEXT PRIMARY KEY, payload_hash TEXT NOT NULL,
                                         confirmed_at REAL, row INTEGER, fields BLOB, ids TEXT);
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


def _each_journal(state_dir: Path, journal_url: str | None = None):
    """Every journal of a state folder (or of the shared database), read-only: (where, its database)."""
    if journal_url:
        store = PostgresStore(journal_url)
        conn = store.connect(readonly=True)
        db = PostgresDb(conn, store.url)
        try:
            for schema, *_ in store.sources(db):
                location = PgLocation(store.url, schema)
                if not store.exists(db, location):
                    continue  # being created
                db.execute(f"SET search_path TO {schema}")
                yield location, db
        finally:
            db.close()
        return
    for path in sorted((Path(state_dir) / "journals").glob("*.sqlite")):
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
        except sqlite3.Error:
            continue
        try:
            yield path, SqliteDb(conn)
        finally:
            conn.close()


def known_sources(state_dir: Path, journal_url: str | None = None) -> list[dict]:
    """What every journal of a state folder knows: each source's API, rows confirmed, rows pending, last answer.

    A source is named as its journal knows it (a file's name; a journal from
    before sources were named by their file's name shows the file's name too).
    Read-only: a run writing one of them at the same moment is not disturbed.
    With ``journal_url``, the journals of that PostgreSQL database instead.
    """
    out = []
    for where, db in _each_journal(state_dir, journal_url):
        try:
            meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
            confirmed, last = db.execute("SELECT count(*), max(confirmed_at) FROM confirmed").fetchone()
            pending = db.execute("SELECT count(*) FROM pending").fetchone()[0]
            final = _count(db, "final")
        except sqlite3.Error:
            continue  # not a journal of ours, or being created
        stem = where.stem if isinstance(where, Path) else where.schema
        out.append(
            {
                "source": _display_name(meta.get("input", stem)),
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


def _count(db: Db, table: str) -> int:
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
    journal: Path | PgLocation
    found_by: str  # "path", "content" or "name" (a report of an earlier version, by its file name)


_REPORT_NAME = re.compile(r"(?P<stem>.+?)\.(?:results|plan)(?:\.\d{8}-\d{6})?\.(?:csv|xlsx|xlsm)", re.IGNORECASE)


def find_report_run(
    state_dir: Path,
    report: Path,
    *,
    api: str | None = None,
    base_url: str | None = None,
    journal_url: str | None = None,
) -> ReportRun | None:
    """The run that wrote ``report``, from the journals of a state folder; None when none knows it.

    A report is known by its path, or by its content once moved elsewhere;
    a report no journal noted (written before reports were noted, or moved
    and edited) is matched by its file name (``june bulk.results.csv`` is
    the report of ``june bulk.csv``), the latest such source first.
    ``api`` and ``base_url``, when given, must match. Read-only. With
    ``journal_url``, the journals of that PostgreSQL database are asked.
    """
    report = Path(report)
    try:
        wanted, digest = str(report.resolve()), file_sha256(report)
    except OSError:
        return None
    best: tuple[int, float, ReportRun] | None = None
    named = _REPORT_NAME.fullmatch(report.name)
    for path, db in _each_journal(state_dir, journal_url):
        try:
            meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
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
    # Set by Journal.describe for the rows a run sends, and recorded with their confirmation:
    twin: str | None = None  # the row but for its own id (Target.twin), hashed
    fields: dict[str, str] | None = None  # a keyed digest of each field's value (see field_digests)
    # How a rerun recognises the row without building its request (Journal.sift): its fingerprint
    # (with which of the file's equal rows it is), its pair and the pair's occurrence.
    fp: int | None = None
    pair: int | None = None
    occ: int | None = None


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
        # Within this list: how many of each pair came before (a stable sort, then a count per group).
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        starts = np.r_[True, ordered[1:] != ordered[:-1]] if len(ordered) else np.zeros(0, dtype=bool)
        group_start = np.maximum.accumulate(np.where(starts, np.arange(len(ordered)), 0)) if len(ordered) else starts
        within = np.empty(len(hashes), dtype=np.int64)
        within[order] = np.arange(len(ordered)) - group_start
        # Before this list: a pair of an earlier list counts once, or as often as it repeated.
        before = np.zeros(len(hashes), dtype=np.int64)
        for i in np.flatnonzero(found).tolist():
            before[i] = self._repeated.get(int(hashes[i]), 1)
        out = before + within
        # Pairs that now occur more than once, with their count so far (the last of each in this list).
        last = np.r_[ordered[1:] != ordered[:-1], True] if len(ordered) else np.zeros(0, dtype=bool)
        totals = out[order[last]] + 1
        for pair, total in zip(ordered[last][totals > 1].tolist(), totals[totals > 1].tolist()):
            self._repeated[pair] = total
        new = ordered[starts & ~found[order]]
        self._once = np.insert(self._once, np.searchsorted(self._once, new), new)
        return out.tolist()


def entries(prepared: list[Prepared], seen: Occurrences | None = None) -> dict[int, Entry]:
    """Identity of each request: key + payload + which occurrence of that pair.

    Independent of row numbers, so inserting a row above does not make the
    whole file look new. ``seen`` carries the occurrence counts from one
    chunk of a file to the next.
    """
    seen = Occurrences() if seen is None else seen
    hashes = entry_parts(prepared)
    occurrences = seen.number([pair for _, _, pair in hashes])
    return {
        item.row: Entry(_digest(key_hash, content, str(occurrence)), key_hash, content, pair=pair, occ=occurrence)
        for item, (key_hash, content, pair), occurrence in zip(prepared, hashes, occurrences)
    }


def entry_parts(prepared: list[Prepared]) -> list[tuple[str, str, int]]:
    """Each request's key hash, payload hash and pair (the 64-bit hash of both), before occurrences are counted."""
    out = []
    for item in prepared:
        key_hash = _digest(item.key)
        content = payload_hash(item.payload)
        out.append((key_hash, content, int(_digest(key_hash, content)[:16], 16)))
    return out


def _int64(hex_digest: str) -> int:
    """A hex digest's first 64 bits as SQLite's signed integer.

    >>> _int64("ffffffffffffffff00"), _int64("0000000000000001")
    (-1, 1)
    """
    return int.from_bytes(bytes.fromhex(hex_digest[:16]), "big", signed=True)


def _latest(packed: bytes, width: int) -> np.ndarray:
    """Packed little-endian int64 records, the last one per first column kept, sorted by it.

    >>> _latest(np.array([[5, 1], [3, 2], [5, 9]], dtype="<i8").tobytes(), 2).tolist()
    [[3, 2], [5, 9]]
    """
    records = np.frombuffer(packed, dtype="<i8").astype(np.int64).reshape(-1, width)
    if not len(records):
        return records
    backwards = records[::-1]
    _, first = np.unique(backwards[:, 0], return_index=True)  # sorted by the first column, latest record
    return backwards[first]


def _signed(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.uint64).view(np.int64)


@dataclass
class _Cache:
    """A journal's fingerprints (sorted by ``fp``) and its keys' last applied contents (sorted by key)."""

    fp: np.ndarray
    pair: np.ndarray
    occ: np.ndarray
    key_int: np.ndarray
    payload_int: np.ndarray
    identity_int: np.ndarray
    applied_key: np.ndarray
    applied_payload: np.ndarray


@dataclass
class Described:
    """The plan of a chunk's valid rows (:meth:`Journal.describe`), by row number."""

    plans: dict[int, str] = field(default_factory=dict)  # new, correction, unchanged, unknown, final
    notes: dict[int, str] = field(default_factory=dict)  # a correction's earlier confirmation; an unknown's story
    twins: dict[int, tuple] = field(default_factory=dict)  # (row, confirmed at, ids) of a confirmed look-alike


def field_digests(payload: dict | None, salt: str) -> dict[str, str]:
    """Each field of a request's body as a short keyed digest, never its value: which fields differ, later.

    Nested fields are named by their own name (``sale_amount``), or by their
    path when two blocks share it.

    >>> field_digests({"search": {"transaction_id": "T1"}, "signal": {"name": "Sale"}}, "k")
    {'transaction_id': '290a708e', 'name': '2bba5db5'}
    """
    flat: dict[str, str] = {}
    key = salt.encode()[:64]

    def walk(value, path: tuple[str, ...]) -> None:
        if isinstance(value, dict):
            for name, inner in value.items():
                walk(inner, (*path, str(name)))
            return
        name = path[-1] if path else "body"
        if name in flat:
            name = ".".join(path)
        # Text as it is (most fields), anything else as JSON: the two never collide.
        text = "s" + value if isinstance(value, str) else "j" + json.dumps(value, sort_keys=True, separators=(",", ":"))
        flat[name] = hashlib.blake2b(text.encode(), key=key, digest_size=4).hexdigest()

    walk(payload, ())
    return flat


def _correction_note(earlier: tuple, before: dict[str, str] | None, now: dict[str, str] | None) -> str:
    """What a correction's ``plan_note`` says: when the content it replaces was confirmed, which fields differ."""
    _payload, confirmed_at, row, _fields, _ids = earlier
    when = _when(confirmed_at)
    where = f" (row {row})" if row else ""
    if not before or not now:
        return f"confirmed {when}{where} with other content"
    differ = sorted(name for name in before.keys() | now.keys() if before.get(name) != now.get(name))
    return f"confirmed {when}{where} with another {', '.join(differ)}"


def _when(epoch: float | None) -> str:
    """A journal's time as people read it: ``on 2026-12-07 09:15 UTC``."""
    if not epoch:
        return "earlier"
    return "on " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


class Journal:
    """The SQLite journal of one input, API and base URL.

    ``readonly`` (a dry run, the page's preview): the journal is asked, never
    written, and a run writing it at the same moment is not disturbed.
    """

    def __init__(self, path: Path | PgLocation, *, readonly: bool = False, db: PostgresDb | None = None):
        self.path = path if isinstance(path, PgLocation) else Path(path)
        self.readonly = readonly
        # Pending marks are written from the sender's workers while answers are recorded here.
        self._lock = threading.RLock()
        self.db: Db
        if isinstance(path, PgLocation):
            self._open_postgres(path, db)
        else:
            self._open_sqlite()
        self._has_final = self._exists("final")
        self._cached: _Cache | None = None
        self._names_changed = False
        self._applied_here: dict[int, int] = {}  # what this run's answers made the API hold, by key
        meta = dict(self.db.execute("SELECT name, value FROM meta").fetchall())
        if int(meta.get("schema_version", SCHEMA_VERSION)) > SCHEMA_VERSION:
            self.db.close()
            from .errors import InputError

            raise InputError(
                f"the journal {self.path} was written by a newer signal-uploader "
                f"(its tables are at version {meta['schema_version']}, this one knows {SCHEMA_VERSION})",
                hint="upgrade signal-uploader (pip install -U signal-uploader) on this machine too",
            )
        self.salt = meta.get("salt", "")
        self._field_names: list[str] = json.loads(meta.get("field_names", "[]"))  # a field's number in `fields`

    def _open_sqlite(self) -> None:
        assert isinstance(self.path, Path)
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        if self.readonly:
            self._raw = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            have = {row[1] for row in self._raw.execute("PRAGMA table_info(last_applied)")}
            if "key_int" not in have:  # written by an earlier version: brought up to date (as a real run would) first
                self._raw.close()
                Journal(self.path).close()
                self._raw = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._raw = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # WAL: a commit is durable once written, so kill -9 loses nothing
            # committed; NORMAL sync is enough for a process crash.
            self._raw.execute("PRAGMA journal_mode=WAL")
            self._raw.execute("PRAGMA synchronous=NORMAL")
            self._raw.executescript(SCHEMA)
            self._migrate()
        self.db = SqliteDb(self._raw)
        self._tables = {row[0] for row in self._raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        self._columns = {
            table: {row[1] for row in self._raw.execute(f"PRAGMA table_info({table})")}
            for table in ("confirmed", "last_applied")
        }

    def _open_postgres(self, where: PgLocation, db: PostgresDb | None) -> None:
        """The source's schema in the shared database (created by :meth:`open`), on the run lock's connection."""
        if db is None:
            db = PostgresDb(PostgresStore(where.url.conninfo).connect(readonly=self.readonly), where)
        self.db = db
        db.execute(f"SET search_path TO {where.schema}")
        # A PostgreSQL journal is always this version's: every table and column is there.
        self._tables = {"meta", "confirmed", "recognition", "last_applied", "pending", "final", "reports"}
        self._columns = {
            "confirmed": set(_CONFIRMED_COLUMNS) | {"signal_transaction_id"},
            "last_applied": set(_APPLIED_COLUMNS),
        }

    def _migrate(self) -> None:
        """Bring a journal an earlier version wrote up to this one's tables (columns are only ever added)."""
        added = {
            "confirmed": (("ids", "TEXT"), ("twin_hash", "TEXT"), ("identity_int", "INTEGER")),
            "last_applied": (
                ("confirmed_at", "REAL"),
                ("row", "INTEGER"),
                ("fields", "BLOB"),
                ("ids", "TEXT"),
                ("key_int", "INTEGER"),
                ("payload_int", "INTEGER"),
            ),
        }
        written = self._raw.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        if written is not None and int(written[0]) > SCHEMA_VERSION:
            return  # a newer version's journal: refused as it is read, never changed
        fresh = False
        for table, columns in added.items():
            have = {row[1] for row in self._raw.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns:
                if name not in have:
                    self._raw.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                    fresh = True
        if fresh:  # a journal an earlier version wrote: the integer forms of its hashes, once
            self._fill_integers()
        self._raw.execute("CREATE INDEX IF NOT EXISTS confirmed_twin ON confirmed (twin_hash)")
        self._raw.execute("CREATE INDEX IF NOT EXISTS confirmed_identity_int ON confirmed (identity_int)")
        self._raw.execute("CREATE INDEX IF NOT EXISTS last_applied_key_int ON last_applied (key_int)")
        # The key of the field digests: a journal's own, so its digests say nothing outside it.
        self._raw.execute("INSERT OR IGNORE INTO meta VALUES ('salt', ?)", (secrets.token_hex(16),))
        self._raw.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _fill_integers(self) -> None:
        """The 64-bit forms of the hashes of rows written without them (an earlier version, a take-over)."""
        with self._raw:
            self._raw.execute("BEGIN")
            self._raw.executemany(
                "UPDATE confirmed SET identity_int = ? WHERE identity = ?",
                [
                    (_int64(i), i)
                    for (i,) in self._raw.execute(
                        "SELECT identity FROM confirmed WHERE identity_int IS NULL"
                    ).fetchall()
                ],
            )
            # When and on which row each key's content was confirmed: what a correction of it says.
            when = {
                (k, p): (at, row)
                for k, p, at, row in self._raw.execute(
                    "SELECT key_hash, payload_hash, max(confirmed_at), row FROM confirmed GROUP BY key_hash, payload_hash"
                )
            }
            self._raw.executemany(
                "UPDATE last_applied SET key_int = ?, payload_int = ?, confirmed_at = ?, row = ? WHERE key_hash = ?",
                [
                    (_int64(k), _int64(p), *when.get((k, p), (None, None)), k)
                    for k, p in self._raw.execute(
                        "SELECT key_hash, payload_hash FROM last_applied WHERE key_int IS NULL"
                    ).fetchall()
                ],
            )

    def _pack(self, fields: dict[str, str] | None) -> bytes | None:
        """Field digests as stored: per field, its number (2 bytes) and its digest (4 bytes). Names new here are added."""
        if fields is None:
            return None
        numbers = {name: i for i, name in enumerate(self._field_names)}
        out = bytearray()
        for name, digest in fields.items():
            if name not in numbers:
                numbers[name] = len(self._field_names)
                self._field_names.append(name)
                self._names_changed = True
            out += numbers[name].to_bytes(2, "big") + bytes.fromhex(digest)
        return bytes(out)

    def _unpack(self, packed: bytes | None) -> dict[str, str] | None:
        if not packed or not isinstance(packed, bytes):
            return None
        names = self._field_names
        return {
            names[int.from_bytes(packed[i : i + 2], "big")]: packed[i + 2 : i + 6].hex()
            for i in range(0, len(packed), 6)
            if int.from_bytes(packed[i : i + 2], "big") < len(names)
        }

    def _exists(self, table: str) -> bool:
        try:
            return self.db.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0] == 1
        except sqlite3.OperationalError:  # a journal from before the table existed (read only: not added)
            return False

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

    @classmethod
    def open_postgres(
        cls, lock: PgSourceLock, name: str, api: str, base_url: str, *, content: str | None = None
    ) -> Journal:
        """:meth:`open` in the shared database, on the connection that holds the source's run lock."""
        db = lock.db
        assert db is not None, "the run lock is taken first"
        lock.store.create(db, lock.location, name, api, base_url, content=content)
        db.execute(f"SET search_path TO {lock.location.schema}")
        db.upsert(
            "meta",
            ("name", "value"),
            [
                ("input", name),
                ("api", api),
                ("base_url", base_url),
                ("salt", secrets.token_hex(16)),
                ("schema_version", str(SCHEMA_VERSION)),
            ],
        )
        return cls(lock.location, db=db)

    def _take_over(self, old: Path) -> None:
        """Copy what a journal an earlier version kept by path knows into this one, then set it aside."""
        with self._lock, self._raw:
            self._raw.execute("ATTACH DATABASE ? AS old", (str(old),))
            try:
                self._raw.execute("BEGIN")
                tables = {row[0] for row in self._raw.execute("SELECT name FROM old.sqlite_master WHERE type='table'")}
                columns = {row[1] for row in self._raw.execute("PRAGMA old.table_info(confirmed)")}
                ids = "ids" if "ids" in columns else "NULL"
                self._raw.execute(
                    "INSERT OR IGNORE INTO confirmed (identity, key_hash, payload_hash, row, status, http_status, "
                    "signal_transaction_id, corrects_transaction_id, call_transaction_id, confirmed_at, ids) "
                    "SELECT identity, key_hash, payload_hash, row, status, http_status, signal_transaction_id, "
                    f"corrects_transaction_id, call_transaction_id, confirmed_at, {ids} FROM old.confirmed"
                )
                self._raw.execute(
                    "INSERT OR IGNORE INTO last_applied (key_hash, payload_hash) "
                    "SELECT key_hash, payload_hash FROM old.last_applied"
                )
                if "pending" in tables:
                    self._raw.execute("INSERT OR IGNORE INTO pending SELECT * FROM old.pending")
                self._raw.execute("COMMIT")
            finally:
                self._raw.execute("DETACH DATABASE old")
        self._fill_integers()
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
                deferred.pop(lane[-1].key, None)  # this chunk has the key's later rows
                if first_new is None and applied.get(last.key_hash) != last.payload_hash:
                    deferred[lane[-1].key] = (lane[-1], last)
            elif first_new is None and applied.get(last.key_hash) != last.payload_hash:
                first_new = len(lane) - 1  # reordered since: make the last row win again
            cut = len(lane) if first_new is None else first_new
            for item in lane[:cut]:
                skipped[item.row] = done[ids[item.row].identity]
            if cut < len(lane):
                to_send.append(lane[cut:])
        return to_send, skipped, ids

    # -- the rows a rerun recognises without building them ------------------

    def can_sift(self) -> bool:
        """Whether :meth:`sift` may plan this journal's rows (a journal this version wrote or upgraded)."""
        return "key_int" in self._columns["last_applied"] and not self._has_final

    def sift(
        self,
        rows: pd.DataFrame,
        target,
        *,
        seen: Occurrences,
        fingerprints_seen: Occurrences,
        deferred: dict[str, tuple[Prepared, Entry]] | None = None,
    ) -> tuple[list[list[Prepared]], dict[int, Earlier], dict[int, Entry]]:
        """:meth:`plan` for valid rows not yet built into requests, for a target that may be sent twice.

        A row whose fingerprint (:meth:`Target.fingerprints`) the journal
        knows, at the same occurrence of its pair as when it was confirmed,
        is that confirmed row: it is neither built nor hashed. The others are
        built and planned as :meth:`plan` plans them, lane by lane, with the
        same identities; only the rows to send come back as requests. A
        rerun of a million confirmed rows costs their fingerprints and a few
        array look-ups, not a million JSON bodies and hashes.
        """
        if rows.empty:
            return [], {}, {}
        n = len(rows)
        numbers = rows.index.to_numpy(dtype=np.int64)
        keys = target.keys(rows)
        fps = target.fingerprints(rows, keys)
        fp_occ = _signed(mix64(fps, np.asarray(fingerprints_seen.number(fps.tolist()), dtype=np.uint64)))
        cache = self._cache()
        pos = np.minimum(np.searchsorted(cache.fp, fp_occ), max(len(cache.fp) - 1, 0))
        hit = cache.fp[pos] == fp_occ if len(cache.fp) else np.zeros(n, dtype=bool)

        parts: dict[int, tuple[str, str, int]] = {}
        built: dict[int, Prepared] = {}

        def build(positions: np.ndarray) -> None:
            if len(positions):
                prepared = target.prepare(rows.iloc[positions])
                for item, part in zip(prepared, entry_parts(prepared)):
                    built[item.row], parts[item.row] = item, part

        build(np.flatnonzero(~hit))
        pairs = np.zeros(n, dtype=np.uint64)
        pairs[hit] = cache.pair[pos[hit]].view(np.uint64)
        for i in np.flatnonzero(~hit).tolist():
            pairs[i] = parts[int(numbers[i])][2]
        occ = np.asarray(seen.number(pairs.tolist()), dtype=np.int64)
        exact = hit & (cache.occ[pos] == occ) if len(cache.fp) else hit
        build(np.flatnonzero(hit & ~exact))  # recognised, but at another occurrence than when confirmed

        ids: dict[int, Entry] = {}

        def identify(i: int) -> None:  # a built row's entry, at its occurrence in this file
            row = int(numbers[i])
            key_hash, content, pair = parts[row]
            ids[row] = Entry(
                _digest(key_hash, content, str(occ[i])),
                key_hash,
                content,
                fp=int(fp_occ[i]),
                pair=pair,
                occ=int(occ[i]),
            )

        for i in np.flatnonzero(~exact).tolist():
            identify(i)
        done = self._confirmed([entry.identity for entry in ids.values()]) if ids else {}
        confirmed = exact.copy()
        key_int = np.zeros(n, dtype=np.int64)
        payload_int = np.zeros(n, dtype=np.int64)
        key_int[exact] = cache.key_int[pos[exact]]
        payload_int[exact] = cache.payload_int[pos[exact]]
        for i in np.flatnonzero(~exact).tolist():
            entry = ids[int(numbers[i])]
            confirmed[i] = entry.identity in done
            key_int[i], payload_int[i] = _int64(entry.key_hash), _int64(entry.payload_hash)
        applied = self._applied_now(key_int, payload_int)  # the key's last row is what the API holds

        # Lanes: rows sharing a key, in file order. Most keys have one row: those are decided at once.
        key_list = keys.tolist()
        shared = keys.duplicated(keep=False).to_numpy()
        if deferred:
            for key in set(deferred) & set(key_list):
                del deferred[key]  # this chunk has the key's later rows
        send_lanes: list[tuple[int, list[int]]] = []  # (where the key first appears, the rows to send)
        skipped_at: list[int] = []
        later: list[int] = []  # a lane's confirmed last row that must win again (reordered since)
        alone = np.flatnonzero(~shared)
        for i in alone[~confirmed[alone]].tolist():
            send_lanes.append((i, [i]))
        settled = alone[confirmed[alone]]
        skipped_at.extend(settled[applied[settled]].tolist())
        for i in settled[~applied[settled]].tolist():
            if deferred is not None:
                later.append(i)
                skipped_at.append(i)
            else:
                send_lanes.append((i, [i]))
        lanes_of: dict[str, list[int]] = {}
        for i in np.flatnonzero(shared).tolist():
            lanes_of.setdefault(key_list[i], []).append(i)
        for lane in lanes_of.values():
            first_new = next((j for j, i in enumerate(lane) if not confirmed[i]), None)
            if first_new is None and not applied[lane[-1]]:
                if deferred is not None:
                    later.append(lane[-1])
                else:
                    first_new = len(lane) - 1
            cut = len(lane) if first_new is None else first_new
            skipped_at.extend(lane[:cut])
            if cut < len(lane):
                send_lanes.append((lane[0], lane[cut:]))

        # Only what is sent is built: the rows to send, and the last rows that must win again.
        wanted = sorted({i for _, lane in send_lanes for i in lane} | set(later))
        build(np.array([i for i in wanted if int(numbers[i]) not in built], dtype=np.int64))
        for i in wanted:
            if int(numbers[i]) not in ids:
                identify(i)
        if deferred is not None:
            for i in later:
                row = int(numbers[i])
                deferred[key_list[i]] = (built[row], ids[row])
        # In the order of the keys' first rows, as lanes() orders them.
        work = [[built[int(numbers[i])] for i in lane] for _, lane in sorted(send_lanes)]

        skipped: dict[int, Earlier] = {}
        recognised = [i for i in skipped_at if exact[i]]
        if recognised:
            skipped.update(self._earlier_of(numbers[recognised], cache.identity_int[pos[recognised]]))
        learnt = []
        for i in skipped_at:
            row = int(numbers[i])
            if not exact[i]:
                skipped[row] = done.get(ids[row].identity) or Earlier(row, plan.UNCHANGED, None, {})
                learnt.append(ids[row])
        if learnt and not self.readonly:  # recognised by its fingerprint next time
            with self._lock, self.db.transaction():
                self._remember(learnt, applied=False)
        return work, skipped, ids

    def _earlier_of(self, rows: np.ndarray, identity_ints: np.ndarray) -> dict[int, Earlier]:
        """The earlier answers of rows recognised by their fingerprint (a dry run needs only that they were)."""
        rows_ = rows.tolist()
        if self.readonly:
            confirmed = Earlier(0, plan.UNCHANGED, None, {})  # one for all: a dry run reports no ids
            return dict.fromkeys(rows_, confirmed)
        query = (
            "SELECT identity_int, status, http_status, ids FROM confirmed "
            "JOIN {wanted} ON confirmed.identity_int = wanted.value"
        )
        found = {
            identity: (status, http_status, json.loads(ids) if ids else {})
            for identity, status, http_status, ids in self._lookup_ints(query, identity_ints.tolist())
        }
        out = {}
        for row, identity in zip(rows_, identity_ints.tolist()):
            status, http_status, ids = found.get(identity, (plan.UNCHANGED, None, {}))
            out[row] = Earlier(row, status, http_status, ids)
        return out

    def _applied_now(self, key_int: np.ndarray, payload_int: np.ndarray) -> np.ndarray:
        """Whether each row's content is what the API holds for its key now (this run's answers included)."""
        cache = self._cache()
        known = np.zeros(len(key_int), dtype=bool)
        held = np.zeros(len(key_int), dtype=np.int64)
        if len(cache.applied_key):
            pos = np.minimum(np.searchsorted(cache.applied_key, key_int), len(cache.applied_key) - 1)
            known = cache.applied_key[pos] == key_int
            held = np.where(known, cache.applied_payload[pos], np.int64(0))
        missing = np.flatnonzero(~known)
        if len(missing) and "key_int" in self._columns["last_applied"]:  # not in the pages: ask the table
            query = "SELECT key_int, payload_int FROM last_applied JOIN {wanted} ON last_applied.key_int = wanted.value"
            found = dict(self._lookup_ints(query, key_int[missing].tolist()))
            for i in missing.tolist():
                if int(key_int[i]) in found:
                    held[i], known[i] = found[int(key_int[i])], True
        if self._applied_here:
            for i, key in enumerate(key_int.tolist()):
                if key in self._applied_here:
                    held[i], known[i] = self._applied_here[key], True
        return known & (held == payload_int)

    def _cache(self) -> _Cache:
        """The journal's fingerprints (sorted) and its keys' last applied contents (sorted), read once per run."""
        if self._cached is None:
            try:
                pages = self.db.execute("SELECT fingerprints, applied FROM recognition ORDER BY page").fetchall()
            except sqlite3.OperationalError:  # a journal an earlier version wrote, read only
                pages = []
            rows = _latest(b"".join(p or b"" for p, _ in pages), 6)
            held = _latest(b"".join(a or b"" for _, a in pages), 2)
            self._cached = _Cache(
                fp=rows[:, 0].copy(),
                pair=rows[:, 1].copy(),
                occ=rows[:, 2].copy(),
                key_int=rows[:, 3].copy(),
                payload_int=rows[:, 4].copy(),
                identity_int=rows[:, 5].copy(),
                applied_key=held[:, 0].copy(),
                applied_payload=held[:, 1].copy(),
            )
        return self._cached

    def _remember(self, entries_: list[Entry], applied: bool) -> None:
        """Append a page of what recognises these confirmed rows (inside the caller's transaction)."""
        if "recognition" not in self._tables:
            return
        known = [e for e in entries_ if e.fp is not None and e.pair is not None and e.occ is not None]
        fingerprints = np.array(
            [
                (
                    e.fp,
                    e.pair - (1 << 64) if e.pair >= 1 << 63 else e.pair,  # type: ignore[operator]
                    e.occ,
                    _int64(e.key_hash),
                    _int64(e.payload_hash),
                    _int64(e.identity),
                )
                for e in known
            ],
            dtype=np.int64,
        ).reshape(-1, 6)
        held = np.array(
            [(_int64(e.key_hash), _int64(e.payload_hash)) for e in entries_] if applied else [], dtype=np.int64
        ).reshape(-1, 2)
        if len(fingerprints) or len(held):
            self.db.execute(
                "INSERT INTO recognition (fingerprints, applied) VALUES (?, ?)",
                (fingerprints.astype("<i8").tobytes(), held.astype("<i8").tobytes()),
            )

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

    def describe(
        self, work: list[list[Prepared]], settled: dict[int, Earlier], ids: dict[int, Entry], target
    ) -> Described:
        """What :meth:`plan` decided, row by row, in the plan's words (see :mod:`uploader.plan`).

        Rows it settled are ``unchanged``, ``unknown`` or ``final``. A row to
        send is a ``correction`` when its key was confirmed with other
        content (for a target that may be sent twice: sending updates it),
        ``unchanged`` when with the same (``--force``), else ``new``. A row
        to send that matches a confirmed row of another key on everything but
        its own id (:meth:`Target.twin`) is warned about: it would make a
        second signal. The entries of the rows to send gain what their
        confirmation records (their twin, their fields' digests).
        """
        out = Described()
        for row, earlier in settled.items():
            if earlier.status == UNKNOWN:
                out.plans[row] = plan.UNKNOWN
                out.notes[row] = f"sent before; no answer said what happened ({earlier.error or 'no answer'})"
            elif earlier.status == FAILED:
                out.plans[row] = plan.FINAL
            else:
                out.plans[row] = plan.UNCHANGED
        items = [item for lane in work for item in lane]
        if not items:
            return out
        twins: dict[int, str] = {}
        for item in items:
            entry = ids[item.row]
            fields = field_digests(item.payload, self.salt) if self.salt else None
            shape = target.twin(item.payload) if item.payload is not None else None
            if shape is not None:
                twins[item.row] = _digest("twin", shape)[:16]  # 64 bits: a look-alike among a file's rows
            ids[item.row] = replace(entry, twin=twins.get(item.row), fields=fields)
        applied = self._applied([ids[item.row].key_hash for item in items])
        for item in items:
            entry = ids[item.row]
            earlier_ = applied.get(entry.key_hash)
            if earlier_ is None:
                out.plans[item.row] = plan.NEW
            elif earlier_[0] == entry.payload_hash:
                out.plans[item.row] = plan.UNCHANGED
            elif not target.idempotent:
                out.plans[item.row] = plan.NEW  # another action of the same key: it happens again, it replaces nothing
            else:
                out.plans[item.row] = plan.CORRECTION
                out.notes[item.row] = _correction_note(earlier_, self._unpack(earlier_[3]), entry.fields)
        if twins:
            found = self._twins(sorted(set(twins.values())))
            for row, shape in twins.items():
                others = [o for o in found.get(shape, ()) if o[0] != ids[row].key_hash]
                if others:
                    out.twins[row] = others[-1][1:]
        return out

    def _applied(self, key_hashes: list[str]) -> dict[str, tuple]:
        """Per key: (payload hash, confirmed at, row, field digests, ids) of the content the API holds."""
        have = self._columns["last_applied"]
        extra = ", ".join(c if c in have else "NULL" for c in ("confirmed_at", "row", "fields", "ids"))
        query = (
            f"SELECT key_hash, payload_hash, {extra} FROM last_applied "
            "JOIN {wanted} ON last_applied.key_hash = wanted.value"
        )
        return {key: tuple(rest) for key, *rest in self._lookup(query, key_hashes)}

    def _twins(self, shapes: list[str]) -> dict[str, list[tuple]]:
        """Per twin hash: the confirmed rows that have it, as (key hash, row, confirmed at, ids), oldest first."""
        if "twin_hash" not in self._columns["confirmed"]:
            return {}
        query = (
            "SELECT twin_hash, key_hash, row, confirmed_at, ids FROM confirmed "
            "JOIN {wanted} ON confirmed.twin_hash = wanted.value ORDER BY confirmed_at"
        )
        out: dict[str, list[tuple]] = {}
        for shape, key_hash, row, confirmed_at, found in self._lookup(query, shapes):
            out.setdefault(shape, []).append((key_hash, row, confirmed_at, json.loads(found) if found else {}))
        return out

    def _final(self, identities: list[str]) -> dict[str, Earlier]:
        """Rows whose earlier answer was final, as that answer."""
        if not self._has_final:
            return {}
        query = (
            "SELECT identity, row, http_status, error_class, error, answered_at FROM final "
            "JOIN {wanted} ON final.identity = wanted.value"
        )
        return {
            identity: Earlier(
                row, FAILED, http_status, {}, error or "", error_class=error_class, answered_at=answered_at
            )
            for identity, row, http_status, error_class, error, answered_at in self._lookup(query, identities)
        }

    def pending(self, identities: list[str]) -> dict[str, str]:
        """The identities marked pending, with what happened when they were sent."""
        if not self._has_pending:
            return {}
        query = "SELECT identity, error FROM pending JOIN {wanted} ON pending.identity = wanted.value"
        return {identity: error or "" for identity, error in self._lookup(query, identities)}

    def mark_pending(self, entry: Entry, row: int) -> None:
        """Commit that a request which may not be sent twice is about to go out."""
        with self._lock, self.db.transaction():
            self.db.upsert(
                "pending",
                ("identity", "row", "since", "error"),
                [(entry.identity, row, time.time(), "the run stopped before its answer")],
                key=("identity",),
            )

    def _confirmed(self, identities: list[str]) -> dict[str, Earlier]:
        query = (
            "SELECT identity, row, status, http_status, ids, signal_transaction_id, corrects_transaction_id, "
            "call_transaction_id FROM confirmed JOIN {wanted} ON confirmed.identity = wanted.value"
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
        query = "SELECT key_hash, payload_hash FROM last_applied JOIN {wanted} ON last_applied.key_hash = wanted.value"
        return dict(self._lookup(query, key_hashes))

    def _lookup(self, query: str, values: list[str]) -> list[tuple]:
        """Rows for just these values (a chunk's), not the whole journal: ``query`` joins ``{wanted}``."""
        with self._lock:
            return self.db.lookup(query, values)

    def _lookup_ints(self, query: str, values: list[int]) -> list[tuple]:
        """:meth:`_lookup` for integers."""
        with self._lock:
            return self.db.lookup(query, values, kind="int")

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
        with self._lock, self.db.transaction():  # one transaction: every table or none
            ids = [json.dumps(o.ids, separators=(",", ":")) for _, o in confirmed]
            self.db.upsert(
                "confirmed",
                _CONFIRMED_COLUMNS,
                [
                    (e.identity, e.key_hash, e.payload_hash, o.row, o.status, o.http_status, now, i, e.twin)
                    + (_int64(e.identity),)
                    for (e, o), i in zip(confirmed, ids)
                ],
                key=("identity",),
            )
            self.db.upsert(
                "last_applied",
                _APPLIED_COLUMNS,
                [
                    (e.key_hash, e.payload_hash, now, o.row, self._pack(e.fields), i)
                    + (_int64(e.key_hash), _int64(e.payload_hash))
                    for (e, o), i in zip(confirmed, ids)
                ],
                key=("key_hash",),
            )
            if self._names_changed:
                self.db.upsert(
                    "meta", ("name", "value"), [("field_names", json.dumps(self._field_names))], key=("name",)
                )
                self._names_changed = False
            self._remember([e for e, _ in confirmed], applied=True)
            for e, _ in confirmed:  # answers arrive in lane order: the last one per key is what the API holds
                self._applied_here[_int64(e.key_hash)] = _int64(e.payload_hash)
            if self._has_pending:
                self.db.executemany("UPDATE pending SET error = ? WHERE identity = ?", unknown)
                self.db.executemany("DELETE FROM pending WHERE identity = ?", settled)
            if final:
                self.db.upsert(
                    "final",
                    ("identity", "row", "http_status", "error_class", "error", "answered_at"),
                    [(e.identity, o.row, o.http_status, o.error_class, o.error, now) for e, o in final],
                    key=("identity",),
                )
                self._has_final = True
            elif confirmed and self._has_final:  # sent again with --force, and confirmed this time
                self.db.executemany("DELETE FROM final WHERE identity = ?", [(e.identity,) for e, _ in confirmed])

    @property
    def _has_pending(self) -> bool:
        return self._exists("pending")

    # -- the reports written from this source -------------------------------

    def remember_report(self, report: Path, *, job: str, settings: dict) -> None:
        """Note that ``report`` was written from this source, with the settings of its run (no secret in them).

        ``retry REPORT`` finds the source by the report's path, or by its
        content once it was moved; a report rewritten in place (a retry)
        replaces its earlier note.
        """
        report = Path(report)
        digest = file_sha256(report)
        with self._lock, self.db.transaction():
            self.db.upsert(
                "reports",
                ("path", "sha256", "written_at", "job", "settings"),
                [(str(report.resolve()), digest, time.time(), job, json.dumps(settings, sort_keys=True, default=str))],
                key=("path",),
            )

    def report_moved(self, old: Path, new: Path) -> None:
        """A report was moved (folder mode files it under done/ or failed/): it is known at its new place."""
        new_path, old_path = str(Path(new).resolve()), str(Path(old).resolve())
        with self._lock, self.db.transaction():
            if new_path != old_path:  # a note of another report at the new place is replaced
                self.db.execute("DELETE FROM reports WHERE path = ?", (new_path,))
            self.db.execute("UPDATE reports SET path = ? WHERE path = ?", (new_path, old_path))

    def confirmed_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM confirmed").fetchone()[0]

    def close(self) -> None:
        self.db.close()


_CONFIRMED_COLUMNS = (
    "identity",
    "key_hash",
    "payload_hash",
    "row",
    "status",
    "http_status",
    "confirmed_at",
    "ids",
    "twin_hash",
    "identity_int",
)
_APPLIED_COLUMNS = ("key_hash", "payload_hash", "confirmed_at", "row", "fields", "ids", "key_int", "payload_int")
