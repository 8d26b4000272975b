"""The benchmark script still runs (tiny sizes; no timing is asserted here)."""

import subprocess
import sys

from conftest import ROOT


def test_bench_script_smoke_run(tmp_path):
    process = subprocess.run(
        [sys.executable, "bench/run.py", "--smoke", "--work", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert "| validate, signal-uploader | 3,000 |" in process.stdout
    assert "| upload, 10 ms API, concurrency 32 | 200 |" in process.stdout
    assert (tmp_path / "uploader_report.csv").exists()


def test_web_bench_script_smoke_run(tmp_path):
    process = subprocess.run(
        [sys.executable, "bench/web.py", "--smoke", "--work", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert "| preview: click to counts + first page of invalid rows on screen |" in process.stdout
    assert "The upload is finished. | Rows by outcome: created 500" in process.stdout


def test_api_bench_script_smoke_run(tmp_path):
    process = subprocess.run(
        [sys.executable, "bench/api.py", "--smoke", "--work", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert "| `upload_rows`, a generator of dicts from sqlite3 |" in process.stdout
    assert '| {"created": 300} |' in process.stdout and '| {"skipped": 300} |' in process.stdout


def test_watch_bench_script_smoke_run(tmp_path):
    process = subprocess.run(
        [sys.executable, "bench/watch.py", "--smoke", "--work", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert "| `calls --watch 1 --out shift.xlsx`, this tree | 5 |" in process.stdout
    assert "In process (this tree, as a `Run`): " in process.stdout


def test_turns_bench_script_smoke_run(tmp_path):
    """The by-turns bench runs a checked-out tree beside this one (here the same commit, HEAD)."""
    process = subprocess.run(
        [sys.executable, "bench/turns.py", "--smoke", "--before", "HEAD", "--work", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert "| validate | 2,000 |" in process.stdout and "| upload --dry-run | 2,000 |" in process.stdout
    assert "| upload, emulator at once, concurrency 32 | 100 |" in process.stdout
    assert "round 1 before upload" in process.stdout and "round 1 after  upload" in process.stdout
    assert not (tmp_path / "tree-HEAD").exists()  # the checkout is removed afterwards


def test_plan_bench_script_smoke_run(tmp_path):
    process = subprocess.run(
        [sys.executable, "bench/plan.py", "--smoke", "--work", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert "| upload --dry-run with the plan |" in process.stdout
    assert " unchanged |" in process.stdout


def test_journal_bench_script_smoke_run(tmp_path, postgres_server):
    """The journal bench starts a PostgreSQL cluster of its own (postgres_server: only where one can start)."""
    process = subprocess.run(
        [sys.executable, "bench/journal.py", "--smoke", "--work", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert "| upload (the command), 10 ms API, concurrency 8 | PostgreSQL | 300 |" in process.stdout
    assert "| its sending phase (first request to last answer) | PostgreSQL | 300 |" in process.stdout
    assert "| rerun, every row confirmed | PostgreSQL |" in process.stdout
    assert "PostgreSQL ÷ SQLite" in process.stdout
