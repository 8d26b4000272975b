"""Benchmark: validation speed and memory, and upload throughput against a slow API.

    python bench/run.py              # the full run (1,000,000 rows; 6,000 uploads); writes bench/RESULTS.md
    python bench/run.py --smoke      # a few thousand rows, to check the script still works (make test)

Two measurements, each beside the plain way a user would script it, in the same run:

1. ``signal-uploader validate`` on a generated file (13 signal columns, the
   timestamp formats mixed) against a per-row Python loop doing the same checks
   with ``csv`` + ``datetime`` + ``phonenumbers``. Wall time and peak RSS.
2. ``signal-uploader upload`` of N rows to the emulator answering after 100 ms,
   at ``--concurrency 32``, against the limit rows x latency / concurrency.
   Wall time (start-up included) and the client's CPU time per row.
3. ``signal-uploader upload --dry-run`` of the validation file and of a tenth
   of it: everything but the network, to show that memory does not grow with
   the file.

Every command runs as a child process, so peak RSS and CPU time are the
child's own (``getrusage(RUSAGE_CHILDREN)`` read around a single child).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
TZ = "America/Los_Angeles"
HEADER = [
    "transaction_id",
    "call_start_time",
    "calling_phone_number",
    "duration_in_seconds",
    "name",
    "partner_unique_id",
    "description",
    "sale_amount",
    "value",
    "occurred_at_time",
    "custom_parameter_1",
    "custom_parameter_2",
    "advertiser_id_from_network",
]


# ----------------------------------------------------------------------- inputs


def _time_text(epoch: int, form: int) -> str:
    """One instant in one of the documented forms (0..4)."""
    pacific = dt.datetime.fromtimestamp(epoch, ZoneInfo(TZ))
    if form == 0:
        return str(epoch)
    if form == 1:
        return str(epoch * 1000 + 250)
    if form == 2:
        return pacific.strftime("%Y%m%d%H%M%S") + "000"
    if form == 3:
        return pacific.isoformat(timespec="milliseconds")
    return pacific.strftime("%Y/%m/%d %I:%M:%S %p")


def generate_signals(path: Path, rows: int, seed: int = 1) -> Path:
    """A signals file: about 90 bytes a row; some 2 % of rows invalid in some way."""
    rng = random.Random(seed)
    start = 1793639700  # 2026-11-02, after the DST change, so every wall time exists
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            epoch = start + rng.randrange(0, 20 * 86400)
            by_id = rng.random() < 0.3
            phone = f"({rng.randrange(200, 999)}) 555-{rng.randrange(0, 10000):04d}"
            writer.writerow(
                [
                    f"00000000-{i:08X}" if by_id else "",
                    "" if by_id else _time_text(epoch, i % 5),
                    "" if by_id else phone,
                    "" if by_id else str(rng.randrange(5, 900)),
                    "Sale" if i % 3 else "Quote",
                    str(i),
                    "ok" if i % 50 else "Two-year plan, renewal",
                    f"{rng.randrange(1, 5000)}.{rng.randrange(0, 100):02d}" if i % 97 else "1,000.00",
                    ("true", "false", "1", "0", "")[i % 5],
                    _time_text(epoch + 600, (i + 2) % 5),
                    "web",
                    "",
                    "ADV-1",
                ]
            )
    return path


def generate_calls(path: Path, rows: int) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["transaction_id", "start_time", "calling_phone_number", "duration_in_seconds"])
        for i in range(rows):
            writer.writerow([f"CALL-{i:06d}", 1793639700 + 60 * i, f"+1415555{i % 10000:04d}", 60])
    return path


def generate_uploads(path: Path, rows: int) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["transaction_id", "name", "partner_unique_id", "description", "sale_amount"])
        for i in range(rows):
            writer.writerow([f"CALL-{i % 1000:06d}", "Sale", str(i), f"order {i}", f"{i % 500}.99"])
    return path


# ------------------------------------------------------------- the plain way


_MONEY = re.compile(r"-?(\d+(\.\d{1,2})?|\.\d{1,2})")
_DURATION = re.compile(r"\d+(\.0*)?")
_SCIENTIFIC = re.compile(r"[-+]?\d(?:[.,]\d+)?[eE][-+]?\d+")
_ISO = re.compile(r"(\d{4})[-/](\d{2})[-/](\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}:?\d{2})")
_EXCEL = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(?:\s*([AaPp][Mm]))?")


def baseline_validate(path: Path, tz_name: str, report: Path) -> tuple[int, int]:
    """What a careful analyst's script would do: one row at a time, the same rules."""
    import phonenumbers

    tz = ZoneInfo(tz_name)
    pacific = ZoneInfo("America/Los_Angeles")

    def wall(naive: dt.datetime, zone) -> dt.datetime:
        # exists and unambiguous: both folds agree and survive a round trip
        early, late = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
        if early.utcoffset() != late.utcoffset():
            raise ValueError("ambiguous or skipped by DST")
        back = early.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
        if back != naive:
            raise ValueError("skipped by DST")
        return early

    def parse_time(text: str) -> dt.datetime:
        if re.fullmatch(r"\d{10}", text):
            return dt.datetime.fromtimestamp(int(text), dt.UTC)
        if re.fullmatch(r"\d{13}", text):
            return dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC)
        if re.fullmatch(r"\d{17}", text):
            return wall(dt.datetime.strptime(text, "%Y%m%d%H%M%S%f"), pacific)
        m = _ISO.fullmatch(text)
        if m:
            return dt.datetime.fromisoformat(text.replace("/", "-").replace("Z", "+00:00"))
        m = _EXCEL.fullmatch(text)
        if m:
            y, mo, d, h, mi, s, _frac, ampm = m.groups()
            h = int(h)
            if ampm and ampm.upper() == "PM" and h < 12:
                h += 12
            if ampm and ampm.upper() == "AM" and h == 12:
                h = 0
            return wall(dt.datetime(int(y), int(mo), int(d), h, int(mi), int(s or 0)), tz)
        raise ValueError("not a timestamp")

    valid = invalid = 0
    with open(path, newline="", encoding="utf-8-sig") as source, open(report, "w", newline="", encoding="utf-8") as out:
        reader = csv.DictReader(source)
        writer = csv.writer(out)
        writer.writerow(["row", "status", "error"] + reader.fieldnames)
        for number, row in enumerate(reader, start=2):
            errors = []
            row = {k: (v or "").strip() for k, v in row.items()}
            if not row["name"]:
                errors.append("name required")
            if not row["transaction_id"] and not row["call_start_time"]:
                errors.append("transaction_id or call_start_time required")
            if row["sale_amount"] and not _MONEY.fullmatch(row["sale_amount"]):
                errors.append("sale_amount")
            if row["value"].lower() not in ("", "true", "false", "1", "0"):
                errors.append("value")
            for name in ("custom_parameter_1", "custom_parameter_2"):
                if len(row[name]) > 255:
                    errors.append(name)
            if row["duration_in_seconds"] and not _DURATION.fullmatch(row["duration_in_seconds"]):
                errors.append("duration")
            for name in ("transaction_id", "calling_phone_number", "partner_unique_id"):
                if _SCIENTIFIC.fullmatch(row[name]):
                    errors.append(f"{name} scientific")
            if row["calling_phone_number"]:
                try:
                    number_ = phonenumbers.parse(row["calling_phone_number"], "US")
                    if not phonenumbers.is_possible_number(number_):
                        errors.append("phone impossible")
                    else:
                        phonenumbers.format_number(number_, phonenumbers.PhoneNumberFormat.E164)
                except phonenumbers.NumberParseException:
                    errors.append("phone")
            for name in ("call_start_time", "occurred_at_time"):
                if row[name]:
                    try:
                        parse_time(row[name])
                    except ValueError as exc:
                        errors.append(f"{name}: {exc}")
            if errors:
                invalid += 1
            else:
                valid += 1
            writer.writerow([number, "invalid" if errors else "valid", "; ".join(errors)] + list(row.values()))
    return valid, invalid


# ------------------------------------------------------------------ measuring


# Runs one command and reports that command's own CPU time and peak RSS: a
# process's RUSAGE_CHILDREN covers only the children it waited for.
_PROBE = (
    "import json, resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:]).returncode; "
    "r = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print(json.dumps({'code': code, 'cpu': r.ru_utime + r.ru_stime, 'rss_kb': r.ru_maxrss}), file=sys.stderr)"
)


def run_child(args: list, env: dict | None = None, cwd: Path = ROOT) -> dict:
    """Run a command; its wall time (start-up included), CPU time and peak RSS."""
    start = time.perf_counter()
    process = subprocess.run(
        [PYTHON, "-c", _PROBE, *[str(a) for a in args]], cwd=cwd, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    lines = process.stderr.strip().splitlines()
    usage = json.loads(lines[-1])
    return {
        "code": usage["code"],
        "wall": wall,
        "cpu": usage["cpu"],
        "rss_mb": usage["rss_kb"] / 1024,
        "stdout": process.stdout,
        "stderr": "\n".join(lines[:-1]),
    }


def worktree(rev: str, work: Path) -> Path:
    """The tree at ``rev`` checked out under ``work``, importable as ``uploader`` from ``PYTHONPATH``.

    The installed (editable) package maps ``uploader.schemas`` to this tree's
    top-level ``schemas/``; a link inside the checkout's package makes the
    older tree import its own schemas, not this one's.
    """
    tree = work / f"tree-{rev}"
    if not tree.exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True, capture_output=True
        )
    link = tree / "uploader" / "schemas"
    if (tree / "schemas").is_dir() and not link.exists():
        link.symlink_to(tree / "schemas", target_is_directory=True)
    return tree


def remove_worktree(tree: Path) -> None:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False, capture_output=True
    )


def measure_baseline(path: Path, work: Path) -> dict:
    code = (
        "import sys; sys.path.insert(0, {!r}); import run; "
        "print(run.baseline_validate(__import__('pathlib').Path({!r}), {!r}, __import__('pathlib').Path({!r})))".format(
            str(HERE), str(path), TZ, str(work / "baseline_report.csv")
        )
    )
    return run_child([PYTHON, "-c", code])


def start_emulator(calls: Path, latency_ms: int, work: Path):
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
            "--calls",
            calls,
            "--latency-ms",
            str(latency_ms),
            "--token",
            "bench-token",
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check that the script works")
    parser.add_argument("--rows", type=int, default=None, help="rows to validate (default 1,000,000)")
    parser.add_argument("--upload-rows", type=int, default=None, help="rows to upload (default 6,000)")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--work", type=Path, default=HERE / "data", help="where inputs and reports go")
    parser.add_argument("--results", type=Path, default=None, help="write the table here (default bench/RESULTS.md)")
    options = parser.parse_args()
    rows = options.rows or (3_000 if options.smoke else 1_000_000)
    upload_rows = options.upload_rows or (200 if options.smoke else 6_000)
    latency = 10 if options.smoke and options.latency_ms == 100 else options.latency_ms
    results_path = options.results or (None if options.smoke else HERE / "RESULTS.md")
    work = options.work
    work.mkdir(parents=True, exist_ok=True)

    print(f"generating {rows:,} signal rows and {upload_rows:,} upload rows in {work} ...", flush=True)
    signals = generate_signals(work / f"signals_{rows}.csv", rows)
    size_mb = signals.stat().st_size / 1e6

    print("validating the plain way (csv + datetime, one row at a time) ...", flush=True)
    base = measure_baseline(signals, work)
    assert base["code"] == 0, base["stderr"]

    print("validating with signal-uploader ...", flush=True)
    ours = run_child(
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
            work / "uploader_report.csv",
        ]
    )
    assert ours["code"] in (0, 1), ours["stderr"]

    # upload --dry-run: read, validate, prepare every request, write the report; nothing sent.
    # The same file at a tenth of the size shows whether memory grows with the file.
    dry = {}
    small = generate_signals(work / f"signals_{rows // 10}.csv", rows // 10)
    for label, path, count in (("tenth", small, rows // 10), ("full", signals, rows)):
        print(f"upload --dry-run of {count:,} rows ...", flush=True)
        dry[label] = run_child(
            [
                PYTHON,
                "-m",
                "uploader",
                "upload",
                path,
                "--timezone",
                TZ,
                "--no-progress",
                "--dry-run",
                "--report",
                work / f"dry_run_{count}.csv",
            ]
        )
        assert dry[label]["code"] in (0, 1), dry[label]["stderr"]
        dry[label]["rows"] = count

    print(
        f"uploading {upload_rows:,} rows to an API answering in {latency} ms at --concurrency "
        f"{options.concurrency} ...",
        flush=True,
    )
    calls = generate_calls(work / "calls.csv", 1000)
    uploads = generate_uploads(work / f"uploads_{upload_rows}.csv", upload_rows)
    emulator, base_url = start_emulator(calls, latency, work)
    try:
        env = dict(os.environ, INVOCA_API_TOKEN="bench-token", XDG_STATE_HOME=str(work / "state"))
        up = run_child(
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
                options.concurrency,
                "--force",
            ],
            env=env,
        )
    finally:
        emulator.terminate()
        emulator.wait()
    assert up["code"] == 0, up["stdout"] + up["stderr"]
    limit = upload_rows * latency / 1000 / options.concurrency

    table = [
        "| measurement | rows | wall s | rows/s | peak RSS MB | speed vs baseline | share of limit | CPU ms/row |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| validate, per-row loop (csv + datetime) | {rows:,} | {base['wall']:.1f} | {rows / base['wall']:,.0f} "
        f"| {base['rss_mb']:.0f} | 1.0x | | {1000 * base['cpu'] / rows:.3f} |",
        f"| validate, signal-uploader | {rows:,} | {ours['wall']:.1f} | {rows / ours['wall']:,.0f} "
        f"| {ours['rss_mb']:.0f} | {base['wall'] / ours['wall']:.2f}x | | {1000 * ours['cpu'] / rows:.3f} |",
        f"| upload --dry-run (read, validate, prepare, report) | {dry['tenth']['rows']:,} | "
        f"{dry['tenth']['wall']:.1f} | {dry['tenth']['rows'] / dry['tenth']['wall']:,.0f} "
        f"| {dry['tenth']['rss_mb']:.0f} | | | {1000 * dry['tenth']['cpu'] / dry['tenth']['rows']:.3f} |",
        # The house issue's bound: a dry-run costs at most twice a validate of the same file.
        f"| upload --dry-run (read, validate, prepare, report) | {rows:,} | {dry['full']['wall']:.1f} "
        f"| {rows / dry['full']['wall']:,.0f} | {dry['full']['rss_mb']:.0f} | "
        f"| {dry['full']['wall'] / ours['wall']:.2f}x validate (limit 2x) | {1000 * dry['full']['cpu'] / rows:.3f} |",
        f"| upload, {latency} ms API, concurrency {options.concurrency} | {upload_rows:,} | {up['wall']:.1f} "
        f"| {upload_rows / up['wall']:,.0f} | {up['rss_mb']:.0f} | | {up['wall'] / limit:.0%} of {limit:.2f} s "
        f"| {1000 * up['cpu'] / upload_rows:.3f} |",
    ]
    header = (
        f"Input: {rows:,} rows x {len(HEADER)} columns, {size_mb:.0f} MB of CSV, timestamp formats mixed; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M')}."
    )
    text = header + "\n\n" + "\n".join(table) + "\n"
    print()
    print(text)
    if results_path is not None:
        update_results(results_path, text)
        print(f"written to {results_path}")
    return 0


def update_results(path: Path, table: str, marker: str = "results") -> None:
    """Replace the measured table between the markers of RESULTS.md (``<!-- marker:start -->``), keeping the prose."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    current = path.read_text(encoding="utf-8") if path.exists() else f"# Benchmark results\n\n{start}\n{end}\n"
    if start not in current:
        current += f"\n{start}\n{end}\n"
    before, rest = current.split(start, 1)
    _, after = rest.split(end, 1)
    path.write_text(f"{before}{start}\n{table}{end}{after}", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
