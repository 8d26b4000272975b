"""`signal-uploader validate`, run as a user runs it: exit codes, messages, report."""

import csv
import datetime as dt
import json

import pytest

from conftest import SAMPLES, assert_no_traceback, run_cli, write_csv, write_xlsx


def read_report(path):
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def test_all_valid_exits_0(tmp_path):
    path = write_csv(tmp_path / "ok.csv", [["transaction_id", "name"], ["T1", "Sale"], ["T2", "Quote"]])
    result = run_cli("validate", path)
    assert result.code == 0, result.output
    assert "2 row(s)" in result.stdout and "valid           2" in result.stdout


def test_some_invalid_exits_1_with_a_report_of_every_row(tmp_path):
    path = write_csv(
        tmp_path / "in.csv",
        [
            ["Transaction ID", "Name", "Sale Amount", "Notes"],
            ["T1", "Sale", "10.00", "fine"],
            ["T2", "", "$10", "two problems"],
            ["T3", "Sale", "1.234", "one problem"],
        ],
    )
    report = tmp_path / "out" / "report.csv"
    result = run_cli("validate", path, "--report", report)
    assert result.code == 1, result.output
    assert_no_traceback(result)
    assert "invalid         2" in result.stdout
    assert "sale-amount-format" in result.stdout  # the most common problem is named
    assert "ignored column(s) the API does not take: 'Notes'" in result.stderr
    rows = read_report(report)
    assert list(rows[0].keys()) == [
        "row",
        "status",
        "error",
        "warning",
        "Transaction ID",
        "Name",
        "Sale Amount",
        "Notes",
    ]
    assert [(r["row"], r["status"]) for r in rows] == [("2", "valid"), ("3", "invalid"), ("4", "invalid")]
    assert "Name: is required" in rows[1]["error"] and "Sale Amount '$10'" in rows[1]["error"]
    assert rows[2]["Sale Amount"] == "1.234"  # original cells, untouched
    assert rows[1]["error"].count(";") == 1


def test_wall_clock_times_without_timezone_exit_2_naming_the_flag(tmp_path):
    path = write_csv(tmp_path / "t.csv", [["call_start_time", "name"], ["2016/04/11 01:00:00 PM", "Sale"]])
    result = run_cli("validate", path)
    assert result.code == 2
    assert_no_traceback(result)
    assert "--timezone" in result.stderr
    assert run_cli("validate", path, "--timezone", "America/Los_Angeles").code == 0


def test_excel_date_cells_need_a_timezone_too(tmp_path):
    path = write_xlsx(tmp_path / "d.xlsx", [["call_start_time", "name"], [dt.datetime(2016, 4, 11, 13), "Sale"]])
    assert run_cli("validate", path).code == 2
    assert run_cli("validate", path, "-z", "America/Los_Angeles").code == 0


@pytest.mark.parametrize(
    "content,name,message",
    [
        (b"", "empty.csv", "the file is empty"),
        (b"transaction_id,name\n", "header.csv", "no data rows"),
        (b"transaction_id,amount\n1,2\n", "noname.csv", "no 'name' column"),
        (b"name,name\nSale,Sale\n", "dup.csv", "appears twice"),
        (b"\x00\x01\x02binary\xff", "junk.csv", "not a text CSV file"),
        (b"name,transaction_id\nSale,1\n", "data.json", "unknown file type"),
        (b"transaction_id,name\n1,Sale\n", "text.xlsx", "not a readable .xlsx workbook"),
    ],
)
def test_file_level_errors_exit_2_with_one_clear_line(tmp_path, content, name, message):
    path = tmp_path / name
    path.write_bytes(content)
    result = run_cli("validate", path, process=True)  # the exit code and stderr of a real process
    assert result.code == 2
    assert_no_traceback(result)
    assert result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr and name in result.stderr


def test_usage_errors_exit_2(tmp_path):
    path = write_csv(tmp_path / "ok.csv", [["transaction_id", "name"], ["T1", "Sale"]])
    for args, message in [
        (["--timezone", "Mars/Olympus"], "not a known IANA timezone"),
        (["--phone-region", "XX"], "not a known region code"),
        (["--api", "nope"], "Invalid value for '--api'"),
        (["--sheet", "Data"], "--sheet applies to .xlsx"),
    ]:
        result = run_cli("validate", path, *args, process=True)
        assert result.code == 2, (args, result.output)
        assert message in result.stderr
        assert_no_traceback(result)


def test_missing_sheet_lists_the_sheets(tmp_path):
    path = write_xlsx(tmp_path / "s.xlsx", [["transaction_id", "name"], ["1", "Sale"]], sheet="Data")
    result = run_cli("validate", path, "--sheet", "March")
    assert result.code == 2 and "no sheet named 'March'" in result.stderr and "'Data'" in result.stderr


def test_the_sample_files_validate_as_documented():
    result = run_cli("validate", SAMPLES / "signals.csv", "--timezone", "America/Los_Angeles")
    assert result.code == 1
    assert "valid          10" in result.stdout and "invalid         3" in result.stdout
    result = run_cli("validate", SAMPLES / "signals.xlsx", "--timezone", "America/Los_Angeles")
    assert result.code == 1
    assert "invalid         2" in result.stdout


def test_no_progress_bar_when_not_a_terminal_and_summary_json(tmp_path):
    path = write_csv(tmp_path / "ok.csv", [["transaction_id", "name"], ["T1", "Sale"]])
    result = run_cli("validate", path, "--summary-json", tmp_path / "s.json")
    assert "validating" not in result.stderr  # stderr is a pipe here: no bar
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["rows"] == 1 and summary["statuses"] == {"valid": 1}


def test_help_lists_the_options():
    result = run_cli("validate", "--help")
    assert result.code == 0
    for option in ("--timezone", "--api", "--report", "--sheet", "--no-progress", "--phone-region"):
        assert option in result.stdout


@pytest.mark.parametrize("command", ["validate", "upload", "retry", "emulator"])
def test_every_command_has_help_without_warnings(command):
    result = run_cli(command, "--help", env={"PYTHONWARNINGS": "error"})
    assert result.code == 0, result.output
    assert "Usage: python -m uploader " + command in result.stdout or "Usage:" in result.stdout
    assert "Warning" not in result.stderr


def test_a_row_with_two_warnings_counts_once_in_the_summary(tmp_path):
    rows = [
        ["transaction_id", "calling_phone_number", "name"],
        ["T-1", "(415) 555-0134", "Sale"],  # phone ignored (the id wins), and repeated below without an id
        ["T-1", "(415) 555-0134", "Sale"],
        ["T-2", "", "Sale"],
    ]  # no warning
    path = write_csv(tmp_path / "twice.csv", rows)
    result = run_cli("validate", path, "--report", tmp_path / "r.csv", "--summary-json", tmp_path / "s.json")
    assert result.code == 0, result.stderr
    report = read_report(tmp_path / "r.csv")
    warnings = [r["warning"] for r in report]
    assert "ignored by the API" in warnings[0] and "same call" in warnings[0]
    assert "ignored by the API" in warnings[1] and "same call" in warnings[1]
    assert warnings[2] == ""
    assert json.loads((tmp_path / "s.json").read_text())["rows_with_warnings"] == 2
    assert "warnings        2" in result.stdout
