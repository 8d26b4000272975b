"""``signal-uploader-web``: the page one double-click away.

The launcher runs as a real process; the "default browser" is a small
script named by ``BROWSER`` (which Python's webbrowser honours) that writes
down each address it is asked to open. The window is shown on a virtual
screen (Xvfb) and driven with xdotool, as a person would: its Alt+S stops
the page.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

LAUNCHER = [sys.executable, "-m", "uploader.web.launcher"]


def _browser(tmp_path: Path) -> tuple[dict[str, str], Path]:
    opened = tmp_path / "opened.txt"
    script = tmp_path / "browser.py"
    script.write_text("import sys\nwith open(sys.argv[2], 'a') as f:\n    f.write(sys.argv[1] + '\\n')\n")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("INVOCA_", "SIGNAL_UPLOADER_"))}
    environment["BROWSER"] = f"{Path(sys.executable).as_posix()} {script.as_posix()} %s {opened.as_posix()}"
    environment["XDG_CONFIG_HOME"] = str(tmp_path / "no-config")  # not this machine's own config file
    return environment, opened


def _wait_for(check, seconds: float = 30, what: str = ""):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"waited {seconds} s for {what}")


def _answers(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())  # the key becomes a cookie
    try:
        with opener.open(url, timeout=5) as answer:
            return answer.status == 200 and 'id="file-input"' in answer.read().decode()
    except OSError:
        return False


def _opened(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_without_a_window_it_opens_the_page_and_a_second_launch_opens_the_same_one(tmp_path):
    environment, opened = _browser(tmp_path)
    state = tmp_path / "state"
    first = subprocess.Popen(
        [*LAUNCHER, "--no-window", "--port", "0", "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        url = _wait_for(lambda: _opened(opened), what="the browser to be asked to open the page")[0]
        assert _answers(url)
        assert (state / "web" / "page.url").read_text() == url
        # a second double-click: no second page, the same one opened again
        second = subprocess.run(
            [*LAUNCHER, "--no-window", "--state-dir", str(state)],
            capture_output=True,
            text=True,
            env=environment,
            timeout=60,
        )
        assert second.returncode == 0, second.stderr
        assert f"already running at {url}" in second.stdout
        assert _opened(opened) == [url, url]
    finally:
        first.terminate()
        out, err = first.communicate(timeout=30)
    assert f"signal-uploader's page is at {url}" in out and "Traceback" not in err
    assert "API: not set. Put base_url" in out  # says where the setting goes
    assert not (state / "web" / "page.url").exists()  # a stopped page leaves no address behind
    assert not _answers(url)


def test_a_launch_that_cannot_start_says_why_without_a_traceback(tmp_path):
    environment, _ = _browser(tmp_path)
    config = tmp_path / "broken.toml"
    config.write_text("base_url = \n")
    done = subprocess.run(
        [*LAUNCHER, "--no-window", "--config", str(config), "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: the config file") and "Traceback" not in done.stderr


@pytest.fixture
def screen():
    """A virtual screen of its own (Xvfb picks a free display number)."""
    if shutil.which("Xvfb") is None or shutil.which("xdotool") is None:
        pytest.fail("Xvfb and xdotool are needed (make test installs them: apt-get install xvfb xdotool)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    assert number, "Xvfb did not start"
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def test_the_window_shows_where_the_page_is_and_its_stop_key_stops_it(tmp_path, screen):
    environment, opened = _browser(tmp_path)
    environment["DISPLAY"] = screen
    state = tmp_path / "state"
    launcher = subprocess.Popen(
        [*LAUNCHER, "--port", "0", "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        found = subprocess.run(
            ["xdotool", "search", "--sync", "--name", "^signal-uploader page$"],
            capture_output=True,
            text=True,
            env=environment,
            timeout=30,
        )
        window = found.stdout.split()[0]
        url = _wait_for(lambda: _opened(opened), what="the browser to be asked to open the page")[0]
        assert _answers(url)
        subprocess.run(["xdotool", "windowfocus", "--sync", window, "key", "alt+s"], env=environment, timeout=30)
        launcher.wait(timeout=30)
    finally:
        if launcher.poll() is None:
            launcher.kill()
        out, err = launcher.communicate(timeout=30)
    assert launcher.returncode == 0, err
    assert "Traceback" not in err and "Ctrl-C stops it" not in out  # the window, not the console, was the way
    assert not (state / "web" / "page.url").exists()
    assert not _answers(url)
