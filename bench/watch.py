"""Benchmark: a watch that lasts a shift (``signal-uploader calls --watch``).

    python bench/watch.py                 # 20,000 calls over 10 hours at 300x, 100 s per watch; RESULTS.md
    python bench/watch.py --smoke         # 2,000 calls over 1 hour, a few seconds (make test)
    python bench/watch.py --before REV    # also the tree at REV (default: the commit before the change)

The emulator (a child of its own) plays the shift on its clock, sped up.
Each watch is ``calls --watch 1 --until 100s --out shift.xlsx``, as a child
process: polls done against polls asked, calls captured against the calls
the API listed in the window (from the shift's own file and the emulator's
clock), and the child's CPU. Then the current tree once more in process, as
a :class:`~uploader.run.Run`, whose ``Polled`` events give the CPU of each
poll: the first tenth of the polls against the last tenth, when the most
calls are captured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import PYTHON, ROOT, remove_worktree, run_child, update_results, worktree  # noqa: E402

BEFORE = "f937a6f"  # the last commit whose watch rewrote its whole output after every poll
CLOCK = "2026-11-24T08:00:00Z"
TOKEN = "bench-token"


def shift(path: Path, calls: int, hours: float, seed: int = 7) -> Path:
    """``calls`` calls spread over ``hours`` hours, 1 to 12 minutes each, a third with custom data."""
    rng = random.Random(seed)
    rows = []
    for number in range(calls):
        rows.append(
            {
                "transaction_id": f"S-{number:05d}",
                "calling_phone_number": f"+1415{rng.randrange(10**7):07d}",
                "destination_phone_number": "+18885550100",
                "start_s": rng.uniform(0, hours * 3600),
                "duration_s": rng.uniform(60, 720),
                "transfer_after_s": 0,
                "advertiser_id": "1234",
                "network_id": "99",
                **({"custom_data": {"Campaign": "Brand"}} if number % 3 == 0 else {}),
            }
        )
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def start_emulator(calls: Path, speed: float, work: Path):
    ready = work / "emulator.url"
    ready.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "uploader",
            "emulator",
            "--port",
            "0",
            "--live-calls",
            calls,
            "--clock",
            CLOCK,
            "--clock-speed",
            str(speed),
            "--token",
            TOKEN,
            "--ready-file",
            ready,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        if ready.exists() and ready.read_text().strip():
            return process, ready.read_text().strip()
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the emulator did not start")


def clock(base_url: str) -> float:
    with urllib.request.urlopen(base_url.split("/api/")[0] + "/_emulator/clock", timeout=10) as answer:
        return json.load(answer)["now"]


def listed_between(calls: list[dict], origin: float, start: float, end: float) -> int:
    """How many calls the API listed at some moment of the clock's [start, end]."""
    return sum(
        1
        for c in calls
        if origin + c["start_s"] + c["transfer_after_s"] <= end and origin + c["start_s"] + c["duration_s"] > start
    )


def watch_child(tree: Path, base_url: str, seconds: float, out: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOCA_", "SIGNAL_UPLOADER_"))}
    env["INVOCA_API_TOKEN"] = TOKEN
    env["PYTHONPATH"] = str(tree)  # the tree measured, before the installed one
    measured = run_child(
        [
            PYTHON,
            "-m",
            "uploader",
            "calls",
            "--base-url",
            base_url,
            "--organization-type",
            "advertiser",
            "--organization-id",
            "1234",
            "--watch",
            "1",
            "--until",
            f"{seconds:g}s",
            "--out",
            out,
        ],
        env=env,
        cwd=tree,
    )
    found = re.search(r"captured (\d+) call\(s\) in (\d+) poll\(s\)", measured["stderr"])
    if measured["code"] != 0 or found is None:
        raise RuntimeError(f"the watch in {tree} failed: {measured['stderr'][-2000:]}")
    measured["captured"], measured["polls"] = int(found.group(1)), int(found.group(2))
    return measured


def watch_in_process(base_url: str, seconds: float, out: Path) -> dict:
    from uploader.config import resolve
    from uploader.events import Polled
    from uploader.pipeline.calls import CallsQuery
    from uploader.run import Run
    from uploader.secret import Secret

    settings = replace(
        resolve({"base_url": base_url, "organization_type": "advertiser", "organization_id": "1234"}),
        token=Secret(TOKEN),
    )
    marks: list[tuple[float, int]] = []
    run = Run(None, settings, job="calls", query=CallsQuery(every=1.0, until=time.time() + seconds, out=out))
    run.subscribe(lambda e: marks.append((time.process_time(), e.captured)) if isinstance(e, Polled) else None)
    started = time.process_time()
    result = run.run()
    costs = [(now - before) * 1000 for (before, _), (now, _) in zip([(started, 0), *marks], marks, strict=False)]
    tenth = max(len(costs) // 10, 1)
    return {
        "polls": result.polls,
        "late": result.late_polls,
        "writes": result.writes,
        "first_ms": statistics.median(costs[:tenth]),
        "last_ms": statistics.median(costs[-tenth:]),
        "first_captured": marks[tenth - 1][1],
        "last_captured": marks[-1][1],
        "captured": len(result.rows),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes: check that the script works")
    parser.add_argument("--before", default=None, help=f"also measure the tree at this commit (default {BEFORE})")
    parser.add_argument("--no-before", action="store_true", help="measure the current tree only")
    parser.add_argument("--work", type=Path, default=None, help="folder for the inputs and outputs")
    parser.add_argument("--results", type=Path, default=None, help="write the table here (default bench/RESULTS.md)")
    options = parser.parse_args()
    calls_n, hours, speed, seconds = (2_000, 1.0, 600.0, 5.0) if options.smoke else (20_000, 10.0, 300.0, 100.0)
    work = options.work or Path("/tmp/signal-uploader-bench-watch")
    work.mkdir(parents=True, exist_ok=True)
    calls_file = shift(work / "shift.json", calls_n, hours)
    calls = json.loads(calls_file.read_text(encoding="utf-8"))

    trees = [("this tree", ROOT)]
    if not options.smoke and not options.no_before:
        rev = options.before or BEFORE
        trees.insert(0, (f"before ({rev})", worktree(rev, work)))

    lines = []
    first = dt.datetime.fromisoformat(CLOCK.replace("Z", "+00:00")).timestamp()
    for label, tree in trees:
        emulator, url = start_emulator(calls_file, speed, work)
        try:
            start = clock(url)
            measured = watch_child(tree, url, seconds, work / f"shift-{len(lines)}.xlsx")
            end = clock(url)
        finally:
            emulator.kill()
            emulator.wait()
        listed = listed_between(calls, first, start, end)
        lines.append(
            f"| `calls --watch 1 --out shift.xlsx`, {label} | {seconds:g} | {measured['polls']} | "
            f"{measured['captured']:,} of {listed:,} | {measured['cpu']:.1f} | "
            f"{measured['cpu'] / measured['wall'] * 100:.0f}% | {measured['rss_mb']:.0f} |"
        )
        print(lines[-1], flush=True)

    emulator, url = start_emulator(calls_file, speed, work)
    try:
        inside = watch_in_process(url, seconds, work / "shift-run.xlsx")
    finally:
        emulator.kill()
        emulator.wait()
    detail = (
        f"In process (this tree, as a `Run`): {inside['polls']} polls, {inside['late']} late, the workbook "
        f"written {inside['writes']} time(s); CPU per poll (median) {inside['first_ms']:.1f} ms over the "
        f"first tenth of the polls ({inside['first_captured']:,} calls captured by then) and "
        f"{inside['last_ms']:.1f} ms over the last tenth ({inside['last_captured']:,} captured)."
    )
    print(detail)
    table = (
        f"Watch: {calls_n:,} calls over {hours:g} h played at {speed:g}x; Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}.\n\n"
        "| measurement | s | polls | calls captured of listed | CPU s | CPU % | peak RSS MB |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n" + "\n".join(lines) + "\n\n" + detail + "\n"
    )
    results = options.results or (None if options.smoke else HERE / "RESULTS.md")
    if results is not None:
        update_results(results, table, marker="watch")
    if not options.smoke and len(trees) > 1:
        remove_worktree(trees[0][1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
