"""Benchmark: the journal in PostgreSQL beside the journal in SQLite, in the same run.

    python bench/journal.py            # 6,000 uploads at 100 ms; a rerun of 100,000 confirmed rows
    python bench/journal.py --smoke    # tiny sizes (make test): the script cannot rot

Issue 31's bounds:

1. ``upload`` of 6,000 rows to an API answering in 100 ms at ``--concurrency
   32`` reaches at least 90% of the concurrency limit (rows x latency /
   concurrency) with ``--journal postgresql://…``, beside the same upload
   with the SQLite journal.
2. A rerun of 100,000 rows that the journal holds as confirmed (all skipped,
   nothing sent) costs at most twice the SQLite journal's.

PostgreSQL is a real server: a throwaway cluster of Debian's package started
for the run (``tests/pg_server.py``, as the tests start it), on loopback, with
its default durability (``fsync`` on). The upload is timed twice per backend:
the command as a whole (start-up, reading and checking included), and its
sending phase alone, from the library's events (the first request to the last
answer), which is what a journal written per batch of answers could slow. The
100,000 confirmed rows are put in
each journal as a real upload puts them, without the network (as
``bench/plan.py`` does), then the measured rerun is the real command. Each
measured command is a child process: wall time with start-up, CPU, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

import pg_server  # noqa: E402
from plan import SEED  # noqa: E402
from run import (  # noqa: E402
    PYTHON,
    TZ,
    generate_calls,
    generate_signals,
    generate_uploads,
    run_child,
    start_emulator,
    update_results,
)

# The sending phase, timed from the library's own events: from the first answer less one latency (the
# first request) to the last answer (argv: file, base URL, state folder, latency ms, concurrency, journal
# URL or ""). Prints JSON.
PHASE = """
import csv, json, sys, time
from uploader import upload_rows
from uploader.events import RowAnswered
path, base_url, state, latency, concurrency, journal = sys.argv[1:7]
with open(path, newline="", encoding="utf-8") as handle:
    rows = list(csv.DictReader(handle))
answers = []
started = time.perf_counter()
result = upload_rows(rows, source="phase.csv", base_url=base_url, token="bench-token", state_dir=state,
                     concurrency=int(concurrency), journal=journal or None,
                     on_event=lambda e: answers.append(time.perf_counter()) if isinstance(e, RowAnswered) else None)
sending = answers[-1] - answers[0] + int(latency) / 1000
print(json.dumps({"sending": sending, "call": time.perf_counter() - started, "statuses": result.summary.statuses}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check that the script works")
    parser.add_argument("--work", type=Path, default=HERE / "data", help="where inputs and reports go")
    options = parser.parse_args()
    uploads_n, rerun_n = (300, 2_000) if options.smoke else (6_000, 100_000)
    latency, concurrency = (10, 8) if options.smoke else (100, 32)
    results_path = None if options.smoke else HERE / "RESULTS.md"
    work = options.work / "journal"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    server = pg_server.PostgresServer(durable=True)
    emulator = None
    try:
        base = dict(os.environ, INVOCA_API_TOKEN="bench-token", PGPASSWORD=pg_server.PASSWORD)
        base = {k: v for k, v in base.items() if not k.startswith("SIGNAL_UPLOADER_")}
        backends = {"SQLite": None, "PostgreSQL": server.database()}
        calls = generate_calls(work / "calls.csv", 1000)
        uploads = generate_uploads(work / f"uploads_{uploads_n}.csv", uploads_n)
        emulator, base_url = start_emulator(calls, latency, work)
        up = {}
        for name, url in backends.items():
            print(f"uploading {uploads_n:,} rows, {latency} ms API, --concurrency {concurrency}, {name} journal ...")
            flags = ["--journal", url] if url else []
            up[name] = run_child(
                [PYTHON, "-m", "uploader", "upload", uploads, "--base-url", base_url, "--no-progress"]
                + ["--concurrency", concurrency, "--state-dir", work / f"state-up-{name}", "--report"]
                + [work / f"up-{name}.csv", *flags],
                env=base,
            )
            assert up[name]["code"] == 0, up[name]["stdout"] + up[name]["stderr"]
            print(f"  {up[name]['wall']:.1f} s", flush=True)
        limit = uploads_n * latency / 1000 / concurrency
        # The sending phase alone (the first request to the last answer, by the library's events): what the
        # journal, written as each batch of answers arrives, could slow.
        phase = {}
        for name, url in backends.items():
            print(f"  the sending phase, {name} journal (Python API) ...", flush=True)
            child = run_child(
                [PYTHON, "-c", PHASE, uploads, base_url, work / f"state-phase-{name}", latency, concurrency, url or ""],
                env=base,
            )
            assert child["code"] == 0, child["stderr"]
            phase[name] = json.loads(child["stdout"].strip().splitlines()[-1])
            assert sum(phase[name]["statuses"].values()) == uploads_n, phase[name]

        signals = work / f"signals_{rerun_n}.csv"
        generate_signals(signals, rerun_n)
        rerun = {}
        for name, url in backends.items():
            state = work / f"state-rerun-{name}"
            print(f"confirming {rerun_n:,} rows in the {name} journal ...", flush=True)
            seed = run_child([PYTHON, "-c", SEED, signals, state, TZ, base_url, url or ""], env=base)
            assert seed["code"] == 0, seed["stderr"]
            confirmed = int(seed["stdout"].strip().splitlines()[-1])
            flags = ["--journal", url] if url else []
            before = emulator_requests(base_url)
            rerun[name] = run_child(
                [PYTHON, "-m", "uploader", "upload", signals, "--timezone", TZ, "--base-url", base_url]
                + ["--no-progress", "--state-dir", state, "--report", work / f"rerun-{name}.csv", *flags],
                env=base,
            )
            assert rerun[name]["code"] in (0, 1), rerun[name]["stderr"]
            assert emulator_requests(base_url) == before, "a rerun of confirmed rows sent something"
            rerun[name]["confirmed"] = confirmed
            print(f"  rerun: {rerun[name]['wall']:.1f} s (every one of {confirmed:,} skipped)", flush=True)
    finally:
        if emulator is not None:
            emulator.terminate()
            emulator.wait()
        server.remove()

    stamp = time.strftime("%Y-%m-%d %H:%M")
    ratio = rerun["PostgreSQL"]["wall"] / rerun["SQLite"]["wall"]
    lines = [
        f"PostgreSQL 15 on loopback (a throwaway cluster, fsync on), SQLite in the state folder; {stamp}.\n",
        "| measurement | journal | rows | wall s | CPU s | peak RSS MB | result |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name in backends:
        lines.append(
            f"| upload (the command), {latency} ms API, concurrency {concurrency} | {name} | {uploads_n:,} "
            f"| {up[name]['wall']:.1f} | {up[name]['cpu']:.1f} | {up[name]['rss_mb']:.0f} "
            f"| {limit / up[name]['wall']:.0%} of the limit ({limit:.2f} s), start-up and checking included |"
        )
    for name in backends:
        sending = phase[name]["sending"]
        lines.append(
            f"| its sending phase (first request to last answer) | {name} | {uploads_n:,} | {sending:.1f} | | "
            f"| **{limit / sending:.0%}** of the limit |"
        )
    for name in backends:
        lines.append(
            f"| rerun, every row confirmed | {name} | {rerun[name]['confirmed']:,} | {rerun[name]['wall']:.1f} "
            f"| {rerun[name]['cpu']:.1f} | {rerun[name]['rss_mb']:.0f} | nothing sent |"
        )
    lines.append(f"| rerun, PostgreSQL ÷ SQLite (bound: at most 2) | | | **{ratio:.2f}** | | | |")
    text = "\n".join(lines) + "\n"
    print(text)
    if results_path is not None:
        update_results(results_path, text, marker="journal")
        print(f"written to {results_path}")
    return 0


def emulator_requests(base_url: str) -> int:
    import json
    import urllib.request

    with urllib.request.urlopen(base_url.split("/api/")[0] + "/_emulator/signals", timeout=10) as answer:
        return json.load(answer)["requests"]


if __name__ == "__main__":
    sys.exit(main())
