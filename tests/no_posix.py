"""Run Python the way Windows has it, as far as this package can tell: without POSIX-only parts.

    python tests/no_posix.py -m uploader upload FILE ...   # the CLI, without them
    python tests/no_posix.py --import-all                  # import every module of the package

Before anything of the package is imported, the modules Windows does not
have are made unimportable (``fcntl``, ``pwd``, ``grp``, ``resource``,
``termios``, ``tty``, ``pty``), the POSIX-only signals are removed from
``signal`` (``SIGHUP``, ``SIGQUIT``, ``SIGUSR1``, ...) and the POSIX-only
functions from ``os`` (``getuid``, ``fork``, ...). Code that reaches for any
of them at import time, or on the way of an upload or a lock, fails here as
it would on Windows. (What Windows has instead, ``msvcrt`` or ``SIGBREAK``,
is not there either: filelock falls back to the lock that works everywhere.)

A library that picks its own branch by ``sys.platform``, and whose Windows
branch cannot run on this system, is imported before the parts are taken
away (``PRELOADED``): platformdirs reads the Windows folders through the
Windows API, and is tested on Windows by its own project. Our code is what
this checks.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys

PRELOADED = ("platformdirs", "platformdirs.unix")
MODULES = ("fcntl", "pwd", "grp", "resource", "termios", "tty", "pty")
SIGNALS = (
    "SIGHUP",
    "SIGQUIT",
    "SIGUSR1",
    "SIGUSR2",
    "SIGALRM",
    "SIGPIPE",
    "SIGTSTP",
    "SIGCONT",
    "SIGWINCH",
    "SIGTTIN",
    "SIGTTOU",
    "SIGVTALRM",
    "SIGPROF",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGSYS",
    "SIGTRAP",
    "SIGIO",
    "SIGPOLL",
    "SIGPWR",
    "SIGURG",
)
OS_FUNCTIONS = (
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getgroups",
    "fork",
    "forkpty",
    "getpgid",
    "setsid",
    "killpg",
    "getloadavg",
    "fchown",
    "chown",
    "lchown",
)


def without_posix() -> None:
    import importlib

    for name in PRELOADED:
        importlib.import_module(name)
    for name in MODULES:
        sys.modules[name] = None  # type: ignore[assignment]  # `import fcntl` now raises ImportError
    for name in SIGNALS:
        if hasattr(signal, name):
            delattr(signal, name)
    for name in OS_FUNCTIONS:
        if hasattr(os, name):
            delattr(os, name)


def import_all() -> int:
    """Import every module of the package; print the ones that fail and why."""
    import importlib
    import pkgutil
    import traceback

    import uploader

    failed = 0
    walked = pkgutil.walk_packages(uploader.__path__, "uploader.")
    names = ["uploader"] + [m.name for m in walked if not m.name.endswith(".__main__")]  # __main__ runs the CLI
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:
            failed += 1
            print(f"FAILED {name}", file=sys.stderr)
            traceback.print_exc()
    print(f"imported {len(names) - failed} of {len(names)} modules")
    return 1 if failed else 0


if __name__ == "__main__":
    without_posix()
    if sys.argv[1:2] == ["--import-all"]:
        sys.exit(import_all())
    if sys.argv[1:2] != ["-m"] or len(sys.argv) < 3:
        sys.exit(__doc__)
    module = sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
