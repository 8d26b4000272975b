"""Installed as users install it: the wheel and sdist built, the wheel in a new virtual environment.

Nothing of the source tree is on the path there: the commands are the
wheel's scripts, run from an empty folder, so the sample files, the
emulator's calls and the page's files must have shipped inside the package.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from conftest import EMULATOR_DATA, ROOT, run_cli

SETUPTOOLS_WARNINGS = re.compile(
    r"SetuptoolsDeprecationWarning|SetuptoolsWarning|is absent from the `packages`|"
    r"as a TOML table is deprecated|License classifiers are deprecated|Please consider removing",
)


class Installed:
    def __init__(self, root: Path):
        self.root = root
        self.venv = root / "venv"
        self.bin = self.venv / ("Scripts" if os.name == "nt" else "bin")
        self.work = root / "work"  # an empty folder to run from: no source tree in sight
        self.work.mkdir()

    def env(self, **extra: str) -> dict[str, str]:
        environment = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("INVOCA_", "SIGNAL_UPLOADER_", "PYTHON", "VIRTUAL_ENV"))
        }
        environment["PATH"] = str(self.bin) + os.pathsep + environment.get("PATH", "")
        environment.update(extra)
        return environment

    def run(self, *args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            cwd=self.work,
            env=self.env(**extra),
            timeout=timeout,
        )

    def start(self, *args: str, **extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [str(self.bin / args[0]), *args[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.work,
            env=self.env(**extra),
        )


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """The wheel and the sdist, and what building them printed."""
    dist = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return dist, done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> Installed:
    dist, _ = built
    place = Installed(tmp_path_factory.mktemp("installed"))
    subprocess.run([sys.executable, "-m", "venv", str(place.venv)], check=True, timeout=300)
    wheel = next(dist.glob("*.whl"))
    done = subprocess.run(
        [str(place.bin / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{wheel}[web]"],
        capture_output=True,
        text=True,
        cwd=place.work,
        env=place.env(),
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return place


def test_the_wheel_and_sdist_build_without_a_setuptools_warning(built):
    dist, said = built
    assert not SETUPTOOLS_WARNINGS.search(said), [line for line in said.splitlines() if "arning" in line]
    wheel = zipfile.ZipFile(next(dist.glob("*.whl"))).namelist()
    for shipped in (
        "uploader/schemas/signals.py",
        "uploader/sample_files/signals.csv",
        "uploader/sample_files/signals.xlsx",
        "uploader/emulator/data/calls.csv",
        "uploader/emulator/data/live_calls.json",
        "uploader/emulator/data/engage_calls.json",
        "uploader/web/templates/index.html",
        "uploader/web/static/page.js",
    ):
        assert shipped in wheel, shipped
    assert not [name for name in wheel if name.startswith(("tests/", "bench/", "schemas/"))]
    with tarfile.open(next(dist.glob("*.tar.gz"))) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"schemas/signals.py", "sample_files/signals.xlsx", "uploader/emulator/data/calls.csv"} <= names


def test_the_installed_commands_run_from_the_wheel_alone(installed):
    from uploader._version import __version__

    version = installed.run("signal-uploader", "--version")
    assert version.returncode == 0 and __version__ in version.stdout, version.stderr
    where = installed.run("python", "-c", "import uploader, uploader.schemas; print(uploader.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(installed.venv), where.stdout + where.stderr
    assert installed.run("signal-uploader-web", "--help").returncode == 0


def test_the_installed_emulator_has_its_bundled_calls(installed):
    with open(EMULATOR_DATA / "calls.csv", newline="", encoding="utf-8") as handle:
        bundled = sum(1 for _ in csv.DictReader(handle))
    ready = installed.work / "emulator.url"
    emulator = installed.start("signal-uploader", "emulator", "--port", "0", "--ready-file", str(ready))
    try:
        first = emulator.stdout.readline()
        assert f"{bundled} calls loaded" in first, first
    finally:
        emulator.terminate()
        emulator.communicate(timeout=30)


def _outcomes(output: str, folder: Path) -> list[str]:
    """The demo's words with the folder and the emulator's port taken out: what a user compares."""
    text = output.replace(str(folder), "FOLDER")
    return [re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line) for line in text.splitlines()]


def test_the_installed_demo_gives_the_source_trees_outcomes(installed, tmp_path):
    mine = installed.work / "demo"
    demo = installed.run("signal-uploader", "demo", "--folder", str(mine))
    assert demo.returncode == 0, demo.stdout + demo.stderr
    source = run_cli("demo", "--folder", tmp_path / "demo", process=True)  # what `make demo` runs
    assert source.code == 0, source.output
    assert _outcomes(demo.stdout, mine) == _outcomes(source.stdout, tmp_path / "demo")
    assert "created         7" in demo.stdout and "skipped         9" in demo.stdout
    with open(mine / "signals.results.csv", newline="", encoding="utf-8-sig") as handle:
        statuses = [row["status"] for row in csv.DictReader(handle)]
    assert statuses.count("skipped") == 9 and "invalid" in statuses


def test_the_installed_page_answers(installed):
    ready = installed.work / "page.url"
    page = installed.start(
        "signal-uploader",
        "serve",
        "--port",
        "0",
        "--ready-file",
        str(ready),
        "--state-dir",
        str(installed.work / "state"),
        "--base-url",
        "http://127.0.0.1:9/api/2020-10-01",
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline and page.poll() is None:
            time.sleep(0.1)
        url = ready.read_text(encoding="utf-8")
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())  # the key becomes a cookie
        with opener.open(url, timeout=10) as answer:
            body = answer.read().decode()
        assert answer.status == 200 and "signal-uploader" in body and 'id="file-input"' in body
    finally:
        page.terminate()
        page.communicate(timeout=30)
