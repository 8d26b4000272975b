"""``signal-uploader serve``: start the local page on loopback and print its address (with the access key).

:func:`open_page` binds the port and builds the page; :func:`serve` (the
command) and :mod:`uploader.web.launcher` (``signal-uploader-web``, the
double-click way in) both run what it returns.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import webbrowser
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import UsageError
from .app import create_app, new_key, own_hosts
from .workspace import KEEP_DAYS, Workspace

ADDRESS_FILE = "page.url"  # in the page's folder while it runs: a second launch opens this page


@dataclass
class Page:
    """A page bound to its port, not yet serving: :meth:`run` serves until :meth:`stop` (or Ctrl-C)."""

    url: str
    folder: Path
    server: Any  # uvicorn.Server
    sock: socket.socket

    def run(self) -> None:
        address = self.folder / ADDRESS_FILE
        try:
            _write_private(address, self.url)
        except OSError:
            pass  # only a second launch's shortcut: the page works without it

        def forget() -> None:
            try:
                if address.read_text(encoding="utf-8") == self.url:
                    address.unlink()
            except OSError:
                pass

        # uvicorn raises the signal that stopped it again once it has shut down, which ends the
        # process there: the address is forgotten at its shutdown, before that.
        self.server.on_shutdown = forget
        try:
            self.server.run(sockets=[self.sock])
        finally:
            forget()

    def stop(self) -> None:
        self.server.should_exit = True


def _write_private(path: Path, text: str) -> None:
    """The address carries the page's key: readable by this user only (where the system has modes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def running_page(settings: Settings) -> str | None:
    """The address of a page already serving this state folder, if one answers."""
    import urllib.request

    path = settings.state_folder / "web" / ADDRESS_FILE
    try:
        url = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not url.startswith("http://"):
        return None
    # The key in the address is traded for a cookie on the way in (Guard): a cookie jar follows it.
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    try:
        with opener.open(url, timeout=2) as answer:
            return url if answer.status == 200 else None
    except Exception:  # nothing answers there any more (a page stopped without tidying up)
        return None


def open_page(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token_file: Path | None = None,
    max_upload_mb: float = 200,
    keep_days: float | None = KEEP_DAYS,
    environ=None,
    any_port: bool = False,
) -> Page:
    """Bind the port and build the page. ``any_port``: when ``port`` is taken, take a free one instead.

    Only a loopback address is served: the page carries API tokens and callers' phone
    numbers over plain HTTP, and its guard knows this machine's names only.
    """
    import uvicorn

    check_loopback(host)
    workspace = Workspace(
        settings,
        environ=environ,
        token_file=token_file,
        max_upload_bytes=int(max_upload_mb * (1 << 20)),
        keep_days=keep_days,
    )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if os.name != "nt":
        # Lets a restarted page take its port back at once; on Windows the same option would let
        # two pages share a port, so it is left off there.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        try:
            sock.bind((host, port))
        except OSError:
            if not any_port:
                raise
            sock.bind((host, 0))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port} ({exc.strerror})",
            hint="another program uses that port: choose another with --port (0 picks a free one)",
        ) from None
    sock.listen(128)  # connections wait in the backlog from now on: the address printed below works at once
    port = sock.getsockname()[1]
    key = new_key()
    app = create_app(workspace, key=key, hosts=own_hosts(host, port))
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/?key={key}"
    # No access log: the first request's address carries the key.
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)

    class Server(uvicorn.Server):
        on_shutdown = staticmethod(lambda: None)

        async def shutdown(self, sockets=None) -> None:
            await super().shutdown(sockets)
            self.on_shutdown()

    return Page(url=url, folder=workspace.root, server=Server(config), sock=sock)


def check_loopback(host: str) -> None:
    """Refuse to serve the page beyond this machine (``--host 0.0.0.0``), saying why.

    >>> check_loopback("127.0.0.1"), check_loopback("::1"), check_loopback("localhost")
    (None, None, None)
    >>> check_loopback("0.0.0.0")
    Traceback (most recent call last):
    ...
    uploader.errors.UsageError: the page serves this computer only, not 0.0.0.0
    """
    import ipaddress

    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UsageError(
            f"the page serves this computer only, not {host}",
            hint="it sends API tokens and callers' phone numbers without encryption, so it listens on "
            "127.0.0.1 (leave --host out); to use it from another computer, forward the port over "
            "SSH (ssh -L 8765:127.0.0.1:8765 this-machine) and open the printed address there",
        )


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = False,
    token_file: Path | None = None,
    max_upload_mb: float = 200,
    keep_days: float | None = KEEP_DAYS,
    ready_file: Path | None = None,
    environ=None,
    echo=print,
) -> None:
    """Serve the page until Ctrl-C or SIGTERM (uvicorn's own handling)."""
    page = open_page(
        settings,
        host=host,
        port=port,
        token_file=token_file,
        max_upload_mb=max_upload_mb,
        keep_days=keep_days,
        environ=environ,
    )
    echo(f"signal-uploader's page is at {page.url}")
    echo(f"  API: {settings.base_url or '(none: start with --base-url)'}; files and reports stay in {page.folder}")
    if keep_days is not None:
        echo(f"  Uploaded files and their reports are forgotten after {keep_days:g} days (--keep-days).")
    echo("  Ctrl-C stops it.")
    if ready_file is not None:
        Path(ready_file).write_text(page.url, encoding="utf-8")
    if open_browser:
        threading.Timer(0.5, webbrowser.open, (page.url,)).start()
    page.run()
