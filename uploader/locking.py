"""One run at a time per input: operating-system locks on the input's path and on its content.

A lock is the operating system's own (``flock`` on Linux and macOS, a
locked byte range on Windows), taken through ``filelock``, so the system
releases it when the process ends, however it ends (``kill -9`` included): a
crashed run never leaves a stale lock behind. Who holds a lock is written
beside it (``<name>.lock.holder``), since Windows does not let another
process read a locked file.

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

import getpass
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import InputError


class AlreadyRunning(InputError):
    """Another run holds the lock for the same input (exit 2)."""


class _FileLock:
    path: Path
    target: str

    wait: float = 0.0  # seconds to wait for the holder to finish before refusing

    def __init__(self) -> None:
        self._lock: Any = None

    @property
    def _holder(self) -> Path:
        return self.path.with_name(self.path.name + ".holder")

    def acquire(self):
        # filelock costs about 50 ms to import: paid by a run that locks, not by `--help`.
        from filelock import FileLock, Timeout

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(self.path, timeout=max(self.wait, 0))
            lock.acquire()
        except Timeout:
            try:
                holder = self._holder.read_text(encoding="utf-8").strip()
            except OSError:
                holder = ""
            waited = f" (waited {self.wait:g} s)" if self.wait else ""
            raise AlreadyRunning(
                f"another signal-uploader run ({holder or 'another process'}) is already working on "
                f"{self.target}{waited}",
                hint="wait for it to finish (or give --wait-for-lock SECONDS); two runs over the same input "
                "would send rows twice",
            ) from None
        except OSError as exc:
            raise InputError(
                f"cannot write the lock file {self.path} ({exc.strerror or exc})",
                hint="the state folder must be writable: choose another with --state-dir",
            ) from None
        try:
            self._holder.write_text(f"pid {os.getpid()}", encoding="utf-8")
        except OSError:
            pass  # who holds it is a courtesy for the next run's message, not part of the lock
        self._lock = lock
        return self

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

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

    def __init__(self, state_dir: Path, journal: Path, name: str, *, wait: float = 0.0):
        super().__init__()
        self.wait = wait
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
    """One folder per user for content locks: ``$XDG_RUNTIME_DIR``, else the temporary folder.

    The temporary folder is shared by every user on Linux and macOS, so the
    folder's name carries the user: the numeric id where there is one, the
    login name on Windows (whose temporary folder is the user's own anyway).
    """
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"signal-uploader-{_user()}" / "locks"


def _user() -> str:
    if hasattr(os, "getuid"):
        return str(os.getuid())
    try:
        name = getpass.getuser()
    except Exception:  # no login name in the environment (a service account): one folder for all
        return "user"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "user"


class ContentLock(_FileLock):
    """Locks a file's content, wherever it lies and whichever state folder is used."""

    def __init__(self, path: str | Path, digest: str | None = None, *, wait: float = 0.0):
        super().__init__()
        self.wait = wait
        self.target = f"the same content as {path}"
        self.digest = digest or content_hash(path)
        self.path = lock_folder() / f"{self.digest[:32]}.lock"
