"""Answers the API never sends: none may count as a success, kill a worker, hold a row
past --timeout, fill memory, or keep a run going for hours. Real CLI, hostile server
on loopback (tests/hostile_server.py)."""

from __future__ import annotations

import time

import pytest
from test_cli_upload import report_rows
from test_hostile import peak_rss_mb

from conftest import TOKEN, assert_no_traceback, run_cli, write_csv
from hostile_server import HostileServer

HEADER = ["transaction_id", "name", "partner_unique_id"]


def signals(tmp_path, count, name="in.csv"):
    return write_csv(tmp_path / name, [HEADER] + [[f"00000000-{i:08d}", "Sale", str(i)] for i in range(count)])


@pytest.fixture
def hostile():
    servers = []

    def start(mode):
        server = HostileServer(mode)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.mark.parametrize(
    "mode, quoted",
    [
        ("html", "<html><head><title>Down for maintenance"),
        ("empty", "an empty body"),
        ("not-json", "OK, thanks"),
        ("no-record", '{\\"call\\"'),
        ("no-id", '{\\"signal\\": {\\"name\\"'),
        ("string-record", '{\\"signal\\": \\"created\\"}'),
    ],
)
def test_a_success_must_prove_itself(tmp_path, hostile, mode, quoted):
    server = hostile(mode)
    path = signals(tmp_path, 1)
    result = run_cli("upload", path, "--base-url", server.base_url, "--max-attempts", "1")
    assert result.code == 1, result.output
    assert_no_traceback(result)
    [row] = report_rows(tmp_path / "in.results.csv")
    assert (row["status"], row["error_class"], row["failure_kind"]) == ("failed", "InvalidAnswer", "retryable")
    assert quoted in row["error"], row["error"]
    assert row["signal_transaction_id"] == ""

    # Not journaled: once the server answers properly, the same command sends the row again.
    server.mode = "good"
    again = run_cli("upload", path, "--base-url", server.base_url)
    assert again.code == 0, again.output
    assert server.requests == 2
    [row] = report_rows(tmp_path / "in.results.csv")
    assert (row["status"], row["signal_transaction_id"]) == ("created", "T-2")


def test_no_answer_kills_a_worker(tmp_path, hostile):
    # One worker, answers it cannot have expected, in turn: every row still gets its outcome.
    server = hostile(["deep", "string-record", "superscript-retry-after", "good"])
    path = signals(tmp_path, 4)
    result = run_cli("upload", path, "--base-url", server.base_url, "--concurrency", "1", "--max-attempts", "1")
    assert_no_traceback(result)
    assert result.code == 1, result.output
    rows = report_rows(tmp_path / "in.results.csv")
    assert [r["error_class"] for r in rows] == ["InvalidAnswer", "InvalidAnswer", "TooManyRequests", ""]
    assert [r["status"] for r in rows] == ["failed", "failed", "failed", "created"]
    assert server.requests == 4


def test_the_timeout_bounds_the_whole_answer(tmp_path, hostile):
    server = hostile("drip")  # about 40 s for the whole answer
    path = signals(tmp_path, 1)
    started = time.monotonic()
    result = run_cli("upload", path, "--base-url", server.base_url, "--timeout", "2", "--max-attempts", "1")
    elapsed = time.monotonic() - started
    assert result.code == 1, result.output
    [row] = report_rows(tmp_path / "in.results.csv")
    assert (row["status"], row["error_class"], row["failure_kind"]) == ("failed", "Timeout", "retryable")
    assert "no complete answer within 2 s" in row["error"]
    assert elapsed < 15, elapsed


@pytest.mark.parametrize("mode", ["huge", "gzip-bomb"])
def test_oversized_answers_are_refused_with_bounded_memory(tmp_path, hostile, mode, monkeypatch):
    monkeypatch.setenv("INVOCA_API_TOKEN", TOKEN)
    server = hostile(mode)
    path = signals(tmp_path, 1)
    baseline_server = hostile("good")
    base_code, baseline = peak_rss_mb(
        "upload", signals(tmp_path, 1, "base.csv"), "--base-url", baseline_server.base_url
    )
    code, peak = peak_rss_mb("upload", path, "--base-url", server.base_url, "--max-attempts", "1")
    assert (base_code, code) == (0, 1)
    [row] = report_rows(tmp_path / "in.results.csv")
    assert (row["status"], row["error_class"], row["failure_kind"]) == ("failed", "AnswerTooLarge", "retryable")
    assert peak < baseline + 50, (peak, baseline)  # 300 MB / 512 MB were never held


def test_an_api_down_stops_the_run_early(tmp_path, hostile):
    server = hostile("server-error")
    path = signals(tmp_path, 200)
    result = run_cli(
        "upload",
        path,
        "--base-url",
        server.base_url,
        "--max-attempts",
        "2",
        "--stop-after-failures",
        "10",
        "--concurrency",
        "4",
    )
    assert result.code == 4, result.output
    assert_no_traceback(result)
    assert "the API looks unavailable: 10 rows in a row failed" in result.stderr
    assert "try again later" in result.stderr
    # At most the threshold's rows plus those in flight, each tried twice: not 200 rows.
    assert server.requests <= (10 + 4) * 2, server.requests
    rows = report_rows(tmp_path / "in.results.csv")
    assert len(rows) == 200
    assert {r["failure_kind"] for r in rows} == {"retryable"}
    assert sum(r["error_class"] == "NotSent" for r in rows) >= 200 - 14
    assert "not sent: the run stopped because the API looked unavailable" in rows[-1]["error"]


def test_a_huge_retry_after_gives_the_row_up_instead_of_waiting(tmp_path, hostile):
    server = hostile("long-retry-after")
    path = signals(tmp_path, 50)
    started = time.monotonic()
    result = run_cli("upload", path, "--base-url", server.base_url, "--stop-after-failures", "5", "--concurrency", "2")
    assert time.monotonic() - started < 30
    assert result.code == 4, result.output
    rows = report_rows(tmp_path / "in.results.csv")
    assert rows[0]["error_class"] == "RetryAfterTooLong"
    assert "asked to wait 3,600 s" in rows[0]["error"]
    assert server.requests <= 5 + 2


def test_a_redirect_says_where_it_points_and_what_to_change(tmp_path, hostile):
    server = hostile("redirect")
    path = signals(tmp_path, 1)
    result = run_cli("upload", path, "--base-url", server.base_url)
    assert result.code == 1
    [row] = report_rows(tmp_path / "in.results.csv")
    assert (row["error_class"], row["failure_kind"]) == ("Redirect", "fix-config")
    new_base = server.base_url.replace("2020-10-01", "2024-01-01")
    assert f"pointing to {new_base}/transactions/signals.json" in row["error"]
    assert f"try --base-url {new_base}" in row["error"]
    assert server.requests == 1  # never followed, never retried
