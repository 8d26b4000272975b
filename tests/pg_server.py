"""A real PostgreSQL server for the tests: a throwaway cluster in a temporary folder, on a free loopback port.

Debian's ``postgresql`` package provides ``initdb`` and ``pg_ctl`` (``make test``
installs it when it is missing). ``initdb`` refuses to run as root, so as
root the cluster belongs to the ``postgres`` user the package creates. The
server asks for a password (scram-sha-256), as a real one does, so the tests
see where the password travels.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "uploader"
PASSWORD = "pg-Secret-71d3"  # a test's own; the secrecy tests look for it in everything written


def _binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def available() -> bool:
    return _binary("initdb") is not None and _binary("pg_ctl") is not None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One cluster; :meth:`database` gives each test a fresh database on it."""

    _numbers = itertools.count(1)

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable  # fsync on, as a real server runs (the benchmark); the tests need not wait for disks
        self.folder = Path(tempfile.mkdtemp(prefix="signal-uploader-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.owner = "postgres" if os.geteuid() == 0 else None  # initdb refuses root
        pwfile = self.folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.owner:
            shutil.chown(self.folder, self.owner)
            shutil.chown(pwfile, self.owner)
        self._run(
            _binary("initdb"), "-D", self.data, "-U", USER, f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8"
        )
        pwfile.unlink()
        self.start()

    def _run(self, *args) -> None:
        command = [str(a) for a in args]
        if self.owner:
            command = ["runuser", "-u", self.owner, "--", *command]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if completed.returncode:
            raise RuntimeError(f"{' '.join(command)} failed: {completed.stdout}{completed.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off"
        self._run(_binary("pg_ctl"), "-D", self.data, "-l", self.folder / "log", "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(_binary("pg_ctl"), "-D", self.data, "-m", mode, "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres", *, password: bool = False) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new, empty database; its URL (without the password: PGPASSWORD carries it)."""
        import psycopg

        name = f"journal_{next(self._numbers)}"
        with psycopg.connect(self.url(password=True), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def query(self, url: str, sql: str, params=()) -> list[tuple]:
        import psycopg

        with psycopg.connect(url, password=PASSWORD, autocommit=True) as conn:
            cursor = conn.execute(sql, params or None)
            return cursor.fetchall() if cursor.description is not None else []
