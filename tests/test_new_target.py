"""A new target, added by following the README alone: three files and the registry lines.

The example is the README's: a signal delete (``DELETE``, 200 = ``deleted``,
404 final, idempotent). The test copies the package as it is installed
(``schemas/`` becomes ``uploader/schemas``), puts the three files of
``tests/new_target/`` where the README's "Adding a target" says, adds the
registry lines, and runs the copy's real CLI against the copy's emulator. Its
own status must be counted, journaled and summarised with no other file
touched: a successful run exits 0 and a rerun sends nothing.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, CliResult, assert_no_traceback, write_csv

EXAMPLE = Path(__file__).resolve().parent / "new_target"
TOKEN = "delete-token-7d1e"
# The README's recipe: (new file in the tree, its text in tests/new_target/).
NEW_FILES = {
    "uploader/schemas/signal_delete.py": "schema_signal_delete.py",
    "uploader/targets/signal_delete.py": "target_signal_delete.py",
    "uploader/emulator/signal_delete.py": "emulator_signal_delete.py",
}
# The registry lines: (file, line after which a line goes, the new line).
REGISTRY = [
    (
        "uploader/targets/__init__.py",
        "from .signals import SIGNALS, SignalTarget\n",
        "from .signal_delete import SIGNAL_DELETE\n",
    ),
    ("uploader/targets/__init__.py", "    *ENGAGE_TARGETS,\n", "    SIGNAL_DELETE,\n"),
    ("uploader/emulator/server.py", "from .signals import SignalApi\n", "from .signal_delete import SignalDeleteApi\n"),
    ("uploader/emulator/server.py", "    EngageApi,\n", "    SignalDeleteApi,\n"),
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of the package with the example target added as the README says."""
    root = tmp_path_factory.mktemp("tree")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "uploader", root / "uploader", ignore=ignore)
    shutil.copytree(ROOT / "schemas", root / "uploader" / "schemas", ignore=ignore)  # the package-dir remap
    for place, source in NEW_FILES.items():
        assert not (root / place).exists()
        shutil.copy(EXAMPLE / source, root / place)
    for place, anchor, line in REGISTRY:
        path = root / place
        text = path.read_text(encoding="utf-8")
        assert text.count(anchor) == 1, f"{place} no longer has {anchor!r}: the README's recipe is out of date"
        path.write_text(text.replace(anchor, anchor + line), encoding="utf-8")
    return root


def cli(tree: Path, *args, **extra) -> CliResult:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOCA_", "SIGNAL_UPLOADER_", "ENGAGE_"))}
    env.update(PYTHONPATH=str(tree), INVOCA_API_TOKEN=TOKEN, **extra)
    done = subprocess.run(
        [sys.executable, "-m", "uploader", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tree,
        timeout=120,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def server(tree, tmp_path_factory):
    """The copy's emulator (with the example's module), in its own process."""
    ready = tmp_path_factory.mktemp("emulator") / "url"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    process = subprocess.Popen(
        [sys.executable, "-m", "uploader", "emulator", "--port", "0", "--token", TOKEN, "--ready-file", ready],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(200):
        if ready.exists() and ready.read_text().strip():
            break
        time.sleep(0.05)
    else:
        process.kill()
        pytest.fail(f"the copy's emulator did not start: {process.stderr.read()}")
    yield ready.read_text().strip()
    process.terminate()
    process.wait(timeout=10)


def state(base_url: str) -> dict:
    with urllib.request.urlopen(base_url.split("/api/")[0] + "/_emulator/signals", timeout=10) as answer:
        return json.load(answer)


def read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_copy_runs_the_new_target_not_the_installed_package(tree):
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import uploader, uploader.targets as t; print(uploader.__file__); print(sorted(t.TARGETS))",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tree)},
        cwd=tree,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].startswith(str(tree))
    assert "signal_delete" in shown.stdout


def test_a_delete_target_counts_journals_and_summarises_its_own_status(tree, server, tmp_path):
    # Signals to delete: uploaded first with the Signal API, their ids taken from its report.
    signals = write_csv(
        tmp_path / "sales.csv",
        [
            ["transaction_id", "name", "partner_unique_id", "value"],
            ["00000000-00000001", "Sale", "d-1", "true"],
            ["00000000-00000002", "Sale", "d-2", "true"],
        ],
    )
    sent = cli(tree, "upload", signals, "--base-url", server, "--no-progress")
    assert sent.code == 0, sent.stderr
    ids = [row["signal_transaction_id"] for row in read(tmp_path / "sales.results.csv")]
    assert len(ids) == 2 and all(ids)

    deletes = write_csv(tmp_path / "deletes.csv", [["signal_transaction_id"], *([i] for i in ids)])
    before = state(server)["requests"]
    done = cli(tree, "upload", deletes, "--api", "signal_delete", "--base-url", server, "--no-progress")
    assert_no_traceback(done)
    # Every row got the target's own success: the run is a success (exit 0), the summary names it.
    assert done.code == 0, done.output
    assert [(r["status"], r["deleted_transaction_id"]) for r in read(tmp_path / "deletes.results.csv")] == [
        ("deleted", ids[0]),
        ("deleted", ids[1]),
    ]
    assert re.search(r"^  deleted +2$", done.stdout, re.M), done.stdout
    assert "match rate" not in done.stdout  # a delete names its signal: there is nothing to match
    after = state(server)
    assert sorted(after["deleted"]) == sorted(ids)
    assert not {s["transaction_id"] for s in after["signals"]} & set(ids)
    assert after["requests"] - before == 2

    # The deletes were journaled: the rerun sends nothing and still exits 0.
    again = cli(tree, "upload", deletes, "--api", "signal_delete", "--base-url", server, "--no-progress")
    assert again.code == 0, again.output
    assert state(server)["requests"] == after["requests"]
    assert {r["status"] for r in read(tmp_path / "deletes.results.csv")} == {"skipped"}


def test_a_final_404_is_the_targets_own_and_never_sent_again(tree, server, tmp_path):
    missing = write_csv(tmp_path / "gone.csv", [["signal_transaction_id"], ["10000000-FFFFFFFF"]])
    first = cli(tree, "upload", missing, "--api", "signal_delete", "--base-url", server, "--no-progress")
    assert first.code == 1, first.output
    [row] = read(tmp_path / "gone.results.csv")
    # The target's words, not the calls' ("call-ended"): and no retry command is offered for it.
    assert (row["status"], row["error_class"], row["failure_kind"]) == ("failed", "SignalNotFound", "no-such-signal")
    assert "next:" not in first.output
    retried = cli(tree, "retry", tmp_path / "gone.results.csv", "--no-progress")
    assert "no such signal (deleted before?)" in retried.stderr, retried.output
    requests = state(server)["requests"]
    rerun = cli(tree, "upload", missing, "--api", "signal_delete", "--base-url", server, "--no-progress")
    assert rerun.code == 1 and state(server)["requests"] == requests  # kept: not sent again
    assert "--force" in read(tmp_path / "gone.results.csv")[0]["error"]
