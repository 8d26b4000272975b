"""The local web page in a real browser (Debian's chromium, driven by Playwright) against the real emulator.

The page's server is the real ``signal-uploader serve`` in a subprocess; the
browser drives it as an analyst would, and the tests check what the analyst
would check: the counts on the page, the downloaded report, the emulator's
final state. ``SIGNAL_UPLOADER_SCREENSHOTS=1`` (``make screenshots``) saves
each step's picture into tests/screenshots/ for the README.
"""

from __future__ import annotations

import base64
import csv
import http.client
import io
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

# Not importorskip: `make test` installs playwright, and a missing one must fail, not pass quietly.
import playwright.sync_api as playwright
import pytest
from openpyxl import load_workbook
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from conftest import ROOT, SAMPLES, TOKEN, write_csv

SHOTS = ROOT / "tests" / "screenshots"
TZ = "America/Los_Angeles"


def chromium() -> str:
    # CHROMIUM names another Chromium-based browser (GitHub's Ubuntu runners have google-chrome).
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed: `make test` installs it (apt-get install -y chromium)")
    return path


class Page:
    """``signal-uploader serve`` in a subprocess: its address (with the key), its log."""

    def __init__(self, tmp_path: Path, base_url: str, *args, env: dict | None = None):
        self.ready = tmp_path / "page.url"
        self.log = tmp_path / "page.log"
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith(("INVOCA_", "SIGNAL_UPLOADER_", "ENGAGE_VOICE_"))
        }
        environment.update(env or {})
        self.state = tmp_path / "state"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uploader",
                    "serve",
                    "--port",
                    "0",
                    "--base-url",
                    base_url,
                    "--state-dir",
                    self.state,
                    "--ready-file",
                    self.ready,
                    *args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=ROOT,
            )
        for _ in range(200):
            if self.ready.exists() and self.ready.read_text():
                break
            if self.process.poll() is not None:
                raise AssertionError(self.log.read_text())
            time.sleep(0.05)
        self.url = self.ready.read_text()
        match = re.match(r"http://([^/]+)/\?key=(.+)$", self.url)
        self.host, self.key = match.group(1), match.group(2)

    def request(self, method: str, path: str, *, headers: dict | None = None, body: bytes | None = None):
        connection = http.client.HTTPConnection(self.host, timeout=10)
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()

    def stop(self) -> str:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_page(tmp_path):
    pages = []

    def start(base_url: str, *args, env: dict | None = None) -> Page:
        page = Page(tmp_path, base_url, *args, env=env)
        pages.append(page)
        return page

    yield start
    for page in pages:
        page.stop()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=chromium(),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def tab(browser):
    context = browser.new_context(timezone_id=TZ, accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors


def shot(page, tmp_path: Path, name: str, step: str) -> None:
    """A picture of one step's section (README), taken by the test's own browser."""
    folder = SHOTS if os.environ.get("SIGNAL_UPLOADER_SCREENSHOTS") else tmp_path
    folder.mkdir(exist_ok=True)
    page.locator(step).screenshot(path=str(folder / name))


def drop_file(page, path: Path) -> None:
    """Drag a file from the desktop onto the drop zone (the browser's own drop event, with the file in it)."""
    data = base64.b64encode(path.read_bytes()).decode()
    transfer = page.evaluate_handle(
        """([data, name]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name));
        return transfer;
    }""",
        [data, path.name],
    )
    page.dispatch_event("#drop", "dragover", {"dataTransfer": transfer})
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})


def report_rows(path: Path) -> list[dict]:
    if path.suffix == ".xlsx":
        values = list(load_workbook(path).active.iter_rows(values_only=True))
        return [{k: ("" if v is None else str(v)) for k, v in zip(values[0], row)} for row in values[1:]]
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def numbers(text: str) -> list[int]:
    return [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", text)]


# ----------------------------------------------------------------- the steps


def test_an_analyst_drops_a_workbook_fixes_a_cell_uploads_and_downloads_the_report(tmp_path, emulator, start_page, tab):
    served = start_page(emulator.base_url)  # no token in its environment: the page asks for it
    page = tab
    page.goto(served.url)
    assert "key=" not in page.url  # the key left the address bar for a cookie
    assert page.input_value("#timezone") == TZ  # the browser's own zone, by default

    # 1. the file, by drag and drop; the sheet; the timezone picked from the searchable list; the token
    drop_file(page, SAMPLES / "signals.xlsx")
    page.wait_for_selector("#to-columns:not([disabled])")
    assert page.input_value("#sheet") == "Conversions"
    assert page.locator("#sheet option").all_inner_texts() == ["Conversions", "Notes"]
    page.fill("#timezone", "")
    page.fill("#timezone", "America/Los_Angeles")
    page.fill("#token", TOKEN)
    shot(page, tmp_path, "1-file.png", "#step-file")
    page.click("#to-columns")

    # 2. columns: each header as recognised; 'Notes' is not sent
    page.wait_for_selector("#columns-body tr")
    recognised = dict(
        zip(
            page.locator("#columns-body th").all_inner_texts(),
            page.locator("#columns-body td:nth-child(2)").all_inner_texts(),
        )
    )
    assert recognised["Outcome Name"] == "name — exact match"
    assert recognised["Notes"] == "no field matches: not sent"
    assert page.input_value("#token") == ""  # handed to the server, gone from the page
    shot(page, tmp_path, "2-columns.png", "#step-columns")
    page.click("#to-preview")

    # 3. preview: counts, reasons, the bad cells marked; nothing sent yet
    page.wait_for_selector("#invalid-body tr[id^=row-]")
    assert numbers(page.inner_text("#counts")) == [7, 5, 2, 1]
    invalid = page.inner_text("#invalid-body")
    assert "scientific notation" in invalid and "Amount has more than 2 decimal places" in invalid
    assert page.locator("#invalid-body input[aria-invalid=true]").count() == 2
    assert "ignored column(s) the API does not take: 'Notes'" in page.inner_text("#warnings")
    assert '"partner_unique_id": "X-1"' in page.inner_text("#first-requests")
    assert emulator.signals() == [] and emulator.requests == 0
    shot(page, tmp_path, "3-preview.png", "#step-preview")

    # fix the sale amount of row 7: checked again at once
    cell = page.locator('#row-7 input[data-header="Sale Amount"]')
    cell.fill("12.34")
    cell.press("Enter")
    page.wait_for_selector("#row-7 .fixed")
    assert numbers(page.inner_text("#counts")) == [7, 6, 1, 1]
    assert page.inner_text("#start-upload") == "Upload the 6 valid rows"
    shot(page, tmp_path, "3-preview-fixed.png", "#step-preview")

    # 4. upload, watched to the end
    page.click("#start-upload")
    page.wait_for_selector("#step-report:not([hidden])")
    progress = page.locator("#progress")
    assert progress.get_attribute("value") == progress.get_attribute("max") == "7"
    assert page.inner_text("#report-headline").startswith("The upload is finished.")
    chart = page.inner_text("#chart-caption")
    assert "created 5" in chart and "invalid 1" in chart and "failed 1" in chart
    assert "1 failed: RecordNotFound" in page.inner_text("#failed-classes")
    shot(page, tmp_path, "5-report.png", "#step-report")

    # 5. the report, downloaded as the analyst would
    with page.expect_download() as download:
        page.click("#download-xlsx")
    report = tmp_path / download.value.suggested_filename
    download.value.save_as(report)
    rows = {int(r["row"]): r for r in report_rows(report)}
    assert [rows[n]["status"] for n in range(2, 9)] == [
        "created",
        "created",
        "created",
        "created",
        "invalid",
        "created",
        "failed",
    ]
    assert rows[7]["Sale Amount"] == "12.34"  # the corrected cell is what the report shows
    with page.expect_download() as download:
        page.click("#download-csv")
    csv_report = tmp_path / download.value.suggested_filename
    download.value.save_as(csv_report)
    assert [r["status"] for r in report_rows(csv_report)] == [rows[n]["status"] for n in range(2, 9)]

    # the emulator's final state: every valid row once, the corrected amount as typed
    landed = {s["partner_unique_id"]: s for s in emulator.signals()}
    assert sorted(landed) == ["X-1", "X-2", "X-3", "X-4", "X-6"]
    assert landed["X-6"]["sale_amount"] in ("12.34", 12.34)

    # past runs list it; the token is nowhere: page, log, report, files
    assert "signals.xlsx" in page.inner_text("#past-body")
    page.wait_for_function("() => document.getElementById('sources-body').textContent.includes('signals.xlsx')")
    assert any(
        line.startswith("signals.xlsx\tsignals\t5\t0\t")  # what the journal holds: 5 confirmed
        for line in page.locator("#sources-body tr").all_inner_texts()
    )
    assert TOKEN not in page.content()
    log = served.stop()
    assert TOKEN not in log
    for path in served.state.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_cancel_midway_leaves_a_complete_report_and_retry_sends_the_rest_once(tmp_path, make_emulator, start_page, tab):
    rows = 400
    calls = write_csv(
        tmp_path / "calls.csv",
        [["transaction_id", "start_time", "calling_phone_number", "duration_in_seconds"]]
        + [[f"CALL-{i:06d}", 1793639700 + 60 * i, f"+1415555{i:04d}", 60] for i in range(rows)],
    )
    upload = write_csv(
        tmp_path / "orders.csv",
        [["transaction_id", "name", "partner_unique_id", "sale_amount"]]
        + [[f"CALL-{i:06d}", "Sale", str(i), f"{i}.99"] for i in range(rows)],
    )
    emulator = make_emulator(calls_file=calls, latency_ms=150)
    served = start_page(emulator.base_url, env={"INVOCA_API_TOKEN": TOKEN})
    page = tab
    page.goto(served.url)
    page.set_input_files("#file-input", str(upload))
    page.wait_for_selector("#to-columns:not([disabled])")
    assert "already held by the server" in page.inner_text("#token-state")
    page.click("#to-columns")
    page.click("#to-preview")
    page.wait_for_selector("#start-upload:not([disabled])")
    assert numbers(page.inner_text("#counts"))[:3] == [rows, rows, 0]
    page.click("#start-upload")
    page.wait_for_function("() => Number(document.getElementById('progress').value) >= 40")
    shot(page, tmp_path, "4-upload.png", "#step-upload")
    page.click("#cancel")
    page.wait_for_selector("#step-report:not([hidden])")
    assert page.inner_text("#report-headline").startswith("The upload was cancelled; the report is complete.")
    # the rows a cancel left were not sent, not failed: the bar stops where the answers stopped
    progress = page.inner_text("#progress-text")
    answered, total = numbers(progress)[:2]
    assert total == rows and answered < rows and "not sent" in progress and " 0 failed" in progress
    assert page.get_attribute("#progress", "value") == str(answered)
    chart = page.inner_text("#chart-caption")
    assert "not sent" in chart and "failed" not in chart

    with page.expect_download() as download:
        page.click("#download-csv")
    report = tmp_path / "cancelled.csv"
    download.value.save_as(report)
    lines = report_rows(report)
    assert [int(r["row"]) for r in lines] == list(range(2, rows + 2))  # every row has its line
    statuses = {r["status"] for r in lines}
    assert statuses <= {"created", "failed"}
    created = sum(r["status"] == "created" for r in lines)
    assert 40 <= created < rows
    assert all(r["error_class"] == "NotSent" for r in lines if r["status"] == "failed")
    assert len(emulator.signals()) == created  # what the report says was created, and nothing more

    # one button sends the rows not sent; each lands exactly once
    page.click("#retry-failed")
    page.wait_for_function(
        "() => document.getElementById('report-headline').textContent.startsWith('The retry is finished')",
        timeout=60_000,
    )
    signals = emulator.signals()
    assert len(signals) == rows
    assert sorted(int(s["partner_unique_id"]) for s in signals) == list(range(rows))
    # the retry's own counts: the rows it sent, not the whole report's (which the line below says)
    assert f"created {rows - created}" in page.inner_text("#chart-caption")
    assert page.inner_text("#report-whole") == f"The report now holds: {rows} created."
    page.wait_for_function("() => document.getElementById('past-body').textContent.includes('retry')")
    runs = page.locator("#past-body tr").all_inner_texts()
    assert len(runs) == 2 and "retry" in runs[0] and f"created {rows - created}" in runs[0] and "cancelled" in runs[1]


def test_keyboard_alone_goes_through_every_step(tmp_path, emulator, start_page, tab):
    served = start_page(emulator.base_url, env={"INVOCA_API_TOKEN": TOKEN})
    page = tab
    page.goto(served.url)

    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, button, textarea')]
        .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')
                       && !c.getAttribute('aria-labelledby') && !(c.tagName === 'BUTTON' && c.textContent.trim()))
        .map((c) => c.id || c.outerHTML)""")
    assert unlabelled == []

    def tab_to(selector: str, limit: int = 60) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("#file-input")
    chooser = None
    for _ in range(2):  # a loaded CI machine once lost the first key press; a person would press again
        try:
            with page.expect_file_chooser(timeout=10_000) as opened:
                page.keyboard.press("Space")
            chooser = opened.value
            break
        except PlaywrightTimeout:
            assert page.evaluate("document.activeElement.id") == "file-input"
    assert chooser is not None, "Space on the focused file input never opened the file chooser"
    chooser.set_files(str(SAMPLES / "signals.csv"))
    page.wait_for_selector("#to-columns:not([disabled])")
    tab_to("#to-columns")
    page.keyboard.press("Enter")
    page.wait_for_selector("#columns-body tr")
    tab_to("#to-preview")
    page.keyboard.press("Enter")
    page.wait_for_selector("#invalid-body tr[id^=row-]")
    assert numbers(page.inner_text("#counts"))[:3] == [13, 10, 3]
    tab_to('input[data-row="9"]')
    page.keyboard.press("Control+A")
    page.keyboard.type("1200.00")
    page.keyboard.press("Enter")
    page.wait_for_selector("#row-9 .fixed")
    assert numbers(page.inner_text("#counts"))[:3] == [13, 11, 2]
    tab_to("#start-upload")
    page.keyboard.press("Enter")
    page.wait_for_selector("#step-report:not([hidden])")
    tab_to("#download-xlsx")
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    report = tmp_path / "keyboard.xlsx"
    download.value.save_as(report)
    statuses = [r["status"] for r in report_rows(report)]
    assert statuses.count("invalid") == 2 and "created" in statuses
    assert any(s["description"] == "Price typed with a currency sign" for s in emulator.signals())


def test_a_saved_mapping_is_offered_again_and_used_by_the_cli(tmp_path, emulator, start_page, tab):
    odd = write_csv(
        tmp_path / "crm export.csv",
        [["Call Ref", "Conversion", "Order", "Internal memo"], ["00000000-00000001", "Sale", "77", "do not send"]],
    )
    served = start_page(emulator.base_url, env={"INVOCA_API_TOKEN": TOKEN})
    page = tab
    page.goto(served.url)
    page.set_input_files("#file-input", str(odd))
    page.wait_for_selector("#to-columns:not([disabled])")
    page.click("#to-columns")
    page.wait_for_selector("#columns-body tr")
    page.select_option('select[data-header="Call Ref"]', "transaction_id")
    page.select_option('select[data-header="Conversion"]', "name")
    page.select_option('select[data-header="Order"]', "partner_unique_id")
    page.select_option('select[data-header="Internal memo"]', "")
    page.fill("#mapping-name", "crm")
    page.click("#to-preview")
    page.wait_for_selector("#start-upload:not([disabled])")
    assert numbers(page.inner_text("#counts"))[:3] == [1, 1, 0]
    assert '"partner_unique_id": "77"' in page.inner_text("#first-requests")

    # the next file with the same headers (in another order, other case) gets the mapping back
    again = write_csv(
        tmp_path / "next week.csv",
        [["conversion", "CALL REF", "Internal memo", "Order"], ["Sale", "00000000-00000002", "x", "78"]],
    )
    page.set_input_files("#file-input", str(again))  # choosing another file starts over
    page.wait_for_selector("#to-columns:not([disabled])")
    page.click("#to-columns")
    page.wait_for_selector("#columns-body tr")
    assert "saved as “crm”" in page.inner_text("#columns-note")
    assert page.input_value('select[data-header="CALL REF"]') == "transaction_id"

    # and the command line reads the same file with --mapping crm
    from conftest import run_cli

    result = run_cli("upload", again, "--mapping", "crm", "--base-url", emulator.base_url, "--state-dir", served.state)
    assert result.code == 0, result.output
    assert [(s["call_transaction_id"], s["partner_unique_id"]) for s in emulator.signals()] == [
        ("00000000-00000002", "78")
    ]
    unknown = run_cli("validate", again, "--mapping", "nope", env={"SIGNAL_UPLOADER_STATE_DIR": str(served.state)})
    assert unknown.code == 2 and "no saved mapping named 'nope'" in unknown.output and "crm" in unknown.output


# ------------------------------------------------------------------ refusals


def test_requests_without_the_key_from_another_site_or_host_are_refused(tmp_path, emulator, start_page):
    served = start_page(emulator.base_url, env={"INVOCA_API_TOKEN": TOKEN})
    status, _, body = served.request("GET", "/")
    assert status == 403 and b"open the address" in body
    status, _, _ = served.request("GET", "/?key=wrong" + served.key[:4])
    assert status == 403
    status, _, _ = served.request("GET", "/api/state")
    assert status == 403

    status, headers, _ = served.request("GET", f"/?key={served.key}")
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"].split(";")[0]
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
    status, headers, body = served.request("GET", "/", headers={"Cookie": cookie})
    assert status == 200 and b"Choose a file" in body
    assert "script-src 'self'" in headers["content-security-policy"]

    # another website posting with the analyst's cookie: refused by its Origin, and nothing changes
    status, _, body = served.request(
        "POST",
        "/api/token",
        headers={"Cookie": cookie, "Origin": "https://evil.example", "Content-Type": "application/json"},
        body=b'{"api": "signals", "token": "attacker"}',
    )
    assert status == 403 and b"other websites" in body
    status, _, _ = served.request(
        "POST",
        "/api/token",
        headers={"Cookie": cookie, "Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"},
        body=b'{"api": "signals", "token": "attacker"}',
    )
    assert status == 403
    # DNS rebinding: a foreign host name that resolves to 127.0.0.1
    status, _, body = served.request("GET", "/api/state", headers={"Cookie": cookie, "Host": "evil.example:80"})
    assert status == 403 and b"answers to" in body
    # its own origin passes
    status, _, _ = served.request(
        "POST",
        "/api/token",
        headers={"Cookie": cookie, "Origin": f"http://{served.host}", "Content-Type": "application/json"},
        body=b'{"api": "signals", "token": "mine"}',
    )
    assert status == 200
    assert served.stop().count(served.key) == 1  # printed once in the address, never logged


def test_an_upload_above_the_limit_is_refused_with_a_clear_message(tmp_path, emulator, start_page, tab):
    served = start_page(emulator.base_url, "--max-upload-mb", "0.01", env={"INVOCA_API_TOKEN": TOKEN})
    big = write_csv(
        tmp_path / "big.csv", [["transaction_id", "name"]] + [[f"00000000-{i:08X}", "Sale"] for i in range(1000)]
    )
    page = tab
    page.goto(served.url)
    page.set_input_files("#file-input", str(big))
    page.wait_for_selector("#message:not([hidden])")
    message = page.inner_text("#message")
    assert "big.csv is larger than this page accepts (10 KB)" in message
    assert "signal-uploader" not in message and "--" not in message  # the page's words, not the command line's
    assert "Up to 10 KB." in page.inner_text("#drop")  # not "Up to 0 MB"
    assert page.is_disabled("#to-columns")
    assert not list(served.state.rglob("big.csv"))  # nothing kept of it


def test_a_workbook_sent_on_the_page_then_retried_there_is_not_sent_again_by_the_command_line(
    tmp_path, make_emulator, start_page, tab
):
    """The page, its retry button and the CLI on the same workbook meet in one journal, under its own name."""
    from test_reliability import HEADER, many_calls

    from conftest import run_cli, write_xlsx

    emulator = make_emulator(calls_file=many_calls(tmp_path, 12), fail_rate=0.5, seed=3)
    book = write_xlsx(
        tmp_path / "June Bulk.xlsx",
        [HEADER] + [[f"CALL-{i:05d}", "Sale", str(i), f"order {i}", i + 0.99] for i in range(12)],
    )
    config = tmp_path / "page.toml"
    config.write_text("max_attempts = 1\nstop_after_failures = 0\n")  # a failure stays a failure
    served = start_page(emulator.base_url, "--config", config, env={"INVOCA_API_TOKEN": TOKEN})
    page = tab
    page.goto(served.url)
    page.set_input_files("#file-input", str(book))
    page.wait_for_selector("#to-columns:not([disabled])")
    page.click("#to-columns")
    page.click("#to-preview")
    page.wait_for_selector("#start-upload:not([disabled])")
    page.click("#start-upload")
    page.wait_for_selector("#step-report:not([hidden])")
    created = len(emulator.signals())
    assert 0 < created < 12  # about half failed
    assert not page.locator("#retry-failed").is_disabled()

    emulator.control("faults", {"fail_rate": 0})  # the API recovers; the analyst sends the failed rows again
    page.click("#retry-failed")
    page.wait_for_function("() => document.getElementById('past-body').textContent.includes('retry')")
    page.wait_for_function(
        "() => document.getElementById('report-headline').textContent.startsWith('The retry is finished')"
    )
    assert len(emulator.signals()) == 12
    sent = emulator.requests

    # The nightly job, or a colleague at a terminal, uploads the analyst's own workbook: nothing is sent again.
    result = run_cli("upload", book, "--base-url", emulator.base_url, "--state-dir", served.state, "--timezone", TZ)
    assert result.code == 0, result.output
    assert emulator.requests == sent
    assert {r["status"] for r in report_rows(tmp_path / "June Bulk.results.xlsx")} == {"skipped"}

    # What the journals know: one source, by the name the analyst gave it, all 12 rows confirmed.
    page.reload()
    page.wait_for_function("() => document.getElementById('sources-body').textContent.includes('June Bulk.xlsx')")
    lines = page.locator("#sources-body tr").all_inner_texts()
    assert len(lines) == 1 and lines[0].startswith("June Bulk.xlsx\tsignals\t12\t"), lines
    assert "files" not in lines[0]  # not the page's stored copy
