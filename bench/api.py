"""Benchmark the Python API and the dlt destination beside the CLI, on the same rows, in the same run.

    python bench/api.py            # 100,000 rows; writes the API table of bench/RESULTS.md
    python bench/api.py --smoke    # tiny: checks that the script works (make test runs it)

The rows are a SQLite table of orders (each on one of 1,000 calls, each its own
signal), sent to the real emulator (no latency) in a child process:

1. ``signal-uploader upload`` of the table exported to CSV (the export not counted);
2. ``upload_rows`` of the table read with ``sqlite3`` as a list of dicts;
3. ``upload_rows`` of the table read with ``pandas.read_sql`` as a DataFrame;
4. ``upload_rows`` again under the same source: everything skipped;
5. a dlt pipeline (``sql_database`` source, ``signal_uploader`` destination), then again.

Each child's wall time (start-up and imports included), CPU time and peak RSS
are measured; the emulator's state is reset between them. Also: the fixed
cost of one ``upload_rows`` call (one row, repeated), which sets the dlt
destination's batch size.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import shutil
import sqlite3
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from run import PYTHON, generate_calls, run_child, start_emulator  # noqa: E402

MARKERS = ("<!-- api:start -->", "<!-- api:end -->")
TOKEN = "bench-token"
COLUMNS = ["transaction_id", "name", "partner_unique_id", "description", "sale_amount"]


def orders_db(path: Path, rows: int) -> Path:
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE orders (transaction_id TEXT, name TEXT, partner_unique_id INTEGER PRIMARY KEY, "
        "description TEXT, sale_amount FLOAT)"
    )
    db.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
        ((f"CALL-{i % 1000:06d}", "Sale", i, f"order {i}", (i % 500) + 0.99) for i in range(rows)),
    )
    db.commit()
    db.close()
    return path


def export_csv(db_path: Path, path: Path) -> Path:
    db = sqlite3.connect(db_path)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(db.execute(f"SELECT {', '.join(COLUMNS)} FROM orders ORDER BY partner_unique_id"))
    db.close()
    return path


# ------------------------------------------------------------------ children


def child(mode: str, db_path: str, base_url: str, state: str) -> None:
    """One measured job, in its own process; prints its outcome as JSON."""
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    from uploader import upload_rows

    options = {"source": "shop.orders", "base_url": base_url, "token": TOKEN, "state_dir": state}
    if mode in ("dicts", "rerun"):
        db = sqlite3.connect(db_path)
        db.row_factory = sqlite3.Row
        rows = (dict(r) for r in db.execute("SELECT * FROM orders ORDER BY partner_unique_id"))
        result = upload_rows(rows, **options)
        print(json.dumps(result.summary.statuses))
    elif mode == "frame":
        import pandas as pd

        db = sqlite3.connect(db_path)
        frame = pd.read_sql("SELECT * FROM orders ORDER BY partner_unique_id", db)
        result = upload_rows(frame, **options)
        print(json.dumps(result.summary.statuses))
    elif mode == "overhead":
        rows = [{"transaction_id": "CALL-000001", "name": "Sale", "partner_unique_id": "x", "sale_amount": 1}]
        upload_rows(rows, **options)  # warm: imports, the journal's first creation
        began, times = time.perf_counter(), 20
        for _ in range(times):
            upload_rows(rows, **options)
        print(json.dumps({"per_call_ms": (time.perf_counter() - began) / times * 1000}))
    elif mode == "dlt":
        import dlt
        from dlt.sources.sql_database import sql_database

        from uploader.dlt_destination import signal_uploader

        os.environ["DESTINATION__SIGNAL_UPLOADER__API_TOKEN"] = TOKEN
        os.environ["DESTINATION__SIGNAL_UPLOADER__BASE_URL"] = base_url
        pipeline = dlt.pipeline(
            "shop", destination=signal_uploader(state_dir=state), pipelines_dir=str(Path(state) / "pipelines")
        )
        info = pipeline.run(sql_database(f"sqlite:///{db_path}", table_names=["orders"]))
        db = sqlite3.connect(Path(state) / "results.sqlite")
        counts = dict(
            db.execute(
                "SELECT status, count(*) FROM orders WHERE _dlt_load_id = ? GROUP BY status", (info.loads_ids[-1],)
            )
        )
        print(json.dumps(counts))
    else:
        raise SystemExit(f"unknown mode {mode}")


# ---------------------------------------------------------------------- main


def reset(base_url: str) -> None:
    root = base_url.split("/api/")[0]
    urllib.request.urlopen(urllib.request.Request(f"{root}/_emulator/reset", data=b"", method="POST"), timeout=10)


def landed(base_url: str) -> tuple[int, int]:
    root = base_url.split("/api/")[0]
    with urllib.request.urlopen(f"{root}/_emulator/signals", timeout=30) as answer:
        state = json.load(answer)
    return len(state["signals"]), state["requests"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--rows", type=int, default=None, help="rows of the table (default 100,000)")
    parser.add_argument("--work", type=Path, default=HERE / "data")
    parser.add_argument("--child", nargs=4, metavar=("MODE", "DB", "BASE_URL", "STATE"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return 0
    rows = options.rows or (300 if options.smoke else 100_000)
    work = options.work
    work.mkdir(parents=True, exist_ok=True)
    print(f"generating a {rows:,}-row orders table in {work} ...", flush=True)
    db_path = orders_db(work / f"api_orders_{rows}.db", rows)
    csv_path = export_csv(db_path, work / f"api_orders_{rows}.csv")
    calls = generate_calls(work / "api_calls.csv", 1000)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOCA_", "SIGNAL_UPLOADER_", "DESTINATION__"))}
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    emulator, base_url = start_emulator(calls, 0, work)
    measured = []
    try:

        def measure(label: str, args: list, state: Path, *, fresh: bool = True) -> None:
            if fresh:
                shutil.rmtree(state, ignore_errors=True)
                reset(base_url)
            before = landed(base_url)[1]
            print(f"{label} ...", flush=True)
            outcome = run_child(args, env={**env, "INVOCA_API_TOKEN": TOKEN})
            if outcome["code"] != 0:
                raise SystemExit(f"{label} failed:\n{outcome['stdout']}\n{outcome['stderr'][-3000:]}")
            signals, requests = landed(base_url)
            said = outcome["stdout"].strip().splitlines()[-1]
            measured.append((label, outcome, signals, requests - before, said))

        for_child = [PYTHON, str(HERE / "api.py"), "--child"]
        measure(
            "`signal-uploader upload` of the table exported to CSV",
            [
                PYTHON,
                "-m",
                "uploader",
                "upload",
                csv_path,
                "--base-url",
                base_url,
                "--no-progress",
                "--state-dir",
                work / "api_state_cli",
                "--report",
                work / "api_cli_report.csv",
            ],
            work / "api_state_cli",
        )
        measure(
            "`upload_rows`, a generator of dicts from sqlite3",
            for_child + ["dicts", db_path, base_url, work / "api_state_dicts"],
            work / "api_state_dicts",
        )
        measure(
            "`upload_rows` of the same again: all skipped",
            for_child + ["rerun", db_path, base_url, work / "api_state_dicts"],
            work / "api_state_dicts",
            fresh=False,
        )
        measure(
            "`upload_rows`, a DataFrame from `pandas.read_sql`",
            for_child + ["frame", db_path, base_url, work / "api_state_frame"],
            work / "api_state_frame",
        )
        measure(
            "dlt pipeline: `sql_database` to `signal_uploader`",
            for_child + ["dlt", db_path, base_url, work / "api_state_dlt"],
            work / "api_state_dlt",
        )
        measure(
            "the dlt pipeline again: all skipped",
            for_child + ["dlt", db_path, base_url, work / "api_state_dlt"],
            work / "api_state_dlt",
            fresh=False,
        )
        overhead = run_child(
            for_child + ["overhead", db_path, base_url, work / "api_state_overhead"],
            env={**env, "INVOCA_API_TOKEN": TOKEN},
        )
        per_call = json.loads(overhead["stdout"].strip().splitlines()[-1])["per_call_ms"]
    finally:
        emulator.terminate()
        emulator.wait(10)

    when = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        f"Python API and dlt destination, {rows:,} rows of a SQLite table, emulator without latency, "
        f"{os.cpu_count()} cores; {when}.\n",
        "| job | wall | CPU | peak RSS | rows/s | signals on the emulator | requests | outcome |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, outcome, signals, requests, said in measured:
        lines.append(
            f"| {label} | {outcome['wall']:.1f} s | {outcome['cpu']:.1f} s | {outcome['rss_mb']:.0f} MB | "
            f"{rows / outcome['wall']:,.0f} | {signals:,} | {requests:,} | {said if len(said) < 60 else ''} |"
        )
    dicts = next(outcome for label, outcome, *_ in measured if "generator" in label)
    batch_ms = 5000 / (rows / dicts["wall"]) * 1000
    lines.append(
        f"\nOne `upload_rows` call of one row, repeated 20 times: {per_call:.0f} ms each "
        "(validation, the journal, the lock, a temporary file and the report for any size). The dlt "
        f"destination sends batches of 5,000 rows, about {batch_ms / 1000:.1f} s each at the generator's "
        f"rate above, so that fixed cost is {per_call / batch_ms:.1%} of a batch.\n"
    )
    table = "\n".join(lines) + "\n"
    print(table)
    if not options.smoke:
        results = HERE / "RESULTS.md"
        text = results.read_text(encoding="utf-8")
        if MARKERS[0] not in text:
            text += (
                f"\n## The Python API and the dlt destination (issue 16)\n\n`python bench/api.py`\n\n"
                f"{MARKERS[0]}\n{MARKERS[1]}\n"
            )
        before, rest = text.split(MARKERS[0], 1)
        _, after = rest.split(MARKERS[1], 1)
        results.write_text(f"{before}{MARKERS[0]}\n{table}{MARKERS[1]}{after}", encoding="utf-8")
        print(f"written to {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
