"""Benchmark: a dry run of a file already confirmed, with the plan, against ``validate`` of the same file.

    python bench/plan.py            # 1,000,000 rows; writes the "plan" table of bench/RESULTS.md
    python bench/plan.py --smoke    # a few thousand rows (make test): the script cannot rot

Issue 30's bound: ``upload --dry-run`` of 1,000,000 rows that an earlier run
confirmed, asking the journal about every valid row (new, correction,
unchanged, unknown), costs under 2x ``validate`` of the same file, in the same
run on the same machine.

The journal is filled the way a real upload fills it, without the network:
each chunk is read, checked, planned and described by the library as an
upload does (:meth:`Journal.sift`, :meth:`Journal.describe`), then every row to send is
recorded as the API's 201 (:meth:`Journal.record_many`). A million HTTP
requests would measure the emulator, not the plan. Each measured command is a
child process (wall time with start-up, its CPU time and peak RSS).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import PYTHON, TZ, generate_signals, run_child, update_results  # noqa: E402

BASE_URL = "https://invoca.net/api/2020-10-01"

# Fills a source's journal as an upload of every valid row would (argv: file, state folder, timezone, base URL,
# and a PostgreSQL URL or ""); prints how many rows it confirmed. bench/journal.py fills both backends with it.
SEED = """
import sys
from pathlib import Path
from uploader.config import resolve
from uploader.journal import Occurrences
from uploader.outcome import Outcome
from uploader.pipeline.stream import check_table
from uploader.pipeline.upload import source_journal
from uploader.read import open_table
from uploader.validate import _PhoneBook

path, state, journal_url = Path(sys.argv[1]), Path(sys.argv[2]), (sys.argv[5:] or [""])[0] or None
settings = resolve({"timezone": sys.argv[3], "base_url": sys.argv[4], "state_dir": str(state), "journal": journal_url})
target = settings.target
seen, fingerprints, phonebook, checks, confirmed = Occurrences(), Occurrences(), _PhoneBook("US"), target.row_checks(), 0
with source_journal(settings, path.name) as journal:
    reader = open_table(path, fields=target.fields)
    for chunk in reader.chunks(settings.chunk_rows):
        validation = check_table(chunk, settings, phonebook=phonebook, checks=checks)
        rows = validation.rows[validation.valid.to_numpy()]
        work, settled, ids = journal.sift(rows, target, seen=seen, fingerprints_seen=fingerprints, deferred={})
        journal.describe(work, settled, ids, target)
        answers = [(ids[item.row], Outcome(item.row, "created", 201, signal_transaction_id=f"S-{item.row}"))
                   for lane in work for item in lane]
        journal.record_many(answers)
        confirmed += len(answers)
print(confirmed)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check that the script works")
    parser.add_argument("--rows", type=int, default=None, help="rows (default 1,000,000)")
    parser.add_argument("--work", type=Path, default=HERE / "data", help="where inputs and reports go")
    options = parser.parse_args()
    rows = options.rows or (3_000 if options.smoke else 1_000_000)
    results_path = None if options.smoke else HERE / "RESULTS.md"
    work = options.work
    work.mkdir(parents=True, exist_ok=True)
    signals = work / f"signals_{rows}.csv"
    if not signals.exists():
        print(f"generating {rows:,} signal rows ...", flush=True)
        generate_signals(signals, rows)
    state = work / "plan_state"
    shutil.rmtree(state, ignore_errors=True)

    print("filling the journal as an upload of every valid row would ...", flush=True)
    started = time.perf_counter()
    seed = run_child([PYTHON, "-c", SEED, signals, state, TZ, BASE_URL])
    assert seed["code"] == 0, seed["stderr"]
    confirmed = int(seed["stdout"].strip().splitlines()[-1])
    print(f"  {confirmed:,} rows confirmed in {time.perf_counter() - started:.1f} s", flush=True)
    journal_mb = sum(p.stat().st_size for p in (state / "journals").glob("*.sqlite*")) / 1e6

    common = ["--timezone", TZ, "--no-progress"]
    print("validate ...", flush=True)
    validate = run_child([PYTHON, "-m", "uploader", "validate", signals, *common, "--report", work / "plan_v.csv"])
    assert validate["code"] in (0, 1), validate["stderr"]
    print(f"  {validate['wall']:.1f} s", flush=True)
    print("upload --dry-run, planned against the journal ...", flush=True)
    summary = work / "plan_summary.json"
    dry = run_child(
        [
            PYTHON,
            "-m",
            "uploader",
            "upload",
            signals,
            *common,
            "--dry-run",
            "--base-url",
            BASE_URL,
            "--state-dir",
            state,
            "--report",
            work / "plan_dry.csv",
            "--summary-json",
            summary,
        ]
    )
    assert dry["code"] in (0, 1), dry["stderr"]
    plan = json.loads(summary.read_text(encoding="utf-8"))["plan"]
    assert plan == {"unchanged": confirmed}, plan  # every valid row was confirmed with this content
    print(f"  {dry['wall']:.1f} s: {plan}", flush=True)

    ratio = dry["wall"] / validate["wall"]
    stamp = time.strftime("%Y-%m-%d %H:%M")
    text = (
        f"{rows:,} rows ({signals.stat().st_size / 1e6:.0f} MB of CSV), {confirmed:,} of them valid and confirmed "
        f"in the journal ({journal_mb:,.0f} MB); {stamp}.\n\n"
        "| measurement | wall s | peak RSS MB | CPU s | plan |\n| --- | ---: | ---: | ---: | --- |\n"
        f"| validate | {validate['wall']:.1f} | {validate['rss_mb']:.0f} | {validate['cpu']:.1f} | |\n"
        f"| upload --dry-run with the plan | {dry['wall']:.1f} | {dry['rss_mb']:.0f} | {dry['cpu']:.1f} "
        f"| {', '.join(f'{n:,} {p}' for p, n in plan.items())} |\n"
        f"| dry run ÷ validate (bound: under 2) | **{ratio:.2f}** | | | |\n"
    )
    print(text)
    if results_path is not None:
        update_results(results_path, text, marker="plan")
        print(f"written to {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
