"""Shared test helpers: files written the way analysts' tools write them, the
real CLI (in this process, or as a process where the process is the point),
and the emulator on loopback."""

from __future__ import annotations

import csv
import io
import json
import os
import ssl
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from uploader.emulator import EmulatorConfig, start_in_thread

# The example target's files belong inside a copy of the package (tests/test_new_target.py), not here.
collect_ignore = ["new_target"]

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_files"
EMULATOR_DATA = ROOT / "uploader" / "emulator" / "data"  # the calls the emulator ships with
TOKEN = "test-token-5f2c9a"
# What every run_cli of a test needs in its environment for the journal backend it runs against (see the
# `backend` fixture): empty for the state folder's SQLite journals.
BACKEND_ENV: dict[str, str] = {}


def write_csv(
    path: Path, rows: list[list], *, delimiter: str = ",", encoding: str = "utf-8", bom: bool = False
) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    data = buffer.getvalue().encode(encoding)
    if bom:
        data = b"\xef\xbb\xbf" + data
    path.write_bytes(data)
    return path


def write_xlsx(
    path: Path,
    rows: list[list],
    *,
    sheet: str = "Sheet1",
    formats: dict[str, str] | None = None,
    extra_sheets: dict[str, list[list]] | None = None,
    text_columns: str = "",
) -> Path:
    """A workbook; cells in ``text_columns`` are text even when they start with '=' (as Excel's '@' format)."""
    from openpyxl import Workbook

    workbook = Workbook()
    worksheet = workbook.active
    worksheet.title = sheet
    for row in rows:
        worksheet.append(row)
    for column in text_columns:
        for cell in worksheet[column][1:]:
            cell.data_type = "s"
    for column, number_format in (formats or {}).items():
        for cell in worksheet[column][1:]:
            cell.number_format = number_format
    for name, extra in (extra_sheets or {}).items():
        other = workbook.create_sheet(name)
        for row in extra:
            other.append(row)
    workbook.save(path)
    return path


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(
    *args, env: dict | None = None, token: str | None = TOKEN, cwd: Path | None = None, process: bool = False
) -> CliResult:
    """Run the real command line as a user would: its options, its output, its exit code.

    In this process through click's runner (the same ``main`` the
    ``signal-uploader`` script calls), which spares a second of interpreter
    and import start-up per call; ``process=True`` starts ``python -m
    uploader`` instead, for what only a process shows (its environment from
    scratch, the interpreter's own start). An exception the command did not
    turn into its one-line message is put into stderr as the traceback a
    user would see, so ``assert_no_traceback`` still catches it.
    """
    strip = ("INVOCA_", "SIGNAL_UPLOADER_", "ENGAGE_VOICE_")
    env = {**BACKEND_ENV, **(env or {})}
    if process:
        environment = {k: v for k, v in os.environ.items() if not k.startswith(strip)}
        if token is not None:
            environment["INVOCA_API_TOKEN"] = token
        environment.update(env or {})
        completed = subprocess.run(
            [sys.executable, "-m", "uploader", *[str(a) for a in args]],
            capture_output=True,
            text=True,
            env=environment,
            cwd=cwd or ROOT,
            timeout=300,
        )
        return CliResult(completed.returncode, completed.stdout, completed.stderr)
    return _run_cli_here([str(a) for a in args], env, token, cwd, strip)


def _run_cli_here(args: list[str], env: dict | None, token: str | None, cwd: Path | None, strip) -> CliResult:
    import contextlib
    import logging
    import traceback

    from click.testing import CliRunner

    from uploader.cli import main

    overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith(strip)}
    if token is not None:
        overrides["INVOCA_API_TOKEN"] = token
    overrides.update(env or {})
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # the command sets up logging to its own stderr
    try:
        with contextlib.chdir(cwd or ROOT):
            result = CliRunner().invoke(main, args, env=overrides, prog_name="signal-uploader")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return CliResult(result.exit_code, result.stdout, stderr)


def assert_no_traceback(result: CliResult) -> None:
    assert "Traceback" not in result.output, result.output


class Emulator:
    """The project's emulator on a free loopback port, with state inspection."""

    def __init__(self, **config):
        config.setdefault("token", TOKEN)
        config.setdefault("calls_file", EMULATOR_DATA / "calls.csv")
        self.running = start_in_thread(EmulatorConfig(**config))
        self.base_url = self.running.base_url
        # The tests' own look at the state trusts the emulator's test certificate.
        self.context = ssl.create_default_context(cafile=config["tls_cert"]) if config.get("tls_cert") else None

    def signals(self) -> list[dict]:
        return self._get()["signals"]

    @property
    def requests(self) -> int:
        return self._get()["requests"]

    def _get(self) -> dict:
        root = self.base_url.split("/api/")[0]
        with urllib.request.urlopen(f"{root}/_emulator/signals", timeout=10, context=self.context) as answer:
            return json.load(answer)

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"{self.base_url}/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def control(self, path: str, body: dict) -> dict:
        """One of the emulator's own controls: ``faults`` (its fault rates now), ``engage/agent``, ..."""
        root = self.base_url.split("/api/")[0]
        request = urllib.request.Request(
            f"{root}/_emulator/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10, context=self.context) as answer:
            return json.load(answer)

    def stop(self) -> None:
        self.running.stop()


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    """Journals and locks of each test in its own folder, never the user's."""
    state = tmp_path / "state-home"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state / "signal-uploader"


@pytest.fixture
def emulator():
    server = Emulator()
    yield server
    server.stop()


@pytest.fixture
def make_emulator():
    started = []

    def start(**config) -> Emulator:
        server = Emulator(**config)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# -- the journal's two backends ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the whole session (a throwaway cluster), stopped and removed after."""
    import pg_server

    if not pg_server.available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL (initdb, pg_ctl) is missing: `make test` installs Debian's postgresql package")
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed: apt-get install postgresql")
    server = pg_server.PostgresServer()
    yield server
    server.remove()


@dataclass
class Backend:
    """Where a test's journals live: ``sqlite`` (the state folder) or ``postgresql`` (a fresh database)."""

    name: str
    url: str | None = None
    server: object = None

    @property
    def env(self) -> dict:
        """What a run needs in its environment to use this backend (the password as PGPASSWORD)."""
        if self.url is None:
            return {}
        import pg_server

        return {"SIGNAL_UPLOADER_JOURNAL": self.url, "PGPASSWORD": pg_server.PASSWORD}

    def confirmed(self, state: Path | None = None) -> int:
        """Rows confirmed in every journal of this backend (of ``state``'s journals for SQLite)."""
        import sqlite3

        if self.url is None:
            total = 0
            for path in (Path(state) / "journals").glob("*.sqlite") if state else ():
                try:
                    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
                        total += db.execute("SELECT COUNT(*) FROM confirmed").fetchone()[0]
                except sqlite3.Error:
                    pass
            return total
        schemas = self.server.query(  # type: ignore[attr-defined]
            self.url,
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'j\\_%' AND to_regclass(nspname || '.confirmed') IS NOT NULL",
        )
        return sum(
            self.server.query(self.url, f"SELECT count(*) FROM {schema}.confirmed")[0][0]  # type: ignore[attr-defined]
            for (schema,) in schemas
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    """Each journal test twice: with journals in the state folder, and in a real PostgreSQL database.

    Every ``run_cli`` of the test runs with the backend's environment
    (``SIGNAL_UPLOADER_JOURNAL``, ``PGPASSWORD``), as a worker of an
    orchestrator would be given it.
    """
    if request.param == "sqlite":
        yield Backend("sqlite")
        return
    server = request.getfixturevalue("postgres_server")
    chosen = Backend("postgresql", server.database(), server)
    BACKEND_ENV.update(chosen.env)
    request.getfixturevalue("monkeypatch").setenv("PGPASSWORD", chosen.env["PGPASSWORD"])  # the library's calls
    try:
        yield chosen
    finally:
        BACKEND_ENV.clear()
