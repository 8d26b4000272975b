"""The page as an importer: any file analysts have, fixes in bulk, their words, checked for accessibility.

Each test drives the real page (``signal-uploader serve`` in a subprocess) in
Debian's chromium against the real emulator, and checks what the analyst
would: the page's words, the emulator's final state, the downloaded report.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from test_web import SHOTS, TZ, browser, numbers, report_rows, start_page, tab  # noqa: F401 (fixtures)

from conftest import SAMPLES, TOKEN, run_cli, write_csv, write_xlsx

AXE = Axe()


def epoch(utc: str) -> int:
    return int(datetime.fromisoformat(utc).replace(tzinfo=UTC).timestamp())


def accessible(page, step: str) -> None:
    """axe-core (shipped in axe-playwright-python) finds no serious or critical problem on the page."""
    results = AXE.run(page)
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{step}: {bad}"


def fits(page) -> None:
    """Nothing is wider than the window (a table may scroll inside its own box)."""
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page is {width[0]} px wide in a {width[1]} px window"


def download(page, selector: str, folder: Path) -> list[dict]:
    with page.expect_download() as done:
        page.click(selector)
    path = folder / done.value.suggested_filename
    done.value.save_as(path)
    return report_rows(path)


def to_preview(page, url: str | None, file: Path, *, token: str | None = None) -> None:
    """Choose a file and go to its preview (on the page at ``url``, or the page already open)."""
    if url is not None:
        page.goto(url)
    page.set_input_files("#file-input", str(file))
    page.wait_for_selector("#to-columns:not([disabled])")
    if token:
        page.fill("#token", token)
    page.click("#to-columns")
    page.wait_for_selector("#columns-body tr")
    page.click("#to-preview")
    page.wait_for_selector("#preview-busy:has-text('Checked in')")


def upload(page) -> None:
    page.click("#start-upload")
    page.wait_for_selector("#step-report:not([hidden])")


def title_row_workbook(tmp_path: Path) -> Path:
    return write_xlsx(
        tmp_path / "March.xlsx",
        [
            ["March conversions, exported from the CRM"],
            [],
            ["Printed 2026-03-31; amounts in USD"],
            ["Transaction ID", "Signal Name", "Occurred At", "Caller Phone", "Amount"],
            ["00000000-00000001", "Sale", "2026/03/01 10:00:00", "+14155550134", "12.50"],
            ["00000000-00000002", "Quote", "2026/03/02 16:30:00", "+14155550135", ""],
            ["00000000-00000003", "Sale", "2026/03/03 09:15:00", "+14155550136", "99"],
        ],
        sheet="Conversions",
    )


# ------------------------------------------------------------- any file they have


def test_a_title_row_workbook_with_unfamiliar_headers_is_mapped_by_picking_its_header_row(
    tmp_path, emulator, start_page, tab
):
    served = start_page(emulator.base_url, env={"INVOCA_API_TOKEN": TOKEN})
    page = tab
    book = title_row_workbook(tmp_path)
    page.goto(served.url)
    accessible(page, "the first step")
    page.set_input_files("#file-input", str(book))
    page.wait_for_selector("#to-columns:not([disabled])")
    page.click("#to-columns")
    page.wait_for_selector("#columns-body tr")
    # the search found no header: the title is taken, and the page shows the sheet's first rows to choose from
    assert page.locator("#columns-body tr").count() == 1
    assert page.locator("#header-row option").all_inner_texts()[:3] == [
        "Row 1: March conversions, exported from the CRM",
        "Row 3: Printed 2026-03-31; amounts in USD",
        "Row 4: Transaction ID · Signal Name · Occurred At · Caller Phone",
    ]
    assert "no 'name' column" in page.inner_text("#columns-missing")
    assert page.is_disabled("#to-preview")  # a need nothing maps to is said before the preview
    accessible(page, "the columns step, nothing mapped")

    page.select_option("#header-row", "4")
    page.wait_for_selector("#columns-body tr:nth-child(5)")
    matched = dict(
        zip(
            page.locator("#columns-body th").all_inner_texts(),
            page.locator("#columns-body td.match").all_inner_texts(),
        )
    )
    assert matched["Transaction ID"] == "transaction_id — exact match"
    assert matched["Signal Name"] == "name — close match, 90% sure"
    assert matched["Occurred At"].startswith("occurred_at_time — close match")
    assert matched["Caller Phone"].startswith("calling_phone_number — close match")
    assert matched["Amount"].startswith("sale_amount — close match")
    assert page.input_value('select[data-header="Signal Name"]') == "name"
    assert page.is_hidden("#columns-missing") and not page.is_disabled("#to-preview")
    accessible(page, "the columns step")

    page.click("#to-preview")
    page.wait_for_selector("#preview-busy:has-text('Checked in')")
    assert numbers(page.inner_text("#counts")) == [3, 3, 0, 3]
    warnings = page.inner_text("#warnings")
    assert "3 rows: Phone numbers not used: the transaction id already names the call" in warnings
    accessible(page, "the preview")
    upload(page)
    accessible(page, "the report")

    landed = sorted(emulator.signals(), key=lambda s: s["call_transaction_id"])
    assert [(s["call_transaction_id"], s["name"]) for s in landed] == [
        ("00000000-00000001", "Sale"),
        ("00000000-00000002", "Quote"),
        ("00000000-00000003", "Sale"),
    ]
    assert landed[0]["occurred_at_time_t"] == epoch("2026-03-01 18:00")  # 10:00 in Los Angeles
    rows = download(page, "#download-xlsx", tmp_path)
    assert [(r["row"], r["status"]) for r in rows] == [("5", "created"), ("6", "created"), ("7", "created")]

    # the command line reads the same workbook: the saved mapping makes row 4 the header it looks for,
    # and --header-row says it outright
    state = {"SIGNAL_UPLOADER_STATE_DIR": str(served.state)}
    for chosen in ((), ("--header-row", "4")):
        again = run_cli("validate", book, "--mapping", "March", "--timezone", TZ, *chosen, env=state)
        assert again.code == 0 and "3 row(s)" in again.output, again.output
    refused = run_cli("validate", book, "--mapping", "March", "--timezone", TZ, "--header-row", "2", env=state)
    assert refused.code == 2 and "row 2, chosen as the header, is blank" in refused.output


def test_a_workbook_is_retried_from_the_page_with_both_buttons(tmp_path, make_emulator, start_page, tab):
    """The report has one sheet of its own: the original's sheet name ('Conversions') is not asked of it."""
    emulator = make_emulator(fail_rate=1.0)
    config = tmp_path / "page.toml"
    config.write_text("max_attempts = 1\nstop_after_failures = 0\n")
    served = start_page(emulator.base_url, "--config", config, env={"INVOCA_API_TOKEN": TOKEN})
    page = tab
    to_preview(page, served.url, SAMPLES / "signals.xlsx")
    assert page.input_value("#sheet") == "Conversions"
    upload(page)
    first = len(emulator.signals())
    assert first == 0  # the API failed every request

    emulator.control("faults", {"fail_rate": 0})
    page.click("#retry-failed")
    page.wait_for_function("() => document.getElementById('report-headline').textContent.startsWith('The retry is')")
    assert page.inner_text("#report-headline") == "The retry is finished."
    assert len(emulator.signals()) == 4
    assert f"created {4 - first}" in page.inner_text("#chart-caption")
    rows = {int(r["row"]): r for r in download(page, "#download-xlsx", tmp_path)}
    assert [rows[n]["status"] for n in range(2, 9)] == ["created"] * 4 + ["invalid", "invalid", "failed"]
    assert rows[8]["error_class"] == "RecordNotFound"

    before = emulator.requests
    page.click("#retry-not-found")
    page.wait_for_function("() => document.getElementById('past-body').textContent.includes('not-found rows')")
    page.wait_for_function("() => !document.getElementById('retry-not-found').disabled")
    assert page.inner_text("#report-headline") == "The retry is finished."
    assert emulator.requests == before + 1  # the row whose call was not found, asked again
    runs = page.locator("#past-body tr").all_inner_texts()
    assert len(runs) == 3 and all("finished" in r for r in runs[:2]), runs
    rows = {int(r["row"]): r for r in download(page, "#download-csv", tmp_path)}
    assert rows[8]["status"] == "failed" and len(emulator.signals()) == 4


# ------------------------------------------------------------------ fixes in bulk


def amounts_file(tmp_path: Path) -> Path:
    """30 rows: 12 amounts with a $ or a thousands separator, 4 'n/a', 3 values 'maybe', 5 values 'yes'."""
    rows = [["transaction_id", "name", "partner_unique_id", "sale_amount", "value"]]
    for i in range(30):
        amount = f"${1000 + i:,}.00" if i < 8 else f"{1000 + i:,}.50" if i < 12 else "n/a" if i < 16 else f"{i}.25"
        value = "maybe" if i in (20, 21, 22) else "yes" if 23 <= i < 28 else "true"
        rows.append([f"00000000-{i + 1:08d}", "Sale", f"P-{i}", amount, value])
    return write_csv(tmp_path / "amounts.csv", rows)


def bulk(page, column: str, kind: str, find: str = "", value: str = "") -> str:
    page.select_option("#bulk-column", column)
    page.select_option("#bulk-kind", kind)
    if find:
        page.fill("#bulk-find", find)
    if value:
        page.fill("#bulk-value", value)
    page.click("#bulk-check")
    page.wait_for_selector("#bulk-result:not(:empty)")
    return page.inner_text("#bulk-result")


def apply_bulk(page, invalid_after: int) -> None:
    page.click("#bulk-apply")
    page.wait_for_function(
        "(n) => document.querySelector('#counts .bad').textContent === n + ' invalid'", arg=invalid_after
    )


def test_each_bulk_fix_shows_its_count_and_can_be_undone_then_the_corrections_are_sent(
    tmp_path, make_emulator, start_page, tab
):
    from test_reliability import many_calls

    emulator = make_emulator(calls_file=many_calls(tmp_path, 40))
    rows = amounts_file(tmp_path)
    text = rows.read_text().replace("00000000-000000", "CALL-000")  # the emulator's calls
    rows.write_text(text)
    served = start_page(emulator.base_url, env={"INVOCA_API_TOKEN": TOKEN})
    page = tab
    to_preview(page, served.url, rows)
    assert numbers(page.inner_text("#counts")) == [30, 6, 24, 0]
    problems = page.inner_text("#top-problems")
    assert "16 rows: Amount has a currency symbol" in problems and "sale-amount-format" in problems
    assert "8 rows: Value is not true or false" in problems
    accessible(page, "the preview with problems")

    # remove currency symbols and thousands separators: 12 cells, counted before
    said = bulk(page, "sale_amount", "currency")
    assert said.startswith("This changes 12 cells of sale_amount (row 2: “$1,000.00” → “1000.00”")
    assert emulator.requests == 0 and numbers(page.inner_text("#counts"))[2] == 24  # nothing changed yet
    apply_bulk(page, 12)
    assert "12 rows: Value is not" not in page.inner_text("#top-problems")
    assert (
        page.inner_text("#bulk-undo")
        == "Undo: removed currency symbols and thousands separators in sale_amount (12 cells)"
    )
    page.click("#bulk-undo")
    page.wait_for_function("() => document.querySelector('#counts .bad').textContent === '24 invalid'")
    assert page.inner_text("#bulk-result").startswith("Undone: removed currency symbols")
    apply_bulk_again = bulk(page, "sale_amount", "currency")
    assert "12 cells" in apply_bulk_again
    apply_bulk(page, 12)

    # find and replace inside cells: 'n/a' -> '' (4 cells)
    assert bulk(page, "sale_amount", "replace", find="n/a", value=" ").startswith("This changes 4 cells")
    page.fill("#bulk-value", "")
    assert bulk(page, "sale_amount", "replace", find="n/a").startswith("This changes 4 cells")
    apply_bulk(page, 8)
    page.click("#bulk-undo")
    page.wait_for_function("() => document.querySelector('#counts .bad').textContent === '12 invalid'")
    bulk(page, "sale_amount", "replace", find="n/a")
    apply_bulk(page, 8)

    # one value for every cell of a column that has a problem: the 8 bad values -> 'false'
    assert bulk(page, "value", "set", value="false").startswith("This changes 8 cells of value")
    apply_bulk(page, 0)
    page.click("#bulk-undo")
    page.wait_for_function("() => document.querySelector('#counts .bad').textContent === '8 invalid'")
    # the same correction for every cell holding one value: 'yes' -> 'true' (5), then 'maybe' -> 'false' (3)
    assert bulk(page, "value", "same", find="yes", value="true").startswith("This changes 5 cells of value")
    apply_bulk(page, 3)
    assert bulk(page, "value", "same", find="maybe", value="false").startswith("This changes 3 cells")
    apply_bulk(page, 0)
    assert numbers(page.inner_text("#counts")) == [30, 30, 0, 0]

    # the corrected rows, old -> new, beside their cells
    page.select_option("#show-rows", "corrected")
    page.wait_for_function("() => document.getElementById('page-info').textContent.includes('corrected rows')")
    assert "(24 corrected rows)" in page.inner_text("#page-info")

    assert "was “$1,000.00” → “1000.00”" in page.inner_text("#row-2")
    accessible(page, "the corrected rows")

    upload(page)
    landed = {s["partner_unique_id"]: s for s in emulator.signals()}
    assert len(landed) == 30
    assert str(landed["P-0"]["sale_amount"]) in ("1000.00", "1000.0", "1000")
    assert landed["P-12"].get("sale_amount") in (None, "")  # 'n/a' became empty: no amount sent
    report = {r["partner_unique_id"]: r for r in download(page, "#download-xlsx", tmp_path)}
    assert report["P-0"]["sale_amount"] == "1000.00"  # the report keeps both: the value sent ...
    assert "corrected: sale_amount '$1,000.00' -> '1000.00'" in report["P-0"]["warning"]  # ... and the file's
    assert "corrected: value 'yes' -> 'true'" in report["P-23"]["warning"]
    assert all(r["status"] == "created" for r in report.values())


def test_the_preview_never_goes_stale_after_corrections(tmp_path, emulator, start_page, tab):
    rows = [["transaction_id", "name", "sale_amount"]] + [
        [f"00000000-{i:08d}", "Sale", f"{i}.5555" if i <= 5 else f"{i}.50"] for i in range(1, 9)
    ]
    served = start_page(emulator.base_url, env={"INVOCA_API_TOKEN": TOKEN})
    page = tab
    to_preview(page, served.url, write_csv(tmp_path / "five.csv", rows))
    assert "(5 invalid rows)" in page.inner_text("#page-info")
    assert "5 rows: Amount has more than 2 decimal places" in page.inner_text("#top-problems")
    for row in (2, 3, 4, 5):
        cell = page.locator(f'#row-{row} input[data-header="sale_amount"]')
        cell.fill("1.50")
        cell.press("Enter")
        page.wait_for_selector(f"#row-{row} .fixed")
    assert numbers(page.inner_text("#counts")) == [8, 7, 1, 0]
    assert "(1 invalid rows)" in page.inner_text("#page-info")  # not the 5 of before
    assert "1 row: Amount has more than 2 decimal places" in page.inner_text("#top-problems")
    upload(page)
    assert len(emulator.signals()) == 7
    report = {int(r["row"]): r for r in download(page, "#download-csv", tmp_path)}
    assert report[6]["status"] == "invalid" and report[2]["sale_amount"] == "1.50"


def test_the_preview_plans_against_the_journal_as_the_cli_does(tmp_path, emulator, start_page, tab):
    """The CLI uploaded a file; its next export on the page shows the counts the CLI's dry run gives."""
    from uploader.plan import plan_line

    header = ["Transaction ID", "Name", "Partner Unique ID", "Sale Amount"]
    first = [["00000000-00000001", "Sale", "P-1", "100.00"], ["00000000-00000002", "Sale", "P-2", "50.00"]]
    first += [["00000000-00000003", "Quote", "P-3", ""]]
    path = write_csv(tmp_path / "june.csv", [header, *first])
    served = start_page(emulator.base_url, env={"INVOCA_API_TOKEN": TOKEN})
    cli = ("--base-url", emulator.base_url, "--state-dir", served.state)
    assert run_cli("upload", path, *cli).code == 0
    edited = [first[0], ["00000000-00000002", "Sale", "P-2", "55.00"], first[2]]
    edited += [["00000000-00000004", "Sale", "P-4", "20.00"], ["00000000-00000001", "Sale", "P-1b", "100.00"]]
    write_csv(path, [header, *edited])
    dry = run_cli("upload", path, *cli, "--dry-run", "--summary-json", tmp_path / "dry.json")
    plan = json.loads((tmp_path / "dry.json").read_text())["plan"]
    assert plan == {"new": 2, "correction": 1, "unchanged": 2}, dry.output

    page = tab
    sent = emulator.requests
    to_preview(page, served.url, path)
    assert page.inner_text("#plan-line") == plan_line(plan) == "2 new, 1 correction, 2 unchanged"
    listed = page.inner_text("#plan-list")
    assert "1 correction — confirmed before with other content: sending it updates what the API holds" in listed
    assert "2 unchanged — confirmed before with the same content: skipped" in listed
    assert "--" not in page.inner_text("#plan")  # the page's words, never a flag
    # The row that only its new partner id tells apart from a confirmed signal is warned about here too.
    assert "duplicate-across-runs" in page.inner_text("#warnings")
    assert numbers(page.inner_text("#counts")) == [5, 5, 0, 1]
    accessible(page, "the preview with its plan")

    # A correction on the page plans again: P-2 back to the amount the API holds is unchanged.
    assert bulk(page, "Sale Amount", "same", find="55.00", value="50.00").startswith("This changes 1 cell")
    page.click("#bulk-apply")
    page.wait_for_function("() => document.getElementById('plan-line').textContent === '2 new, 3 unchanged'")
    assert emulator.requests == sent  # planning sends nothing
    upload(page)
    assert emulator.requests == sent + 2  # the two new rows; the unchanged ones are skipped


# -------------------------------------------------------------- words and numbers


def test_the_page_says_things_in_its_own_words_not_the_command_lines(tmp_path, make_emulator, start_page, tab):
    emulator = make_emulator(fail_rate=1.0)  # the API is down
    config = tmp_path / "page.toml"
    config.write_text("max_attempts = 1\nstop_after_failures = 3\n")
    served = start_page(emulator.base_url, "--config", config)  # no token: the page asks for one
    page = tab
    page.goto(served.url)
    page.fill("#timezone", "")
    page.set_input_files("#file-input", str(SAMPLES / "signals.csv"))
    page.wait_for_selector("#to-columns:not([disabled])")
    page.click("#to-columns")
    page.wait_for_selector("#columns-body tr")
    # a column the analyst leaves out is not warned about, and says so beside its choice
    page.select_option('select[data-header="Notes"]', "")
    assert page.inner_text('#columns-body tr:has(th:text-is("Notes")) td.match') == "left out (your choice)"
    page.click("#to-preview")
    page.wait_for_selector("#message:not([hidden])")
    said = page.inner_text("#message")
    assert "no timezone was given" in said and "Timezone of the file's times" in said
    assert "--" not in said

    page.fill("#timezone", TZ)
    page.click("#to-preview")
    page.wait_for_selector("#preview-busy:has-text('Checked in')")
    assert "Notes" not in page.inner_text("#warnings")

    # no token yet: said in the page's words; a token typed then is the one used
    page.click("#start-upload")
    page.wait_for_selector("#message:not([hidden])")
    said = page.inner_text("#message")
    assert "no API token" in said and "'API token'" in said and "--" not in said and "INVOCA" not in said
    page.fill("#token", TOKEN)
    page.click("#start-upload")
    page.wait_for_selector("#step-report:not([hidden])")
    headline = page.inner_text("#report-headline")
    assert headline.startswith("The upload stopped.")
    for words in ("--", "command", str(served.state), ".results.", "INVOCA"):
        assert words not in headline, (words, headline)
    assert "upload the file again" in headline or "the report is below" in headline
    page.wait_for_function("() => document.getElementById('past-body').textContent.includes('stopped')")
    assert page.locator("#past-body tr").count() == 1 and "stopped:" in page.inner_text("#past-body")
    assert "the report is below" in page.inner_text("#past-body")  # the reason, kept in Past runs
    rows = download(page, "#download-csv", tmp_path)
    assert {r["status"] for r in rows} == {"failed", "invalid"} and emulator.signals() == []

    # the API is back: a token typed again is taken, and the rows go
    emulator.control("faults", {"fail_rate": 0})
    page.click("#retry-failed")
    page.wait_for_function("() => document.getElementById('report-headline').textContent.startsWith('The retry')")
    rows = download(page, "#download-csv", tmp_path)
    confirmed = [r["status"] for r in rows].count("created") + [r["status"] for r in rows].count("updated")
    assert confirmed == 10 - sum(r["error_class"] == "RecordNotFound" for r in rows)
    assert len(emulator.signals()) == [r["status"] for r in rows].count("created")


def test_numbers_are_grouped_blank_rows_are_not_counted_and_runs_keep_their_order(
    tmp_path, make_emulator, start_page, tab
):
    from test_reliability import many_calls

    emulator = make_emulator(calls_file=many_calls(tmp_path, 1200))
    lines = [["transaction_id", "name", "partner_unique_id"]]
    for i in range(1200):
        lines.append([f"CALL-{i:05d}", "Sale", str(i)])
        if i % 300 == 0:
            lines.append(["", "", ""])  # 4 blank rows
    big = write_csv(tmp_path / "twelve hundred.csv", lines)
    served = start_page(emulator.base_url, env={"INVOCA_API_TOKEN": TOKEN})
    page = tab
    page.goto(served.url)
    page.set_input_files("#file-input", str(big))
    page.wait_for_selector("#to-columns:not([disabled])")
    assert page.evaluate("document.getElementById('file-input').files.length") == 1
    page.click("#to-columns")
    page.click("#to-preview")
    page.wait_for_selector("#preview-busy:has-text('Checked in')")
    assert page.inner_text("#counts").startswith("1,200 rows")
    page.evaluate("""() => { window.seen = [];
        new MutationObserver(() => window.seen.push(document.getElementById('progress-text').textContent))
          .observe(document.getElementById('progress-text'), {childList: true, characterData: true, subtree: true}); }""")
    upload(page)
    seen = page.evaluate("window.seen")
    assert all(" of 1,204 " not in text for text in seen), [t for t in seen if "1,204" in t][:2]
    final = page.inner_text("#progress-text")
    assert final.startswith("1,200 of 1,200 rows answered · 1,200 created"), final
    assert "created 1,200" in page.inner_text("#chart-caption")

    # the same file again at once: every row skipped; the later run is listed first
    page.click("#start-over")
    page.set_input_files("#file-input", str(big))
    page.wait_for_selector("#to-columns:not([disabled])")
    page.click("#to-columns")
    page.click("#to-preview")
    page.wait_for_selector("#start-upload:not([disabled])")
    upload(page)
    assert "1,200 skipped" in page.inner_text("#progress-text")
    page.wait_for_function("() => document.querySelectorAll('#past-body tr').length === 2")
    runs = page.locator("#past-body tr").all_inner_texts()
    assert "skipped 1,200" in runs[0] and "created 1,200" in runs[1], runs
    records = [json.loads(p.read_text()) for p in (served.state / "web" / "runs").glob("*.json")]
    assert all(len(r["started"]) > len("2026-12-07T03:00:00+00:00") for r in records)  # to the microsecond
    assert len(emulator.signals()) == 1200


def test_a_dropped_file_is_named_by_the_file_input(tmp_path, emulator, start_page, tab):
    from test_web import drop_file

    served = start_page(emulator.base_url, env={"INVOCA_API_TOKEN": TOKEN})
    page = tab
    page.goto(served.url)
    drop_file(page, SAMPLES / "signals.csv")
    page.wait_for_selector("#to-columns:not([disabled])")
    assert page.evaluate("document.getElementById('file-input').files[0].name") == "signals.csv"


def test_serve_refuses_an_address_beyond_this_machine_and_says_why():
    result = run_cli("serve", "--host", "0.0.0.0", "--port", "0", process=True)
    assert result.code == 2
    assert "the page serves this computer only, not 0.0.0.0" in result.output
    assert "without encryption" in result.output and "ssh -L" in result.output


# --------------------------------------------------------------- times, two clocks


def test_times_are_shown_in_two_clocks_so_a_wrong_timezone_is_seen_before_sending(tmp_path, emulator, start_page, tab):
    served = start_page(emulator.base_url, env={"INVOCA_API_TOKEN": TOKEN})
    page = tab
    book = title_row_workbook(tmp_path)
    page.goto(served.url)
    page.fill("#timezone", "America/New_York")
    page.set_input_files("#file-input", str(book))
    page.wait_for_selector("#to-columns:not([disabled])")
    page.click("#to-columns")
    page.wait_for_selector("#header-row option", state="attached")
    page.select_option("#header-row", "4")
    page.wait_for_selector("#columns-body tr:nth-child(5)")
    page.click("#to-preview")
    page.wait_for_selector("#preview-busy:has-text('Checked in')")
    first = page.locator("#clocks-body tr").first.inner_text().split("\t")
    assert first == [
        "Occurred At",
        "5",
        "2026/03/01 10:00:00",
        "2026-03-01 10:00:00 EST (UTC-0500)",
        "2026-03-01 15:00:00 UTC",
    ]
    assert page.inner_text("#clock-local") == "In America/New_York"

    # the analyst sees 15:00 UTC, meant Los Angeles: back to step 1, another timezone, checked again
    page.fill("#timezone", "America/Los_Angeles")
    page.click("#to-preview")
    page.wait_for_function(
        "() => document.getElementById('clocks-body').textContent.includes('2026-03-01 18:00:00 UTC')"
    )
    assert "PST (UTC-0800)" in page.inner_text("#clocks-body")
    upload(page)
    landed = {s["call_transaction_id"]: s for s in emulator.signals()}
    assert landed["00000000-00000001"]["occurred_at_time_t"] == epoch("2026-03-01 18:00")
    assert {r["status"] for r in download(page, "#download-xlsx", tmp_path)} == {"created"}


# ----------------------------------------------------------------- what is kept


def test_files_are_kept_for_the_set_time_and_can_be_forgotten_while_the_journal_remembers(
    tmp_path, emulator, start_page, tab
):
    state = tmp_path / "state"
    old_file = state / "web" / "files" / "0123456789abcdef"
    old_file.mkdir(parents=True)
    (old_file / "last month.csv").write_text("transaction_id,name\n00000000-00000001,Sale\n")
    old_run = state / "web" / "runs" / "feedfacefeedface.json"
    old_run.parent.mkdir(parents=True)
    old_run.write_text(json.dumps({"id": "feedfacefeedface", "file": "last month.csv", "state": "finished"}))
    month_ago = time.time() - 40 * 86400
    for path in (old_file / "last month.csv", old_file, old_run):
        os.utime(path, (month_ago, month_ago))

    served = start_page(emulator.base_url, "--keep-days", "30", env={"INVOCA_API_TOKEN": TOKEN})
    page = tab
    page.goto(served.url)
    assert "kept on this computer for 30 days" in page.inner_text("#drop")
    assert not old_file.exists() and not old_run.exists()  # older than 30 days: forgotten at start
    page.wait_for_function("() => document.getElementById('past-body').textContent.includes('No runs yet.')")

    to_preview(page, None, SAMPLES / "signals.csv")
    upload(page)
    created = len(emulator.signals())
    rows = download(page, "#download-xlsx", tmp_path)
    assert sum(r["status"] == "created" for r in rows) == created > 0
    confirmed = sum(r["status"] in ("created", "updated") for r in rows)
    stored = list((state / "web" / "files").rglob("signals*"))
    assert any(p.name == "signals.csv" for p in stored) and any(".results." in p.name for p in stored)

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#past-body button:has-text('Forget')")
    page.wait_for_function("() => document.getElementById('past-body').textContent.includes('No runs yet.')")
    assert "Forgot signals.csv (1 run)" in page.inner_text("#file-name")
    assert not list((state / "web" / "files").rglob("*.csv")) and not list((state / "web" / "files").rglob("*.xlsx"))
    assert list((state / "web" / "runs").glob("*.json")) == []
    # the journal still knows the confirmed rows: the same file again sends none of them
    assert f"signals.csv\tsignals\t{confirmed}\t" in page.inner_text("#sources-body")
    sent = emulator.requests
    to_preview(page, None, SAMPLES / "signals.csv")
    upload(page)
    assert f"{confirmed} skipped" in page.inner_text("#progress-text")
    assert len(emulator.signals()) == created and emulator.requests - sent < confirmed


# ------------------------------------------------------------ every width, every step


@pytest.mark.parametrize("width", [390, 1920])
def test_every_step_fits_the_window_and_passes_axe(tmp_path, emulator, start_page, browser, width):
    """A phone-sized window and a wide screen; each step's picture for the README (make screenshots)."""
    context = browser.new_context(timezone_id=TZ, accept_downloads=True, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    served = start_page(emulator.base_url, env={"INVOCA_API_TOKEN": TOKEN})
    folder = SHOTS if os.environ.get("SIGNAL_UPLOADER_SCREENSHOTS") else tmp_path
    folder.mkdir(exist_ok=True)

    def step(name: str, section: str) -> None:
        fits(page)
        accessible(page, f"{name} at {width} px")
        picture = str(folder / f"{width}-{name}.png")
        if width < 600:  # a phone: the whole page, as it scrolls
            page.screenshot(path=picture, full_page=True)
        else:
            page.locator(section).screenshot(path=picture)

    try:
        page.goto(served.url)
        step("1-file", "#step-file")
        page.set_input_files("#file-input", str(SAMPLES / "signals.xlsx"))
        page.wait_for_selector("#to-columns:not([disabled])")
        page.click("#to-columns")
        page.wait_for_selector("#columns-body tr")
        step("2-columns", "#step-columns")
        page.click("#to-preview")
        page.wait_for_selector("#preview-busy:has-text('Checked in')")
        step("3-preview", "#step-preview")
        upload(page)
        step("5-report", "#step-report")
        assert len(emulator.signals()) == 4  # the sample's valid rows whose calls are there
    finally:
        context.close()


# ------------------------------------------------- every API's own settings (issue 29's first part)


def nowhere(page, served, *secrets: str) -> None:
    """No token (access or refresh) in the page, the server's output or any file of its state folder."""
    log = served.stop()
    for secret in secrets:
        assert secret not in page.content() and secret not in log
        for path in served.state.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def choose_api(page, api: str, settings: dict[str, str], address: str | None = None) -> None:
    page.select_option("#api", api)
    if address is not None:
        page.fill("#base-url-input", address)
        page.dispatch_event("#base-url-input", "change")
    for name, value in settings.items():
        page.fill(f"#own-{name}", value)


def test_a_calls_in_progress_bulk_update_with_an_ended_call_from_the_page(tmp_path, start_page, tab):
    from test_calls_in_progress import LIVE_CALLS, ORIGIN, LiveEmulator

    calls_file = tmp_path / "live_calls.json"
    calls_file.write_text(json.dumps(LIVE_CALLS), encoding="utf-8")
    emulator = LiveEmulator(live_calls_file=calls_file, clock_start=ORIGIN, clock_speed=0.0)
    try:
        updates = write_csv(
            tmp_path / "dispositions.csv",
            [
                ["transaction_id", "external_unique_id", "Five9 Disposition"],
                ["T-1", "crm-1", "SALE"],
                ["T-3", "", "SALE"],  # the call is over
            ],
        )
        served = start_page(emulator.base_url)
        page = tab
        page.goto(served.url)
        # only the chosen API's own settings are shown, from its declaration
        assert page.is_hidden("#own-organization_id") and page.is_hidden("#own-account_id")
        choose_api(page, "calls_in_progress", {"organization_type": "Advertiser", "organization_id": "1234"})
        assert page.is_visible("#own-organization_id") and page.is_hidden("#own-account_id")
        assert page.is_hidden("#refresh-token")  # the platform's token is renewed by nobody
        page.fill("#token", TOKEN)
        accessible(page, "the first step with a Calls In Progress organization")
        page.set_input_files("#file-input", str(updates))
        page.wait_for_selector("#to-columns:not([disabled])")
        page.click("#to-columns")
        page.wait_for_selector("#columns-body tr")
        assert "custom data: Five9 Disposition" in page.inner_text("#columns-body")
        page.click("#to-preview")
        page.wait_for_selector("#start-upload:not([disabled])")
        upload(page)
        assert "1 failed: the call had ended (CallEnded)" in page.inner_text("#failed-classes")
        rows = download(page, "#download-csv", tmp_path)
        assert [(r["status"], r["failure_kind"]) for r in rows] == [("updated", ""), ("failed", "call-ended")]
        calls = emulator.calls()
        assert calls["T-1"]["external_unique_id"] == "crm-1" and calls["T-3"]["updates"] == 0
        assert {c["name"]: c["value"] for c in calls["T-1"]["custom_data"]}["Five9 Disposition"] == "SALE"
        nowhere(page, served, TOKEN)
    finally:
        emulator.stop()


def test_an_engage_voice_disposition_file_with_a_callback_time_from_the_page(tmp_path, start_page, tab):
    import datetime as dt
    from zoneinfo import ZoneInfo

    from test_engage import ACCESS, ACCOUNT, ENDED, KIM_1, PACO_1, REFRESH, EngageEmulator

    engage = EngageEmulator(engage_rate_limit=100_000)
    try:
        callback = (dt.datetime.now(ZoneInfo("America/New_York")) + dt.timedelta(days=2)).replace(
            hour=10, minute=30, second=0, microsecond=0
        )
        rows = write_csv(
            tmp_path / "dispositions.csv",
            [
                ["uii", "disposition", "callback", "callBackDTS"],
                [PACO_1, "SALE", "false", ""],
                [KIM_1, "CALLBACK", "true", callback.strftime("%Y/%m/%d %H:%M:%S")],
                [ENDED, "NO ANSWER", "", ""],
            ],
        )
        served = start_page(engage.base_url)  # started with the platform's address, not Engage's
        page = tab
        page.goto(served.url)
        page.fill("#timezone", "America/New_York")
        page.select_option("#api", "engage_disposition")
        assert "This API's address looks like https://engage.ringcentral.com/voice" in page.inner_text(
            "#base-url-example"
        )
        choose_api(page, "engage_disposition", {"account_id": ACCOUNT}, address=engage.voice)
        assert page.inner_text("#base-url-example") == ""
        assert page.is_visible("#refresh-token") and page.is_hidden("#own-organization_id")
        page.fill("#token", ACCESS)
        page.fill("#refresh-token", REFRESH)
        page.set_input_files("#file-input", str(rows))
        page.wait_for_selector("#to-columns:not([disabled])")
        page.click("#to-columns")
        page.wait_for_selector("#columns-body tr")
        page.click("#to-preview")
        page.wait_for_selector("#start-upload:not([disabled])")
        assert numbers(page.inner_text("#counts"))[:3] == [3, 3, 0]
        assert callback.strftime("%Y-%m-%d 10:30:00 E") in page.inner_text("#clocks-body")  # EST or EDT
        upload(page)
        assert "1 failed: the call had ended (CallEnded)" in page.inner_text("#failed-classes")
        report = {r["uii"]: r for r in download(page, "#download-xlsx", tmp_path)}
        assert report[PACO_1]["status"] == report[KIM_1]["status"] == "updated"
        assert report[ENDED]["failure_kind"] == "call-ended"
        calls = engage.calls()
        assert calls[KIM_1]["disposition"]["callBackDTS"] == callback.strftime("%Y%m%d%H%M%S")
        assert calls[PACO_1]["disposition"]["disposition"] == "SALE"
        nowhere(page, served, ACCESS, REFRESH)
    finally:
        engage.stop()


def live_page(tmp_path, start_page):
    from test_calls_in_progress import LIVE_CALLS, ORIGIN, LiveEmulator

    calls_file = tmp_path / "live_calls.json"
    calls_file.write_text(json.dumps(LIVE_CALLS), encoding="utf-8")
    emulator = LiveEmulator(live_calls_file=calls_file, clock_start=ORIGIN, clock_speed=0.0)
    served = start_page(emulator.base_url)
    return emulator, served


def test_a_lookups_file_from_the_page(tmp_path, start_page, tab):
    emulator, served = live_page(tmp_path, start_page)
    try:
        crm = write_csv(
            tmp_path / "crm.csv",
            [
                ["CRM Id", "transaction_id", "external_unique_id"],
                ["A1", "T-1", ""],
                ["A2", "T-404", ""],
                ["A3", "", "crm-2"],
            ],
        )
        page = tab
        page.goto(served.url)
        choose_api(page, "calls_in_progress", {"organization_type": "Advertiser", "organization_id": "1234"})
        page.fill("#token", TOKEN)
        page.set_input_files("#file-input", str(crm))
        page.wait_for_selector("#to-columns:not([disabled])")
        page.select_option("#calls-format", "xlsx")
        page.click("#calls-lookups")
        page.wait_for_selector("#calls-export:not([hidden])")
        assert page.inner_text("#calls-status") == "3 lookup(s): 2 found, 1 not-found"
        accessible(page, "the calls view after lookups")
        rows = {r["CRM Id"]: r for r in download(page, "#calls-export", tmp_path)}
        assert {k: r["lookup_status"] for k, r in rows.items()} == {"A1": "found", "A2": "not-found", "A3": "found"}
        assert "T-2" in rows["A3"].values(), rows["A3"]  # found by its external id
        assert all(c["updates"] == 0 for c in emulator.calls().values())  # a lookup changes nothing

        # the listing's filters, as the command line's: one call by its transaction id
        page.fill("#calls-transaction_id", "T-2")
        page.click("#calls-list")
        page.wait_for_function("() => document.getElementById('calls-status').textContent.includes('in progress')")
        assert page.locator("#calls-body tr").count() == 1
        assert page.get_attribute("#calls-body tr", "data-call") == "T-2"
    finally:
        emulator.stop()


def test_a_watch_keeps_a_call_that_started_and_ended_between_two_looks_of_the_page(tmp_path, start_page, tab):
    emulator, served = live_page(tmp_path, start_page)
    try:
        page = tab
        page.goto(served.url)
        page.select_option("#api", "calls_in_progress")
        page.fill("#own-organization_type", "Advertiser")
        page.fill("#own-organization_id", "1234")
        page.fill("#token", TOKEN)
        page.fill("#calls-every", "0.2")
        page.select_option("#calls-format", "jsonl")
        page.click("#calls-watch")
        page.wait_for_selector("#calls-body tr[data-call='T-1']")
        # T-5 starts 100 s after the clock's start and lasts 40 s: it comes and goes while the page waits
        page.evaluate(
            "() => { window.shown = new Set(); new MutationObserver(() => { for (const r of "
            "document.querySelectorAll('#calls-body tr')) window.shown.add(r.dataset.call + ':' + "
            "r.lastChild.textContent); }).observe(document.getElementById('calls-body'), {childList: true}); }"
        )
        emulator.move_clock(120)
        time.sleep(0.6)  # three looks of the watch
        emulator.move_clock(60)
        page.wait_for_function("() => [...window.shown].includes('T-5:ended')")
        row = page.inner_text("#calls-body tr[data-call='T-5']")
        assert "+17185550142" in row and row.endswith("ended")
        assert page.inner_text("#calls-body tr[data-call='T-1']").endswith("on")
        page.click("#calls-stop")
        page.wait_for_selector("#calls-export:not([hidden])")
        assert page.inner_text("#calls-status").startswith("captured 4 call(s) in ")
        with page.expect_download() as done:
            page.click("#calls-export")
        path = tmp_path / done.value.suggested_filename
        done.value.save_as(path)
        exported = {json.loads(line)["transaction_id"] for line in path.read_text().splitlines()}
        assert {"T-1", "T-2", "T-5", "T-6"} <= exported and "T-3" not in exported
    finally:
        emulator.stop()


def engage_page(tmp_path, start_page, page, **config):
    from test_engage import ACCESS, ACCOUNT, EngageEmulator

    engage = EngageEmulator(**{"engage_rate_limit": 100_000, **config})
    served = start_page(engage.base_url)
    page.goto(served.url)
    page.fill("#base-url-input", engage.voice)
    page.dispatch_event("#base-url-input", "change")
    page.select_option("#api", "engage_recording")
    page.fill("#own-account_id", ACCOUNT)
    page.fill("#token", ACCESS)
    return engage, served


def test_a_recording_toggle_chosen_from_the_engage_listing(tmp_path, start_page, tab):
    from test_engage import ACCESS, KIM_1, PACO_1, REFRESH

    page = tab
    engage, served = engage_page(tmp_path, start_page, page)
    page.fill("#token", "an-expired-access-token")  # renewed with the refresh token on the first 401
    page.fill("#refresh-token", REFRESH)
    try:
        before = {u: c["recording"] for u, c in engage.calls().items()}
        page.select_option("#calls-listing", "engage")
        assert page.is_visible("#calls-product") and page.is_hidden("#calls-transaction_id")
        page.click("#calls-list")
        page.wait_for_selector(f"#calls-body tr[data-call='{PACO_1}']")
        accessible(page, "the Engage listing")
        for uii in (PACO_1, KIM_1):
            page.check(f"#calls-body input[value='{uii}']")
        assert page.inner_text("#calls-ticked") == "2 calls ticked"
        folder = SHOTS if os.environ.get("SIGNAL_UPLOADER_SCREENSHOTS") else tmp_path
        folder.mkdir(exist_ok=True)
        page.locator("#calls").screenshot(path=str(folder / "1920-calls.png"))
        page.select_option("#calls-action", label="Turn recording off")
        page.click("#calls-make-file")
        page.wait_for_selector("#step-columns:not([hidden])")
        assert page.input_value("#api") == "engage_recording"
        assert page.locator("#columns-body th").all_inner_texts() == ["uii", "record"]
        page.click("#to-preview")
        page.wait_for_selector("#start-upload:not([disabled])")
        assert numbers(page.inner_text("#counts"))[:3] == [2, 2, 0]
        assert engage.requests_log() == [] or all("toggle" not in str(r) for r in engage.requests_log())
        upload(page)
        assert "access token renewed once" in page.inner_text("#progress-text")  # said, never shown
        after = {u: c["recording"] for u, c in engage.calls().items()}
        assert after[PACO_1] is False and after[KIM_1] is False
        assert {u: v for u, v in after.items() if u not in (PACO_1, KIM_1)} == {
            u: v for u, v in before.items() if u not in (PACO_1, KIM_1)
        }
        report = {r["uii"]: r for r in download(page, "#download-csv", tmp_path)}
        assert report[PACO_1]["status"] == report[KIM_1]["status"] == "updated"
        nowhere(page, served, ACCESS, REFRESH, "an-expired-access-token", "engage-access-", "engage-refresh-")
    finally:
        engage.stop()


def test_manual_calls_under_lost_answers_are_dialled_once_and_the_unknown_sent_only_when_confirmed(
    tmp_path, start_page, tab
):
    from test_engage import AGENTS

    page = tab
    engage, served = engage_page(tmp_path, start_page, page, lost_answer_rate=0.5, seed=7)
    try:
        rows = [["username", "destination", "ringDuration", "callerId"]]
        rows += [[AGENTS[i % 3], f"(650) 555-{1000 + i}", "20", "866-123-4567"] for i in range(12)]
        page.select_option("#api", "engage_manual_call")
        page.set_input_files("#file-input", str(write_csv(tmp_path / "dial.csv", rows)))
        page.wait_for_selector("#to-columns:not([disabled])")
        page.click("#to-columns")
        page.click("#to-preview")
        page.wait_for_selector("#start-upload:not([disabled])")
        asked = []

        def answer(dialog, accept: bool) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        page.once("dialog", lambda d: answer(d, False))
        page.click("#start-upload")
        page.wait_for_timeout(300)
        assert asked and asked[0].startswith("Send 12 Engage Voice manual call") and engage.state()["dials"] == []
        page.evaluate(
            "() => { window.seen = []; new MutationObserver(() => window.seen.push("
            "document.getElementById('progress-text').textContent)).observe("
            "document.getElementById('progress-text'), {childList: true, characterData: true, subtree: true}); }"
        )
        page.once("dialog", lambda d: answer(d, True))
        page.click("#start-upload")
        page.wait_for_selector("#step-report:not([hidden])")
        # the Engage pace, shown while it runs, against the documented limit
        assert any("requests a minute (the API allows 120)" in text for text in page.evaluate("window.seen"))
        dials = [d["destination"] for d in engage.state()["dials"]]
        assert sorted(dials) == sorted(f"650555{1000 + i}" for i in range(12))  # each once
        report = download(page, "#download-csv", tmp_path)
        unknown = [r for r in report if r["status"] == "unknown"]
        assert unknown and {r["status"] for r in report} == {"created", "unknown"}
        assert f"unknown {len(unknown)}" in page.inner_text("#chart-caption")
        assert page.is_visible("#retry-unknown")

        # the analyst is asked, with the count; refused, nothing is dialled
        page.once("dialog", lambda d: answer(d, False))
        page.click("#retry-unknown")
        page.wait_for_timeout(300)
        assert f"Send again the {len(unknown)} row" in asked[-1] and len(engage.state()["dials"]) == 12
        engage.control("faults", {"lost_answer_rate": 0})
        page.once("dialog", lambda d: answer(d, True))
        page.click("#retry-unknown")
        page.wait_for_function(
            "() => document.getElementById('report-headline').textContent.startsWith('The retry is')"
        )
        assert len(engage.state()["dials"]) == 12 + len(unknown)
        assert f"created {len(unknown)}" in page.inner_text("#chart-caption")
        from test_engage import ACCESS

        assert ACCESS not in served.stop()
    finally:
        engage.stop()
