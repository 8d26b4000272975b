"""``signal-uploader serve``: start the local page on loopback and print its address (with the access key)."""

from __future__ import annotations

import logging
import socket
import threading
import webbrowser
from pathlib import Path

from ..config import Settings
from ..errors import UsageError
from .app import create_app, new_key, own_hosts
from .workspace import Workspace


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = False,
    token_file: Path | None = None,
    max_upload_mb: float = 200,
    ready_file: Path | None = None,
    environ=None,
    echo=print,
) -> None:
    """Serve the page until Ctrl-C or SIGTERM (uvicorn's own handling)."""
    import uvicorn

    workspace = Workspace(
        settings, environ=environ, token_file=token_file, max_upload_bytes=int(max_upload_mb * (1 << 20))
    )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
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
    server = uvicorn.Server(config)
    echo(f"signal-uploader's page is at {url}")
    echo(f"  API: {settings.base_url or '(none: start with --base-url)'}; files and reports stay in {workspace.root}")
    echo("  Ctrl-C stops it.")
    if ready_file is not None:
        Path(ready_file).write_text(url, encoding="utf-8")
    if open_browser:
        threading.Timer(0.5, webbrowser.open, (url,)).start()
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    server.run(sockets=[sock])
