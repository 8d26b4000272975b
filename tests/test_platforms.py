"""Where analysts work: Windows and macOS, checked here without those machines.

``tests/no_posix.py`` runs Python without what Windows lacks (``fcntl``,
``pwd``, ``resource``, ``termios``, the POSIX-only signals, ``os.getuid``,
``os.fork``); the package must import, upload and refuse a second run that
way. The folders each system expects come from platformdirs; config files
written on Windows (CRLF, a BOM, backslashes) are read or explained.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from test_reliability import HEADER, many_calls

from conftest import ROOT, TOKEN, assert_no_traceback, run_cli, write_csv

NO_POSIX = [sys.executable, str(ROOT / "tests" / "no_posix.py")]


def _environment(**extra: str) -> dict[str, str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("INVOCA_", "SIGNAL_UPLOADER_", "ENGAGE_VOICE_"))
    }
    environment.update(INVOCA_API_TOKEN=TOKEN, **extra)
    return environment


def test_every_module_imports_without_what_windows_lacks():
    done = subprocess.run([*NO_POSIX, "--import-all"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    count = done.stdout.split("imported ")[1].split(" of ")
    assert count[0] == count[1].split()[0] and int(count[0]) > 50, done.stdout  # every module, and many
    # the command line itself starts and answers, with no SIGHUP to install
    helped = subprocess.run([*NO_POSIX, "-m", "uploader", "upload", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "--base-url" in helped.stdout, helped.stderr


def test_an_upload_and_a_lock_conflict_without_what_windows_lacks(tmp_path, make_emulator):
    # 24 rows answered 150 ms apart, one at a time: the first run is still sending when the second starts.
    emulator = make_emulator(calls_file=many_calls(tmp_path, 24), latency_ms=150)
    path = write_csv(
        tmp_path / "Juni Umsätze.csv", [HEADER] + [[f"CALL-{i:05d}", "Sale", str(i), "", ""] for i in range(24)]
    )
    command = [*NO_POSIX, "-m", "uploader", "upload", str(path), "--base-url", emulator.base_url, "--no-progress"]
    environment = _environment()
    first = subprocess.Popen(
        [*command, "--concurrency", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    )
    try:
        deadline = time.monotonic() + 60
        while emulator.requests == 0 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert first.poll() is None and emulator.requests > 0, "the first run should be sending by now"
        second = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "already working on" in second.stderr and "pid " in second.stderr, second.stderr
        assert "Traceback" not in second.stderr
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, out + err
    assert "Traceback" not in err
    assert "created        24" in out
    assert len(emulator.signals()) == 24 and emulator.requests == 24  # the refused run sent nothing
    # once the first is over, the lock is free: a rerun runs, and sends nothing it confirmed
    third = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "skipped        24" in third.stdout
    assert emulator.requests == 24


def test_the_folders_are_each_systems_own(monkeypatch, tmp_path):
    from platformdirs.macos import MacOS

    from uploader import folders

    # Linux: XDG, as before (an existing ~/.local/state/signal-uploader is the one used)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert folders.state_folder() == tmp_path / ".local" / "state" / "signal-uploader"
    assert folders.config_file() == tmp_path / ".config" / "signal-uploader" / "config.toml"
    # macOS and Windows, as platformdirs has them for this tool's name
    mac = MacOS("signal-uploader", appauthor=False)
    assert mac.user_state_dir == str(tmp_path / "Library" / "Application Support" / "signal-uploader")
    # an XDG variable, when set, wins on every system (tests and containers set them)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert folders.state_folder() == tmp_path / "xdg" / "signal-uploader"


def test_an_earlier_versions_state_folder_is_kept_on_macos_and_windows(monkeypatch, tmp_path):
    # Earlier versions kept journals in ~/.local/state on every system; a new empty folder would
    # forget every confirmed row. platformdirs is given the macOS answer (this machine is Linux).
    import platformdirs

    from uploader import folders

    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    mac = tmp_path / "Library" / "Application Support" / "signal-uploader"
    monkeypatch.setattr(platformdirs, "user_state_dir", lambda *a, **k: str(mac))
    assert folders.state_folder() == mac  # a new user: the system's own folder
    earlier = tmp_path / ".local" / "state" / "signal-uploader"
    (earlier / "journals").mkdir(parents=True)
    assert folders.state_folder() == earlier  # an earlier version's journals: kept
    mac.mkdir(parents=True)
    (mac / "config.toml").write_text("timezone = 'America/New_York'\n")
    assert folders.state_folder() == earlier  # a config file there (the same folder on macOS) moves nothing
    (mac / "journals").mkdir()
    assert folders.state_folder() == mac  # once the system's own folder has journals, it is the one


def test_the_users_config_file_is_read_without_config_and_a_flag_still_wins(tmp_path, emulator, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    own = tmp_path / "config-home" / "signal-uploader" / "config.toml"
    own.parent.mkdir(parents=True)
    # written on Windows: a BOM, CRLF line ends, a path in single quotes with backslashes and spaces
    token = tmp_path / "my token.txt"
    token.write_text(TOKEN + "\r\n")
    token.chmod(0o600)
    windows_path = str(token).replace("/", "\\") if os.name == "nt" else str(token)
    own.write_bytes(
        b"\xef\xbb\xbf"
        + f"base_url = '{emulator.base_url}'\r\ntimezone = 'America/Los_Angeles'\r\ntoken_file = '{windows_path}'\r\n".encode()
    )
    path = write_csv(tmp_path / "in.csv", [["call_start_time", "name"], ["2026/11/02 09:15:00 AM", "Sale"]])
    result = run_cli("upload", path, "--no-progress", token=None)
    assert result.code == 0, result.output  # base_url, timezone and the token file came from the user's config
    assert emulator.requests == 1
    refused = run_cli("upload", path, "--base-url", "http://127.0.0.1:9/api/2020-10-01", "--force", token=None)
    assert refused.code == 4 and "127.0.0.1:9" in refused.output  # the flag over the config file
    assert emulator.requests == 1


def test_a_windows_path_in_double_quotes_gets_a_hint(tmp_path):
    config = tmp_path / "uploader.toml"
    config.write_text('token_file = "C:\\Users\\me\\token.txt"\r\n', newline="")
    path = write_csv(tmp_path / "in.csv", [["transaction_id", "name"], ["T1", "Sale"]])
    result = run_cli("upload", path, "--config", config, "--dry-run")
    assert result.code == 2
    assert_no_traceback(result)
    assert "is not valid TOML" in result.stderr
    assert "hint: a Windows path goes in single quotes" in result.stderr
