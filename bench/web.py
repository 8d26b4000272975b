"""Benchmark the web page on a large file: preview time, and how the page behaves during a long upload.

    python bench/web.py            # 100,000 rows; writes the web table of bench/RESULTS.md
    python bench/web.py --smoke    # tiny: checks that the script works (make test runs it)

The real ``signal-uploader serve`` and the real emulator run as child
processes; Debian's chromium, driven by Playwright, is the analyst. Measured:

- preview: from the click on "check the rows" to the counts and the first page
  of invalid rows on screen (and the server's own read-and-check time),
  against ``signal-uploader validate`` of the same file in the same run
  (target: under 2x);
- a fix in bulk: removing the currency symbols of 10 % of the rows' amounts
  (10,000 cells of 100,000 rows), from the click on Apply to the new counts on
  screen, every changed row checked again (target: under 2 s);
- paging the invalid rows, and correcting one cell (the row checked again);
- during the upload: how often progress reaches the page (events are
  throttled to 4 a second), how long the page takes to answer a script call
  (its main thread's responsiveness; sampled every 100 ms), and the long
  tasks (> 50 ms) the browser counted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from run import generate_calls, generate_signals, generate_uploads  # noqa: E402

PYTHON = sys.executable
TZ = "America/Los_Angeles"
MARKERS = ("<!-- web:start -->", "<!-- web:end -->")


def start(args: list, ready: Path, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    ready.unlink(missing_ok=True)
    process = subprocess.Popen(
        [PYTHON, "-m", "uploader", *map(str, args), "--ready-file", str(ready)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    for _ in range(400):
        if ready.exists() and ready.read_text().strip():
            return process, ready.read_text().strip()
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{args[0]} did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--rows", type=int, default=None, help="rows of each file (default 100,000)")
    parser.add_argument("--work", type=Path, default=HERE / "data")
    options = parser.parse_args()
    rows = options.rows or (500 if options.smoke else 100_000)
    work = options.work
    work.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    print(f"generating {rows:,}-row files in {work} ...", flush=True)
    signals = generate_signals(work / f"web_signals_{rows}.csv", rows)
    orders = generate_uploads(work / f"web_orders_{rows}.csv", rows)  # all on 1,000 calls, each its own signal
    calls = generate_calls(work / "web_calls.csv", 1000)
    dollars = _with_dollars(signals, work / f"web_dollars_{rows}.csv")
    state = work / "web_state"
    shutil.rmtree(state, ignore_errors=True)
    shutil.rmtree(work / "web_state_cli", ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOCA_", "SIGNAL_UPLOADER_"))}
    emulator, base_url = start(
        ["emulator", "--port", "0", "--calls", calls, "--token", "bench-token"], work / "web_emulator.url"
    )
    page_server, url = start(
        ["serve", "--port", "0", "--base-url", base_url, "--state-dir", state, "--max-upload-mb", "500"],
        work / "web_page.url",
        env={**env, "INVOCA_API_TOKEN": "bench-token"},
    )
    measured: dict[str, float | int | str] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium"),
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
            )
            page = browser.new_context(timezone_id=TZ).new_page()
            page.set_default_timeout(30_000 if options.smoke else 600_000)
            page.goto(url)
            page.evaluate("""() => { window.longTasks = []; new PerformanceObserver((list) => {
                for (const e of list.getEntries()) window.longTasks.push(e.duration); }).observe({entryTypes: ['longtask']}); }""")

            # preview of the signals file (about 2 % of its rows invalid)
            page.set_input_files("#file-input", str(signals))
            page.wait_for_selector("#to-columns:not([disabled])")
            page.click("#to-columns")
            page.wait_for_selector("#columns-body tr")
            began = time.perf_counter()
            page.click("#to-preview")
            page.wait_for_selector("#invalid-body tr[id^=row-]")
            measured["preview_s"] = time.perf_counter() - began
            measured["check_s"] = float(page.inner_text("#preview-busy").split("Checked in ")[1].split(" s")[0])
            counts = page.inner_text("#counts").replace(",", "").split()
            measured["invalid"] = int(counts[counts.index("invalid") - 1])
            measured["page_s"] = float("nan")
            if page.is_enabled("#next-page"):  # a small file's invalid rows fit on one page
                began = time.perf_counter()
                page.click("#next-page")
                page.wait_for_selector("#page-info:has-text('Page 2 of')")
                measured["page_s"] = time.perf_counter() - began
            first = page.locator("#invalid-body input").first
            row = first.get_attribute("data-row")
            began = time.perf_counter()
            with page.expect_response(lambda answer: answer.url.endswith("/fix")) as answer:
                first.fill("0")
                first.press("Enter")
            answer.value.finished()
            page.wait_for_function("(row) => document.getElementById('row-' + row) !== null", arg=row)
            measured["fix_s"] = time.perf_counter() - began

            # a fix in bulk: "$1,234.00" in one row of ten, removed in one step and every row checked again
            page.set_input_files("#file-input", str(dollars))
            page.wait_for_selector("#to-columns:not([disabled])")
            page.click("#to-columns")
            page.wait_for_selector("#columns-body tr")
            page.click("#to-preview")
            page.wait_for_selector("#preview-busy:has-text('Checked in')")
            before = page.inner_text("#counts .bad")
            page.select_option("#bulk-column", "sale_amount")
            page.select_option("#bulk-kind", "currency")
            page.click("#bulk-check")
            page.wait_for_selector("#bulk-apply:not([disabled])")
            measured["bulk_cells"] = int(
                page.inner_text("#bulk-result").split("changes ")[1].split(" ")[0].replace(",", "")
            )
            began = time.perf_counter()
            page.click("#bulk-apply")
            page.wait_for_function(
                "(before) => document.querySelector('#counts .bad').textContent !== before", arg=before
            )
            measured["bulk_s"] = time.perf_counter() - began
            measured["bulk_counts"] = f"{before} → {page.inner_text('#counts .bad')}"

            # a 100,000-row upload that all lands, watched
            page.set_input_files("#file-input", str(orders))
            page.wait_for_selector("#to-columns:not([disabled])")
            page.click("#to-columns")
            page.wait_for_selector("#columns-body tr")
            page.click("#to-preview")
            page.wait_for_selector("#start-upload:not([disabled])")
            page.evaluate("""() => { window.updates = 0; new MutationObserver(() => window.updates++)
                .observe(document.getElementById('progress-text'), {childList: true, characterData: true, subtree: true});
                window.longTasks = []; }""")
            began = time.perf_counter()
            page.click("#start-upload")
            lags = []
            while not page.is_visible("#step-report"):
                asked = time.perf_counter()
                page.evaluate("() => performance.now()")
                lags.append((time.perf_counter() - asked) * 1000)
                time.sleep(0.1)
            measured["upload_s"] = time.perf_counter() - began
            measured["updates"] = page.evaluate("window.updates")
            long_tasks = page.evaluate("window.longTasks")
            measured["long_tasks"] = len(long_tasks)
            measured["longest_task_ms"] = max(long_tasks, default=0)
            measured["lag_p50_ms"] = statistics.median(lags)
            measured["lag_p95_ms"] = sorted(lags)[int(len(lags) * 0.95) - 1] if len(lags) > 1 else lags[0]
            measured["lag_max_ms"] = max(lags)
            measured["samples"] = len(lags)
            measured["headline"] = page.inner_text("#report-headline")
            measured["chart"] = page.inner_text("#chart-caption")
            browser.close()
        # The preview's yardstick: validate of the same file, in the same run.
        began = time.perf_counter()
        subprocess.run(
            [PYTHON, "-m", "uploader", "validate", signals, "--timezone", TZ, "--no-progress"],
            cwd=ROOT,
            env=env,
            capture_output=True,
        )
        measured["validate_s"] = time.perf_counter() - began
        # The same file through the command line, to the same emulator, in the same run: the page's cost.
        began = time.perf_counter()
        cli = subprocess.run(
            [
                PYTHON,
                "-m",
                "uploader",
                "upload",
                orders,
                "--base-url",
                base_url,
                "--state-dir",
                work / "web_state_cli",
                "--no-progress",
                "--report",
                work / "web_cli_report.csv",
            ],
            cwd=ROOT,
            env={**env, "INVOCA_API_TOKEN": "bench-token"},
            capture_output=True,
            text=True,
        )
        measured["cli_s"] = time.perf_counter() - began
        measured["cli"] = cli.stdout.strip().splitlines()[1] if cli.returncode == 0 else cli.stderr
    finally:
        page_server.terminate()
        emulator.terminate()
        page_server.wait(10)
        emulator.wait(10)

    when = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    table = (
        f"Web page, {rows:,} rows, Debian chromium {_chromium_version()} headless; {when}.\n\n"
        "| measurement | value |\n| --- | ---: |\n"
        f"| preview: click to counts + first page of invalid rows on screen | {measured['preview_s']:.2f} s |\n"
        f"| of which the server read and checked the file | {measured['check_s']:.2f} s |\n"
        f"| `signal-uploader validate` of the same file, same run | {measured['validate_s']:.2f} s |\n"
        f"| preview ÷ validate (target: under 2) | {measured['preview_s'] / measured['validate_s']:.2f} |\n"
        f"| invalid rows found (paged, 25 a page) | {measured['invalid']:,} |\n"
        f"| next page of invalid rows | {measured['page_s'] * 1000:.0f} ms |\n"
        f"| correct a cell, row checked again | {measured['fix_s'] * 1000:.0f} ms |\n"
        f"| fix in bulk: currency symbols off {measured['bulk_cells']:,} cells, click to new counts "
        f"({measured['bulk_counts']}; target: under 2 s) | {measured['bulk_s']:.2f} s |\n"
        f"| upload of {rows:,} rows (emulator, no latency), click to report | {measured['upload_s']:.1f} s |\n"
        f"| the same upload with the command line, same emulator, same run | {measured['cli_s']:.1f} s |\n"
        f"| progress updates the page received | {measured['updates']:,} "
        f"({measured['updates'] / max(measured['upload_s'], 1e-9):.1f}/s) |\n"
        f"| page's answer to a script call during the upload: median / p95 / max "
        f"({measured['samples']} samples) | {measured['lag_p50_ms']:.1f} / {measured['lag_p95_ms']:.1f} / "
        f"{measured['lag_max_ms']:.1f} ms |\n"
        f"| long tasks (> 50 ms) on the page during the upload | {measured['long_tasks']} "
        f"(longest {measured['longest_task_ms']:.0f} ms) |\n"
    )
    print(table)
    print(measured["headline"], "|", measured["chart"])
    print("command line:", measured["cli"])
    if not options.smoke:
        results = HERE / "RESULTS.md"
        text = results.read_text(encoding="utf-8")
        if MARKERS[0] not in text:
            text += f"\n## The web page (issue 15)\n\n`python bench/web.py`\n\n{MARKERS[0]}\n{MARKERS[1]}\n"
        before, rest = text.split(MARKERS[0], 1)
        _, after = rest.split(MARKERS[1], 1)
        results.write_text(f"{before}{MARKERS[0]}\n{table}{MARKERS[1]}{after}", encoding="utf-8")
        print(f"written to {results}")
    return 0


def _with_dollars(signals: Path, path: Path) -> Path:
    """The signals file with one amount in ten written as a spreadsheet shows money: $1,234.00."""
    import csv

    with open(signals, newline="", encoding="utf-8") as source, open(path, "w", newline="", encoding="utf-8") as out:
        reader, writer = csv.reader(source), csv.writer(out)
        header = next(reader)
        writer.writerow(header)
        amount = header.index("sale_amount")
        for i, row in enumerate(reader):
            if i % 10 == 0 and row[amount]:
                row[amount] = f"${float(row[amount].replace(',', '')) + 1000:,.2f}"
            writer.writerow(row)
    return path


def _chromium_version() -> str:
    try:
        out = subprocess.run([shutil.which("chromium"), "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.split()[1]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


if __name__ == "__main__":
    sys.exit(main())
