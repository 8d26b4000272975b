"""Benchmark: validate, dry-run and upload, the tree before a redesign against this one, by turns.

    python bench/turns.py                 # 1,000,000 rows, 20,000 uploads, 3 rounds; writes bench/RESULTS.md
    python bench/turns.py --smoke         # a few thousand rows, one round, this tree only (make test)
    python bench/turns.py --smoke --before HEAD   # the same, beside the tree at HEAD
    python bench/turns.py --before REV    # the tree to compare with (default: the commit before issue 26)

A redesign is allowed to move code, not to slow the job. The two trees run
the same three commands on the same inputs, on the same machine, one after
the other, in the order A B B A A B, so that a machine getting warmer or busier
weighs on both alike. Each command is a child process (wall time with
start-up, the child's own CPU time and peak RSS), whose ``PYTHONPATH`` is the
tree measured. The table gives the median of the rounds and the ratio after /
before; every single figure is printed as it comes.

- ``validate`` of the generated signals file (13 columns, the timestamp forms mixed);
- ``upload --dry-run`` of the same file: read, validate, prepare, report; nothing sent;
- ``upload`` of N rows to the emulator answering at once (a fresh emulator and a fresh
  state folder each time, so every row is sent), at ``--concurrency 32``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import (  # noqa: E402
    PYTHON,
    ROOT,
    TZ,
    generate_calls,
    generate_signals,
    generate_uploads,
    remove_worktree,
    run_child,
    start_emulator,
    update_results,
    worktree,
)

BEFORE = "afc1fdb"  # stop 34: the last commit before issue 26's redesign


def _env(tree: Path, state: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOCA_", "SIGNAL_UPLOADER_"))}
    env.update(PYTHONPATH=str(tree), INVOCA_API_TOKEN="bench-token", XDG_STATE_HOME=str(state))
    return env


def measure(tree: Path, job: str, signals: Path, uploads: Path, calls: Path, work: Path) -> dict:
    """One command of one tree; raises when it did not do the job."""
    state = work / "state"
    shutil.rmtree(state, ignore_errors=True)
    if job == "validate":
        measured = run_child(
            [
                PYTHON,
                "-m",
                "uploader",
                "validate",
                signals,
                "--timezone",
                TZ,
                "--no-progress",
                "--report",
                work / "validate.csv",
            ],
            env=_env(tree, state),
            cwd=tree,
        )
        ok = measured["code"] in (0, 1)
    elif job == "dry-run":
        measured = run_child(
            [
                PYTHON,
                "-m",
                "uploader",
                "upload",
                signals,
                "--timezone",
                TZ,
                "--no-progress",
                "--dry-run",
                "--report",
                work / "dry.csv",
            ],
            env=_env(tree, state),
            cwd=tree,
        )
        ok = measured["code"] in (0, 1)
    else:
        emulator, base_url = start_emulator(calls, 0, work)
        try:
            measured = run_child(
                [
                    PYTHON,
                    "-m",
                    "uploader",
                    "upload",
                    uploads,
                    "--base-url",
                    base_url,
                    "--no-progress",
                    "--concurrency",
                    32,
                    "--report",
                    work / "upload.csv",
                ],
                env=_env(tree, state),
                cwd=tree,
            )
        finally:
            emulator.terminate()
            emulator.wait()
        ok = measured["code"] == 0
    if not ok:
        raise RuntimeError(f"{job} in {tree} failed ({measured['code']}): {measured['stderr'][-2000:]}")
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, one round, this tree only")
    parser.add_argument(
        "--before", default=None, help=f"the tree to compare with (default {BEFORE}; none with --smoke)"
    )
    parser.add_argument("--rows", type=int, default=None, help="rows to validate and dry-run (default 1,000,000)")
    parser.add_argument("--upload-rows", type=int, default=None, help="rows to upload (default 20,000)")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of turns (default 3)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/signal-uploader-bench-turns"))
    parser.add_argument("--results", type=Path, default=None, help="write the table here (default bench/RESULTS.md)")
    options = parser.parse_args()
    rows = options.rows or (2_000 if options.smoke else 1_000_000)
    upload_n = options.upload_rows or (100 if options.smoke else 20_000)
    rounds = 1 if options.smoke else options.rounds
    work = options.work
    work.mkdir(parents=True, exist_ok=True)
    print(f"generating {rows:,} signal rows and {upload_n:,} upload rows in {work} ...", flush=True)
    signals = generate_signals(work / f"signals_{rows}.csv", rows)
    calls = generate_calls(work / "calls.csv", 1000)
    uploads = generate_uploads(work / f"uploads_{upload_n}.csv", upload_n)

    before = options.before or (None if options.smoke else BEFORE)
    trees = {"after": ROOT} if before is None else {"before": worktree(before, work), "after": ROOT}

    jobs = ("validate", "dry-run", "upload")
    seen: dict[tuple[str, str], list[dict]] = {}
    order = list(trees)
    try:
        for number in range(rounds):
            # A B, then B A: each tree goes first as often as the other.
            for label in order if number % 2 == 0 else order[::-1]:
                for job in jobs:
                    measured = measure(trees[label], job, signals, uploads, calls, work)
                    seen.setdefault((job, label), []).append(measured)
                    print(
                        f"round {number + 1} {label:6} {job:8} wall {measured['wall']:6.2f} s  "
                        f"cpu {measured['cpu']:6.2f} s  rss {measured['rss_mb']:5.0f} MB",
                        flush=True,
                    )
    finally:
        if "before" in trees:
            remove_worktree(trees["before"])

    def median(job: str, label: str, key: str) -> float:
        return statistics.median(m[key] for m in seen[(job, label)])

    sizes = {"validate": rows, "dry-run": rows, "upload": upload_n}
    names = {
        "validate": "validate",
        "dry-run": "upload --dry-run",
        "upload": "upload, emulator at once, concurrency 32",
    }
    lines = [
        "| measurement | rows | "
        + " | ".join(f"{label} wall s" for label in trees)
        + (
            " | after / before | before CPU s | after CPU s | before RSS MB | after RSS MB |"
            if len(trees) > 1
            else " | CPU s | RSS MB |"
        ),
        "| --- | ---: | "
        + " | ".join("---:" for _ in trees)
        + (" | ---: | ---: | ---: | ---: | ---: |" if len(trees) > 1 else " | ---: | ---: |"),
    ]
    for job in jobs:
        walls = [median(job, label, "wall") for label in trees]
        cells = [f"{names[job]}", f"{sizes[job]:,}", *[f"{w:.2f}" for w in walls]]
        if len(trees) > 1:
            cells += [
                f"{walls[1] / walls[0]:.2f}x",
                *[f"{median(job, label, 'cpu'):.2f}" for label in trees],
                *[f"{median(job, label, 'rss_mb'):.0f}" for label in trees],
            ]
        else:
            cells += [f"{median(job, 'after', 'cpu'):.2f}", f"{median(job, 'after', 'rss_mb'):.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    compared = (
        f"the tree at {before} (before) and this tree (after), {rounds} round(s) in the order A B B A …"
        if len(trees) > 1
        else "this tree only (smoke)"
    )
    header = (
        f"By turns: {compared}, medians; Python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M')}."
    )
    text = header + "\n\n" + "\n".join(lines) + "\n"
    print()
    print(text)
    results = options.results or (None if options.smoke else HERE / "RESULTS.md")
    if results is not None:
        update_results(results, text, marker="turns")
        print(f"written to {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
