"""One run at a time per input: advisory locks on the input's path and on its content.

A lock is an ``flock`` on a file, so the operating system releases it when
the process ends, however it ends (``kill -9`` included): a crashed run never
leaves a stale lock behind.

:class:`RunLock` is keyed by the input's path, under the state folder;
:class:`SourceLock` by the source's journal, so that every way of sending a
source (upload, retry of its report, the page) takes turns.
:class:`ContentLock` is keyed by the file's content and lives in one folder
per user whatever ``--state-dir`` says, so the same file under two names (a
hard link, a copy, another state folder) is not uploaded twice at once.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with RunLock(folder, "/data/march.csv"):
...     try:
...         RunLock(folder, "/data/march.csv").acquire()
...     except AlreadyRunning:
...         print("second run refused")
second run refused
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path

from .errors import InputError


class AlreadyRunning(InputError):
    """Another run holds the lock for the same input (exit 2)."""


class _FileLock:
    path: Path
    target: str

    def __init__(self) -> None:
        self._handle = None

    def acquire(self):
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+")  # noqa: SIM115 (held for the run: the lock lives as long as it)
        except OSError as exc:
            raise InputError(
                f"cannot write the lock file {self.path} ({exc.strerror})",
                hint="the state folder must be writable: choose another with --state-dir",
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise AlreadyRunning(
                f"another signal-uploader run ({holder}) is already working on {self.target}",
                hint="wait for it to finish; two runs over the same input would send rows twice",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class RunLock(_FileLock):
    def __init__(self, state_dir: Path, target: str | Path):
        super().__init__()
        resolved = str(Path(target).resolve())
        digest = hashlib.sha256(resolved.encode()).hexdigest()[:16]
        self.target = resolved
        self.path = Path(state_dir) / "locks" / f"{Path(resolved).name[:40]}-{digest}.lock"


class SourceLock(_FileLock):
    """One run at a time per source (its journal), whichever command or front end sends it."""

    def __init__(self, state_dir: Path, journal: Path, name: str):
        super().__init__()
        self.target = name
        self.path = Path(state_dir) / "locks" / f"{Path(journal).stem}.lock"


def content_hash(path: str | Path) -> str:
    """The SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lock_folder() -> Path:
    """One folder per user for content locks: ``$XDG_RUNTIME_DIR``, else the temporary folder."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"signal-uploader-{os.getuid()}" / "locks"


class ContentLock(_FileLock):
    """Locks a file's content, wherever it lies and whichever state folder is used."""

    def __init__(self, path: str | Path, digest: str | None = None):
        super().__init__()
        self.target = f"the same content as {path}"
        self.digest = digest or content_hash(path)
        self.path = lock_folder() / f"{self.digest[:32]}.lock"
