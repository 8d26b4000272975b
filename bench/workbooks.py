"""Reading workbooks: the old reader (openpyxl, read-only mode) against the new one (calamine),
in the same run, on the same generated 100,000-row .xlsx.

    python bench/workbooks.py [--rows N] [--results bench/RESULTS.md]

Each measurement runs in a child process: wall time, the child's CPU time and peak RSS.
The table goes between the ``workbooks:start`` / ``workbooks:end`` markers of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CHILD = r"""
import json, resource, sys, time
started = time.perf_counter()
kind, path = sys.argv[1], sys.argv[2]
rows = 0
if kind == "openpyxl":
    import openpyxl
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    for values in book.worksheets[0].iter_rows(values_only=True):
        rows += 1
elif kind == "calamine":
    from python_calamine import CalamineWorkbook
    for values in CalamineWorkbook.from_path(path).get_sheet_by_index(0).iter_rows():
        rows += 1
else:  # the uploader's own reader: cells rendered as text, chunk by chunk
    from uploader.read import open_table
    from uploader.schemas.signals import FIELDS
    for chunk in open_table(path, fields=FIELDS).chunks():
        rows += len(chunk.frame)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"rows": rows, "wall": time.perf_counter() - started, "cpu": usage.ru_utime + usage.ru_stime,
                  "rss": usage.ru_maxrss / 1024}))
"""


def generate(path: Path, rows: int) -> Path:
    import datetime as dt

    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Signals")
    sheet.append(
        [
            "transaction_id",
            "name",
            "partner_unique_id",
            "call_start_time",
            "calling_phone_number",
            "duration_in_seconds",
            "sale_amount",
            "description",
        ]
    )
    start = dt.datetime(2026, 1, 5, 9, 0, 0)
    for i in range(rows):
        sheet.append(
            [
                f"{i:08d}-{i * 7 % 99991:08d}",
                "Sale" if i % 3 else "Quote",
                i,
                start + dt.timedelta(seconds=97 * i),
                f"+1415555{i % 10000:04d}",
                30 + i % 600,
                round(10 + (i % 5000) / 100, 2),
                f"order {i}",
            ]
        )
    book.save(path)
    return path


def measure(kind: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(path)], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    return json.loads(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    options = parser.parse_args()
    work = HERE / "data"
    work.mkdir(exist_ok=True)
    path = work / f"workbook-{options.rows}.xlsx"
    if not path.exists():
        generate(path, options.rows)
    size = path.stat().st_size / 1e6
    lines = [
        f"Input: a {options.rows:,}-row x 8-column .xlsx ({size:.1f} MB) written by openpyxl; "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        "| reader | rows | wall s | CPU s | peak RSS MB | speed vs openpyxl |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    results = {kind: measure(kind, path) for kind in ("openpyxl", "calamine", "uploader")}
    base = results["openpyxl"]["wall"]
    names = {
        "openpyxl": "openpyxl read-only, values only (the reader before)",
        "calamine": "python-calamine, values only",
        "uploader": "signal-uploader's reader (calamine + text cells, chunks)",
    }
    for kind, result in results.items():
        lines.append(
            f"| {names[kind]} | {result['rows'] - (1 if kind != 'uploader' else 0):,} | {result['wall']:.2f} | "
            f"{result['cpu']:.2f} | {result['rss']:.0f} | {base / result['wall']:.1f}x |"
        )
    table = "\n".join(lines)
    print(table)
    text = options.results.read_text(encoding="utf-8")
    start, end = "<!-- workbooks:start -->", "<!-- workbooks:end -->"
    if start in text:
        text = text[: text.index(start) + len(start)] + "\n" + table + "\n" + text[text.index(end) :]
    else:
        text += f"\n## Reading workbooks\n\n`python bench/workbooks.py` (part of `make bench`).\n\n{start}\n{table}\n{end}\n"
    options.results.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
