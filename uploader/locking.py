"""One run at a time per input: an advisory lock file under the state folder.

The lock is an ``flock`` on a file, so the operating system releases it when
the process ends, however it ends (``kill -9`` included): a crashed run never
leaves a stale lock behind.

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
from pathlib import Path

from .errors import InputError


class AlreadyRunning(InputError):
    """Another run holds the lock for the same input (exit 2)."""


class RunLock:
    def __init__(self, state_dir: Path, target: str | Path):
        resolved = str(Path(target).resolve())
        digest = hashlib.sha256(resolved.encode()).hexdigest()[:16]
        self.target = resolved
        self.path = Path(state_dir) / "locks" / f"{Path(resolved).name[:40]}-{digest}.lock"
        self._handle = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
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

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
