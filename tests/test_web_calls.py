"""The page's server starts the calls jobs of ``Run``: a listing, lookups of a file, a watch.

The real ``signal-uploader serve`` in a subprocess, driven over HTTP with its
access key as the page's own script does, against the emulator's calls in
progress. What a supervisor would check: the calls the page shows, the
lookups' answers, the exported file. The views that show them are driven in a browser in
test_web_importer.py.
"""

from __future__ import annotations

import csv
import io
import json
import time

import openpyxl
from test_calls_jobs import ONE_CALL, live_emulator
from test_web import Page

from conftest import TOKEN, write_csv

ORG_ENV = {"SIGNAL_UPLOADER_ORGANIZATION_TYPE": "Advertiser", "SIGNAL_UPLOADER_ORGANIZATION_ID": "1234"}


class Served(Page):
    """The page's server, asked as its script asks it (the key as a cookie, JSON in and out)."""

    def call(self, method: str, path: str, body: dict | bytes | None = None, headers: dict | None = None):
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        sent = {"Cookie": f"signal_uploader_key={self.key}", "Content-Type": "application/json", **(headers or {})}
        status, answer_headers, content = self.request(method, path, headers=sent, body=raw)
        return status, answer_headers, content

    def json(self, method: str, path: str, body: dict | bytes | None = None, headers: dict | None = None):
        status, _, content = self.call(method, path, body, headers)
        return status, json.loads(content)

    def until_done(self, calls_id: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, state = self.json("GET", f"/api/calls/{calls_id}")
            assert status == 200, state
            if state["state"] != "running":
                return state
            time.sleep(0.05)
        raise AssertionError(f"the calls job did not end: {state}")


def test_the_page_lists_the_calls_on_now_and_exports_them(tmp_path):
    emulator = live_emulator(tmp_path, ONE_CALL)
    served = Served(tmp_path, emulator.base_url, env={"INVOCA_API_TOKEN": TOKEN, **ORG_ENV})
    try:
        status, started = served.json("POST", "/api/calls", {"listing": "calls_in_progress"})
        assert status == 200, started
        state = served.until_done(started["calls"])
        assert state["state"] == "finished" and state["message"] == ""
        assert [c["transaction_id"] for c in state["calls"]] == ["T-1"] and state["captured"] == 1
        assert state["headline"].endswith("call(s) in progress")
        status, headers, content = served.call("GET", f"/api/calls/{started['calls']}/export")
        assert status == 200 and "calls.csv" in headers.get("content-disposition", "")
        rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
        assert [r["transaction_id"] for r in rows] == ["T-1"]
    finally:
        log = served.stop()
        emulator.stop()
    assert TOKEN not in log


def test_the_page_looks_up_a_stored_file_row_by_row_into_a_workbook(tmp_path):
    emulator = live_emulator(tmp_path, ONE_CALL)
    served = Served(tmp_path, emulator.base_url, env={"INVOCA_API_TOKEN": TOKEN, **ORG_ENV})
    try:
        source = write_csv(tmp_path / "crm.csv", [["CRM Id", "transaction_id"], ["A1", "T-1"], ["A2", "T-404"]])
        status, stored = served.json("POST", "/api/files", source.read_bytes(), {"X-File-Name": "crm.csv"})
        assert status == 200, stored
        status, started = served.json("POST", "/api/calls", {"file": stored["id"], "format": "xlsx"})
        assert status == 200, started
        state = served.until_done(started["calls"])
        assert state["job"] == "lookups" and state["lookups"] == {"found": 1, "not-found": 1}
        status, headers, content = served.call("GET", f"/api/calls/{started['calls']}/export")
        assert status == 200 and "calls.xlsx" in headers.get("content-disposition", "")
        sheet = openpyxl.load_workbook(io.BytesIO(content), read_only=True).active
        rows = list(sheet.iter_rows(values_only=True))
        header = list(rows[0])
        found = {row[header.index("CRM Id")]: row[header.index("lookup_status")] for row in rows[1:]}
        assert found == {"A1": "found", "A2": "not-found"}
    finally:
        served.stop()
        emulator.stop()


def test_the_page_watches_until_stopped_then_exports_what_it_saw(tmp_path):
    emulator = live_emulator(tmp_path, ONE_CALL)
    served = Served(tmp_path, emulator.base_url, env={"INVOCA_API_TOKEN": TOKEN, **ORG_ENV})
    try:
        status, started = served.json("POST", "/api/calls", {"watch": 0.2, "format": "jsonl"})
        assert status == 200, started
        deadline = time.monotonic() + 20
        while served.json("GET", f"/api/calls/{started['calls']}")[1]["polls"] < 3:
            assert time.monotonic() < deadline, "the watch did not poll"
            time.sleep(0.05)
        status, running = served.json("POST", "/api/calls", {"watch": 1})
        assert status == 400 and "already" in running["error"]  # one calls job at a time
        assert served.json("POST", f"/api/calls/{started['calls']}/cancel", {})[0] == 200
        state = served.until_done(started["calls"])
        assert state["job"] == "watch" and state["state"] == "finished" and state["polls"] >= 3
        [call] = state["calls"]
        assert call["transaction_id"] == "T-1" and call["first_seen"] <= call["last_seen"]
        status, _, content = served.call("GET", f"/api/calls/{started['calls']}/export")
        assert status == 200 and [json.loads(line)["transaction_id"] for line in content.splitlines()] == ["T-1"]
    finally:
        served.stop()
        emulator.stop()


def test_the_page_says_what_is_missing_in_its_own_words(tmp_path):
    emulator = live_emulator(tmp_path, ONE_CALL)
    served = Served(tmp_path, emulator.base_url, env=ORG_ENV)  # no token given to the page yet
    try:
        status, answer = served.json("POST", "/api/calls", {"listing": "calls_in_progress"})
        assert status == 400 and answer["error"] == "no API token for the Calls In Progress API"
        status, answer = served.json("POST", "/api/calls", {"format": "../../x.csv"})
        assert status == 400 and "csv, xlsx or jsonl" in answer["error"]
        status, answer = served.json("GET", "/api/calls/nope")
        assert status == 400 and answer["error"] == "no such calls job on this page"
        assert emulator.requests == 0
    finally:
        served.stop()
        emulator.stop()
