"""``signal-uploader-web``: the page one double-click away, no terminal needed.

It starts the page (as ``signal-uploader serve --open`` does), opens it in
the default browser, and shows a small window saying where it is, with a
button to open it again and one to stop it. Launched a second time while the
page runs, it opens the running page instead of starting another. Where no
window can be shown (no display, a Python without Tk, or ``--no-window``) it
says the same on its console and serves until Ctrl-C.

A shortcut to it, or the launcher pipx installs, is all an analyst needs:
settings come from the user's config file (``base_url``, ``token_file``; see
:mod:`uploader.folders`) and the token, if none is set, is asked on the page.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..config import resolve
from ..errors import UploaderError, WebExtraMissing
from ..folders import config_file, config_or_default, state_folder
from ..messages import told

if TYPE_CHECKING:
    from .server import Page

TITLE = "signal-uploader page"


def _give_pythonw_a_console_log(folder: Path) -> None:
    """A GUI launch on Windows (pythonw) has no stdout or stderr: what would be printed goes to a log file."""
    if sys.stdout is not None and sys.stderr is not None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    log = open(folder / "launcher.log", "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (for the process' life)
    if sys.stdout is None:
        sys.stdout = log
    if sys.stderr is None:
        sys.stderr = log


def _on_key(command: Callable[[], None], _event: object) -> None:
    command()


def _window(page: Page, where: list[str]):
    """The small window that says where the page is; None when no window can be shown here."""
    try:
        import tkinter as tk
        from tkinter import ttk
    except ImportError:
        return None
    try:
        root = tk.Tk()
    except tk.TclError:  # no display
        return None
    root.title(TITLE)
    frame = ttk.Frame(root, padding=16)
    frame.grid(sticky="nsew")
    ttk.Label(frame, text="The page is open in your browser at this address:").grid(
        row=0, column=0, columnspan=3, sticky="w"
    )
    entry = ttk.Entry(frame, width=len(page.url) + 2)
    entry.insert(0, page.url)
    entry.configure(state="readonly")  # selectable and copyable, not editable
    entry.grid(row=1, column=0, columnspan=3, sticky="we", pady=(4, 8))
    for number, line in enumerate(where, start=2):
        ttk.Label(frame, text=line).grid(row=number, column=0, columnspan=3, sticky="w")

    def copy() -> None:
        root.clipboard_clear()
        root.clipboard_append(page.url)

    def stop() -> None:
        page.stop()
        root.destroy()

    row = len(where) + 2

    # Each button has its Alt key (the underlined letter), for the keyboard alone.
    def open_again() -> None:
        webbrowser.open(page.url)

    buttons: tuple[tuple[str, str, Callable[[], None], str], ...] = (
        ("Open the page", "o", open_again, "w"),
        ("Copy the address", "c", copy, ""),
        ("Stop the page", "s", stop, "e"),
    )
    for column, (text, key, command, sticky) in enumerate(buttons):
        ttk.Button(frame, text=text, underline=0, command=command).grid(
            row=row, column=column, pady=(12, 0), sticky=sticky
        )
        root.bind(f"<Alt-{key}>", functools.partial(_on_key, command))
    ttk.Label(frame, text="Closing this window stops the page.", foreground="#555").grid(
        row=row + 1, column=0, columnspan=3, sticky="w", pady=(8, 0)
    )
    root.protocol("WM_DELETE_WINDOW", stop)
    return root


def _show_error(message: str, window: bool) -> None:
    click.echo(message, err=True)
    if not window:
        return
    with contextlib.suppress(Exception):  # no Tk, no display: the console or the log file has it
        import tkinter as tk
        from tkinter import messagebox

        root = tk.Tk()
        root.withdraw()
        messagebox.showerror(TITLE, message)
        root.destroy()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--port", type=int, default=8765, show_default=True, help="Port to use (a free one when it is taken).")
@click.option("--no-window", is_flag=True, help="Say where the page is on the console instead of in a window.")
@click.option("--no-browser", is_flag=True, help="Do not open the page in the default browser.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="TOML file of settings (default: the user's config.toml, when there is one).",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where journals and the page's files and reports live (default: the system's state folder).",
)
def main(port: int, no_window: bool, no_browser: bool, config_path: Path | None, state_dir: Path | None) -> None:
    """Open signal-uploader's web page in the default browser, with no terminal.

    A second launch while the page runs opens the same page. The API address
    and the token file come from the user's config file (base_url,
    token_file); a token not set anywhere is asked for on the page.
    """
    window_wanted = not no_window
    _give_pythonw_a_console_log((state_dir or state_folder()) / "web")
    try:
        try:
            from .server import open_page, running_page  # the web extra: a missing one is said, not a traceback
        except ImportError as exc:
            raise WebExtraMissing(exc.name) from None
        settings = resolve({"state_dir": state_dir}, config_file=config_or_default(config_path))
        existing = running_page(settings)
        if existing is not None:
            click.echo(f"signal-uploader's page is already running at {existing}")
            if not no_browser:
                webbrowser.open(existing)
            return
        page = open_page(settings, port=port, any_port=True, environ=os.environ)
    except UploaderError as exc:
        said = told(exc)
        _show_error("\n".join(said.lines()), window_wanted)
        sys.exit(said.exit_code)
    where = [
        f"API: {settings.base_url}"
        if settings.base_url
        else f"API: not set. Put base_url = '...' in {config_file()} and start this again.",
        f"Files and reports stay in {page.folder}",
    ]
    click.echo(f"signal-uploader's page is at {page.url}")
    for line in where:
        click.echo(f"  {line}")
    if not no_browser:
        threading.Timer(0.5, webbrowser.open, (page.url,)).start()
    window = _window(page, where) if window_wanted else None
    if window is None:
        click.echo("  Ctrl-C stops it.")
        page.run()  # this thread: uvicorn stops on Ctrl-C and SIGTERM
        return
    serving = threading.Thread(target=page.run, name="page", daemon=True)
    serving.start()
    window.mainloop()
    page.stop()
    serving.join(timeout=10)


if __name__ == "__main__":
    main()
