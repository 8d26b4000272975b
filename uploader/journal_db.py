"""Where journals live: SQLite files in the state folder (the default) or one PostgreSQL database for every runner.

:class:`~uploader.journal.Journal` holds the journal's logic once; it speaks
to either backend through a :class:`Db`: the same statements, with the few
things the two dialects spell differently (an upsert, a look-up of many
values at once, a transaction) said by the backend.

**SQLite** (``--state-dir``): one file per source under ``journals/``, and
the run lock is the operating system's file lock (:mod:`uploader.locking`).
It needs nothing, and survives ``kill -9`` (WAL, committed per answer); its
reach is one machine.

**PostgreSQL** (``--journal postgresql://…``, ``SIGNAL_UPLOADER_JOURNAL``, or
``journal`` in the config file): one schema per source (``j_<hash>``, the
same tables as a SQLite journal), listed with their name and content
aliases in the schema ``signal_uploader``. The run lock is a session-level
advisory lock keyed by the source, held on the journal's own connection: a
runner that dies, or loses its connection, releases it, and a runner whose
connection is gone can no longer write, so it stops. Every runner that can
reach the database shares what was confirmed.

The password is libpq's business: in the URL, ``PGPASSWORD``, or a password
file (``PGPASSFILE``, ``~/.pgpass``). A URL is only ever shown without it
(:meth:`PgUrl.shown`).

**Versions.** Each journal keeps its tables' version (meta ``schema_version``)
and is brought up to this version's when opened to be written; one written
by a newer version is refused rather than misread. The database's own
tables (``signal_uploader.*``) keep theirs in ``signal_uploader.migrations``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import JournalUnreachable, UsageError
from .locking import AlreadyRunning

# The journal's tables, version by version (both backends keep the same tables).
SCHEMA_VERSION = 1

PG_JOURNAL_TABLES = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS confirmed (
    identity TEXT PRIMARY KEY, key_hash TEXT NOT NULL, payload_hash TEXT NOT NULL, row BIGINT NOT NULL,
    status TEXT NOT NULL, http_status INTEGER, signal_transaction_id TEXT, corrects_transaction_id TEXT,
    call_transaction_id TEXT, confirmed_at DOUBLE PRECISION NOT NULL, ids TEXT, twin_hash TEXT, identity_int BIGINT);
CREATE INDEX IF NOT EXISTS confirmed_twin ON confirmed (twin_hash);
CREATE INDEX IF NOT EXISTS confirmed_identity_int ON confirmed (identity_int);
CREATE TABLE IF NOT EXISTS recognition (page BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, fingerprints BYTEA,
                                        applied BYTEA);
CREATE TABLE IF NOT EXISTS last_applied (key_hash TEXT PRIMARY KEY, payload_hash TEXT NOT NULL,
    confirmed_at DOUBLE PRECISION, row BIGINT, fields BYTEA, ids TEXT, key_int BIGINT, payload_int BIGINT);
CREATE INDEX IF NOT EXISTS last_applied_key_int ON last_applied (key_int);
CREATE TABLE IF NOT EXISTS pending (identity TEXT PRIMARY KEY, row BIGINT NOT NULL, since DOUBLE PRECISION NOT NULL,
                                    error TEXT);
CREATE TABLE IF NOT EXISTS final (identity TEXT PRIMARY KEY, row BIGINT NOT NULL, http_status INTEGER,
    error_class TEXT NOT NULL, error TEXT, answered_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS reports (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL,
    written_at DOUBLE PRECISION NOT NULL, job TEXT NOT NULL, settings TEXT NOT NULL);
"""

REGISTRY = "signal_uploader"
# The database's own tables, version by version: (version, what it does, statements). Never edited once
# released: a change is a new version, applied once by the first runner that meets an older database.
PG_MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "the sources and their aliases",
        f"""
        CREATE TABLE IF NOT EXISTS {REGISTRY}.sources (schema_name TEXT PRIMARY KEY, name TEXT NOT NULL,
            api TEXT NOT NULL, base_url TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL);
        CREATE TABLE IF NOT EXISTS {REGISTRY}.aliases (alias TEXT PRIMARY KEY, schema_name TEXT NOT NULL);
        """,
    ),
)
# Taken (for the length of a transaction) by whoever creates tables, so two runners starting at once on
# an empty database do not both create them.
_DDL_LOCK = int.from_bytes(hashlib.sha256(b"signal-uploader ddl").digest()[:8], "big", signed=True)


def is_database_url(value: object) -> bool:
    """Whether a ``journal`` setting names a PostgreSQL database (rather than nothing: the state folder).

    >>> is_database_url("postgresql://uploader@db.internal/journal"), is_database_url(None)
    (True, False)
    """
    return isinstance(value, str) and value.split("://", 1)[0].lower() in ("postgresql", "postgres")


@dataclass(frozen=True)
class PgUrl:
    """A PostgreSQL URL as given (its password included, if any), shown only without the password.

    >>> PgUrl("postgresql://ana:s3cret@db.internal:5433/journal?sslmode=require")
    postgresql://ana@db.internal:5433/journal
    """

    conninfo: str

    def shown(self) -> str:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(self.conninfo)
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            return "postgresql://…"
        user = f"{parts.username}@" if parts.username else ""
        return f"{parts.scheme}://{user}{host}{port}{parts.path}"

    __str__ = shown

    def __repr__(self) -> str:
        return self.shown()


def check_journal_setting(value: str | None) -> str | None:
    """A ``journal`` setting as given, refused with a reason when it is neither empty nor a PostgreSQL URL."""
    if value is None or value == "":
        return None
    if not is_database_url(value):
        raise UsageError(
            f"--journal {PgUrl(value).shown() if '://' in value else value!r}: not a PostgreSQL URL",
            hint="give postgresql://USER@HOST:PORT/DATABASE (the password in PGPASSWORD or ~/.pgpass), "
            "or leave it out to keep journals in the state folder",
        )
    return value


@dataclass(frozen=True)
class PgLocation:
    """Where a journal lives in PostgreSQL: the database and the source's schema."""

    url: PgUrl
    schema: str

    def __str__(self) -> str:
        return f"{self.url.shown()} (schema {self.schema})"


# -- talking to either backend -------------------------------------------------


class Db:
    """What the journal needs of a database connection, whichever it is."""

    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def transaction(self) -> contextlib.AbstractContextManager:
        raise NotImplementedError

    def upsert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], key: Sequence[str] = ()):
        """Insert rows; one whose ``key`` exists replaces it (without a key: is left as it is)."""
        raise NotImplementedError

    def lookup(self, query: str, values: Sequence[Any], kind: str = "text") -> list[tuple]:
        """``query``'s rows for just these values: it joins ``{wanted}`` (a relation of one column, ``value``)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SqliteDb(Db):
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def execute(self, sql, params=()):
        return self.conn.execute(sql, params)

    def executemany(self, sql, rows):
        self.conn.executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn:  # commits, or rolls back on an exception
            self.conn.execute("BEGIN")
            yield

    def upsert(self, table, columns, rows, key=()):
        verb = "INSERT OR REPLACE" if key else "INSERT OR IGNORE"
        marks = ", ".join("?" * len(columns))
        self.conn.executemany(f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def lookup(self, query, values, kind="text"):
        table, sql_type = ("wanted", "TEXT") if kind == "text" else ("wanted_int", "INTEGER")
        self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (value {sql_type} PRIMARY KEY)")
        with self.transaction():
            self.conn.execute(f"DELETE FROM temp.{table}")
            self.conn.executemany(f"INSERT OR IGNORE INTO temp.{table} VALUES (?)", ((v,) for v in values))
            return self.conn.execute(query.format(wanted=f"temp.{table} AS wanted")).fetchall()

    def close(self):
        self.conn.close()


class PostgresDb(Db):
    """A psycopg connection in autocommit mode: a transaction is only what :meth:`transaction` opens."""

    dialect = "postgresql"

    def __init__(self, conn: Any, where: PgLocation | PgUrl, *, owned: bool = True):
        self.conn = conn
        self.where = where
        self.owned = owned

    @contextlib.contextmanager
    def _answering(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise unreachable(self.where, exc) from None

    def execute(self, sql, params=()):
        with self._answering():
            # No parameters: sent as it is (several statements may be), its text never read for placeholders.
            return self.conn.execute(sql.replace("?", "%s") if params else sql, params or None)

    def executemany(self, sql, rows):
        rows = list(rows)
        if rows:
            with self._answering(), self.conn.cursor() as cursor:
                cursor.executemany(sql.replace("?", "%s"), rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._answering(), self.conn.transaction():
            yield

    def upsert(self, table, columns, rows, key=()):
        marks = ", ".join("%s" for _ in columns)
        if key:
            kept = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
            conflict = f"({', '.join(key)}) DO UPDATE SET {kept}" if kept else f"({', '.join(key)}) DO NOTHING"
        else:
            conflict = "DO NOTHING"
        self.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT {conflict}", rows)

    def lookup(self, query, values, kind="text"):
        cast = "text[]" if kind == "text" else "bigint[]"
        values = list(values)
        if not values:
            return []
        return self.execute(query.format(wanted=f"unnest(%s::{cast}) AS wanted(value)"), (values,)).fetchall()

    def close(self):
        if self.owned:
            with contextlib.suppress(Exception):
                self.conn.close()


def unreachable(where: object, exc: BaseException) -> JournalUnreachable:
    """The error of a database that cannot be reached or stopped answering, in the analyst's words."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return JournalUnreachable(
        f"the journal's database {where} cannot be reached ({reason})",
        hint="check that the server is up and the URL and password (PGPASSWORD or ~/.pgpass) are right, "
        "then run the same command again: confirmed rows are skipped",
    )


# -- the PostgreSQL database of journals ---------------------------------------


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()


def _key(text: str) -> int:
    return int.from_bytes(bytes.fromhex(_digest(text)[:16]), "big", signed=True)


def who_am_i() -> str:
    """How a runner is named to the others (in ``pg_stat_activity``, and in the message of one refused)."""
    return f"signal-uploader pid {os.getpid()} on {socket.gethostname()}"[:63]


class PostgresStore:
    """The journals of every source in one PostgreSQL database."""

    def __init__(self, url: str):
        self.url = PgUrl(url)

    def connect(self, *, readonly: bool = False) -> Any:
        """A new connection, its tables brought up to date (unless ``readonly``)."""
        try:
            import psycopg
        except ImportError:
            raise UsageError(
                "a PostgreSQL journal needs the psycopg package, which is not installed",
                hint="pip install 'signal-uploader[postgres]'",
            ) from None
        try:
            conn = psycopg.connect(
                self.url.conninfo,
                autocommit=True,
                application_name=who_am_i(),
                connect_timeout=10,
                # A server that vanished (a pulled cable, a killed pod) is noticed within a minute, not hours.
                keepalives=1,
                keepalives_idle=15,
                keepalives_interval=5,
                keepalives_count=3,
            )
        except psycopg.Error as exc:
            raise unreachable(self.url, exc) from None
        db = PostgresDb(conn, self.url)
        if readonly:
            db.execute("SET default_transaction_read_only = on")
        else:
            self._migrate(db)
        return conn

    def _migrate(self, db: PostgresDb) -> None:
        """The database's own tables at this version (once per database; concurrent runners take turns)."""
        have = db.execute(
            "SELECT to_regclass(?) IS NOT NULL AND to_regclass(?) IS NOT NULL",
            (f"{REGISTRY}.migrations", f"{REGISTRY}.sources"),
        ).fetchone()[0]
        if have:
            done = {v for (v,) in db.execute(f"SELECT version FROM {REGISTRY}.migrations")}
            if all(version in done for version, _, _ in PG_MIGRATIONS):
                return
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(?)", (_DDL_LOCK,))
            db.execute(f"CREATE SCHEMA IF NOT EXISTS {REGISTRY}")
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {REGISTRY}.migrations (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            done = {v for (v,) in db.execute(f"SELECT version FROM {REGISTRY}.migrations")}
            for version, description, statements in PG_MIGRATIONS:
                if version not in done:
                    db.execute(statements)
                    db.execute(
                        f"INSERT INTO {REGISTRY}.migrations VALUES (?, ?, ?)", (version, description, time.time())
                    )

    @staticmethod
    def schema_of(name: str, api: str, base_url: str) -> str:
        return "j_" + _digest("name:" + name, api, base_url)[:24]

    def locate(self, db: PostgresDb, name: str, api: str, base_url: str, *, content: str | None = None) -> PgLocation:
        """Which schema holds the source ``name`` (its own; else by its name's or its content's alias)."""
        own = self.schema_of(name, api, base_url)
        if self.exists(db, PgLocation(self.url, own)):
            return PgLocation(self.url, own)
        if db.execute("SELECT to_regclass(?)", (f"{REGISTRY}.aliases",)).fetchone()[0] is None:
            return PgLocation(self.url, own)
        aliases = [f"name:{_digest('name:' + name, api, base_url)}"]
        if content:
            aliases.append(f"content:{_digest(content, api, base_url)}")
        for alias in aliases:
            found = db.execute(f"SELECT schema_name FROM {REGISTRY}.aliases WHERE alias = ?", (alias,)).fetchone()
            if found is not None:
                return PgLocation(self.url, found[0])
        return PgLocation(self.url, own)

    def exists(self, db: PostgresDb, location: PgLocation) -> bool:
        return bool(db.execute("SELECT to_regclass(?) IS NOT NULL", (f"{location.schema}.confirmed",)).fetchone()[0])

    def create(
        self, db: PostgresDb, location: PgLocation, name: str, api: str, base_url: str, *, content: str | None
    ) -> None:
        """The source's schema and tables (when new), and the aliases that find it by name and content."""
        with db.transaction():
            if not self.exists(db, location):
                db.execute("SELECT pg_advisory_xact_lock(?)", (_DDL_LOCK,))
                db.execute(f"CREATE SCHEMA IF NOT EXISTS {location.schema}")
                db.execute(f"SET LOCAL search_path TO {location.schema}")
                db.execute(PG_JOURNAL_TABLES)
            db.upsert(
                f"{REGISTRY}.sources",
                ("schema_name", "name", "api", "base_url", "created_at"),
                [(location.schema, name, api, base_url, time.time())],
            )
            aliases = []
            if location.schema != self.schema_of(name, api, base_url):  # found by content: the name keeps it
                aliases.append((f"name:{_digest('name:' + name, api, base_url)}", location.schema))
            if content:
                aliases.append((f"content:{_digest(content, api, base_url)}", location.schema))
            db.upsert(f"{REGISTRY}.aliases", ("alias", "schema_name"), aliases, key=("alias",))

    def sources(self, db: PostgresDb) -> list[tuple[str, str, str, str]]:
        """Every source: (schema, name, API, base URL)."""
        if db.execute("SELECT to_regclass(?)", (f"{REGISTRY}.sources",)).fetchone()[0] is None:
            return []
        return db.execute(f"SELECT schema_name, name, api, base_url FROM {REGISTRY}.sources").fetchall()


class PgSourceLock:
    """One run at a time per source across machines: a session-level advisory lock on a connection of its own.

    The connection then serves the run's journal (:attr:`db`), so a run whose
    connection is gone (and with it the lock) cannot write either: it stops.
    ``wait`` seconds are spent waiting for another runner to finish first.
    """

    def __init__(self, store: PostgresStore, location: PgLocation, shown: str, *, wait: float = 0.0):
        self.store = store
        self.location = location
        self.shown = shown
        self.wait = wait
        self.db: PostgresDb | None = None

    def acquire(self) -> PgSourceLock:
        conn = self.store.connect()
        db = PostgresDb(conn, self.location)
        key = _key("lock:" + self.location.schema)
        deadline = time.monotonic() + max(self.wait, 0.0)
        while not db.execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()[0]:
            if time.monotonic() >= deadline:
                holder = self._holder(db, key)
                db.close()
                waited = f" (waited {self.wait:g} s)" if self.wait else ""
                raise AlreadyRunning(
                    f"another signal-uploader run ({holder}) is already working on {self.shown}{waited}",
                    hint="wait for it to finish (or give --wait-for-lock SECONDS); two runs over the same "
                    "input would send rows twice",
                )
            time.sleep(min(0.25, max(deadline - time.monotonic(), 0.01)))
        self.db = db
        return self

    @staticmethod
    def _holder(db: PostgresDb, key: int) -> str:
        """Who holds the lock, as it named itself when it connected."""
        classid, objid = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
        found = db.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = ? AND l.objid::bigint = ?",
            (classid, objid),
        ).fetchone()
        return found[0] if found and found[0] else "another runner"

    def release(self) -> None:
        if self.db is not None:
            self.db.close()  # the lock ends with its session
            self.db = None

    def __enter__(self) -> PgSourceLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
