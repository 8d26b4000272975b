"""Real spreadsheets: the marks other programs leave (tests/workbooks.py), read right or
refused clearly. The real CLI, as an analyst runs it."""

from __future__ import annotations

import csv
import gzip
import zipfile

import pytest
from test_cli_upload import report_rows
from test_hostile import peak_rss_mb

from uploader.read import read_table
from uploader.schemas.signals import FIELDS

from conftest import assert_no_traceback, run_cli, write_csv
from workbooks import write_workbook

TZ = ["--timezone", "America/New_York"]
HEADER = ["transaction_id", "name", "sale_amount"]


def read_signals(path, **options):
    """A file of signals: the header matched against the Signal API's fields."""
    return read_table(path, fields=FIELDS, **options)


def validate(path, *args):
    report = path.with_name(path.stem + ".check.csv")
    result = run_cli("validate", path, "--report", report, *args)
    assert_no_traceback(result)
    return result, (report_rows(report) if report.exists() else [])


def test_a_strict_open_xml_workbook_is_read(tmp_path):
    path = write_workbook(tmp_path / "strict.xlsx", {"Data": [HEADER, ["T1", "Sale", 12.5]]}, strict=True)
    result, rows = validate(path)
    assert result.code == 0, result.output
    assert [(r["transaction_id"], r["name"], r["sale_amount"]) for r in rows] == [("T1", "Sale", "12.5")]


def test_a_huge_declared_size_costs_nothing(tmp_path):
    # Gnumeric declares every sheet A1:XFD1048576; reading must follow the real cells.
    path = write_workbook(
        tmp_path / "gnumeric.xlsx", {"Sheet1": [HEADER, ["T1", "Sale", 1]]}, dimensions={"Sheet1": "A1:XFD1048576"}
    )
    small = write_workbook(tmp_path / "small.xlsx", {"Sheet1": [HEADER, ["T1", "Sale", 1]]})
    _, baseline = peak_rss_mb("validate", small)
    code, peak = peak_rss_mb("validate", path)
    assert code == 0
    assert peak < baseline + 50, (peak, baseline)


@pytest.mark.parametrize("dimension", ["A1:C3", "A1"])
def test_the_declared_size_is_not_trusted(tmp_path, dimension):
    # A stale A1:C3 (rows 4-6 exist) and WPS Office's bare A1 (columns B-C exist).
    data = [HEADER] + [[f"T{i}", "Sale", i] for i in range(1, 6)]
    path = write_workbook(tmp_path / "d.xlsx", {"Sheet1": data}, dimensions={"Sheet1": dimension})
    result, rows = validate(path)
    assert result.code == 0, result.output
    assert [r["transaction_id"] for r in rows] == ["T1", "T2", "T3", "T4", "T5"]
    assert [r["sale_amount"] for r in rows] == ["1", "2", "3", "4", "5"]


def test_the_active_visible_sheet_is_read_and_named(tmp_path):
    path = write_workbook(
        tmp_path / "w.xlsx",
        {"old export": [HEADER, ["OLD", "Stale", 1]], "March": [HEADER, ["NEW", "Sale", 2]]},
        hidden=("old export",),
        active=1,
    )
    result, rows = validate(path)
    assert result.code == 0, result.output
    assert [r["transaction_id"] for r in rows] == ["NEW"]
    assert "read the sheet 'March' (the active sheet); hidden sheets not read: 'old export'" in result.stderr

    # A hidden sheet is never taken by default, even when it is the active tab.
    path = write_workbook(
        tmp_path / "h.xlsx",
        {"old": [HEADER, ["OLD", "Stale", 1]], "new": [HEADER, ["NEW", "S", 2]]},
        hidden=("old",),
        active=0,
    )
    result, rows = validate(path)
    assert [r["transaction_id"] for r in rows] == ["NEW"]
    assert "(the first visible sheet)" in result.stderr


def test_a_date_only_cell_is_refused_like_the_same_date_typed(tmp_path):
    path = write_workbook(
        tmp_path / "d.xlsx", {"S": [["call_start_time", "name"], [("date", 42471, 14), "Sale"], ["2016/04/11", "Sale"]]}
    )
    result, rows = validate(path, *TZ)
    assert result.code == 1
    assert [r["status"] for r in rows] == ["invalid", "invalid"]
    assert all("has a date but no time of day" in r["error"] for r in rows)


def test_the_1904_date_system_applies_to_serial_numbers_too(tmp_path):
    # 42471.5 in a 1904 workbook is 2020-04-12 12:00 (1,462 days after the 1900 reading).
    path = write_workbook(
        tmp_path / "mac.xlsx",
        {"S": [["call_start_time", "name"], [42471.5, "Sale"], [("date", 42471.5, 22), "Sale"]]},
        date1904=True,
    )
    result, rows = validate(path, *TZ)
    assert result.code == 0, result.output
    assert "read as 2020/04/12 12:00:00 in America/New_York" in rows[0]["warning"]
    assert rows[1]["call_start_time"] == "2020/04/12 12:00:00"  # the date cell, shown as Excel shows it


def test_excel_error_values_make_the_row_invalid(tmp_path):
    path = write_workbook(
        tmp_path / "e.xlsx",
        {"S": [HEADER, ["T1", ("error", "#N/A"), 1], ["T2", "Sale", ("error", "#VALUE!")], ["T3", "Sale", 3]]},
    )
    result, rows = validate(path)
    assert result.code == 1
    assert [r["status"] for r in rows] == ["invalid", "invalid", "valid"]
    assert "'#N/A': is an Excel error value, not data" in rows[0]["error"]
    assert "'#VALUE!': is an Excel error value" in rows[1]["error"]
    # The same text in a CSV that Excel exported.
    csv_path = write_csv(tmp_path / "e.csv", [HEADER, ["T1", "#NAME?", "1"]])
    result, rows = validate(csv_path)
    assert "is an Excel error value" in rows[0]["error"]


def test_ooxml_escapes_are_decoded(tmp_path):
    path = write_workbook(tmp_path / "x.xlsx", {"S": [HEADER + ["description"], ["T1", "Sale", 1, "line_x000D_two"]]})
    assert read_signals(path).frame.loc[2, "description"] == "line\rtwo"


def test_a_formula_without_a_saved_value_is_not_read_as_empty(tmp_path):
    path = write_workbook(
        tmp_path / "f.xlsx",
        {"S": [["transaction_id", "name", "value"], ["T1", "Sale", ("formula", "1>2")], ["T2", "Sale", "true"]]},
    )
    result, rows = validate(path)
    assert result.code == 1
    assert rows[0]["status"] == "invalid"
    assert "is a formula with no saved value" in rows[0]["error"] and "save it" in rows[0]["error"]
    assert rows[1]["status"] == "valid"


@pytest.mark.parametrize(
    "encoding, name", [("mac_roman", "Mac Roman"), ("cp850", "code page 850"), ("cp1252", "windows-1252")]
)
def test_single_byte_encodings_are_detected_and_said(tmp_path, encoding, name):
    path = write_csv(
        tmp_path / "e.csv", [["transaction_id", "name", "description"], ["T1", "Café Sale", "Crème"]], encoding=encoding
    )
    result, _ = validate(path)
    assert result.code == 0, result.output
    assert f"read as {name}" in result.stderr
    frame = read_signals(path).frame
    assert frame.loc[2, "name"] == "Café Sale"


def test_encoding_can_be_given_and_garbage_is_refused(tmp_path):
    path = write_csv(tmp_path / "e.csv", [["transaction_id", "name"], ["T1", "Café"]], encoding="mac_roman")
    result, rows = validate(path, "--encoding", "mac-roman")
    assert result.code == 0 and rows[0]["name"] == "Café"
    result, _ = validate(path, "--encoding", "klingon")
    assert result.code == 2 and "not an encoding" in result.stderr


def test_implausible_instants_are_invalid_and_say_how_they_were_read(tmp_path):
    path = write_csv(
        tmp_path / "t.csv",
        [
            ["call_start_time", "name", "occurred_at_time"],
            ["12345", "Serial", ""],
            ["1999-12-31T23:00:00Z", "Old", ""],
            ["2099-01-01T00:00:00Z", "Future", ""],
            ["2016-04-11T20:00:00Z", "Typo", "2036-04-11T20:00:00Z"],
            ["2016-04-11T20:00:00Z", "Fine", "2016-04-12T20:00:00Z"],
        ],
    )
    _result, rows = validate(path, *TZ)
    assert [r["status"] for r in rows] == ["invalid"] * 4 + ["valid"]
    assert "was read as 1933-10-18" in rows[0]["error"] and "earliest time the API takes" in rows[0]["error"]
    assert "was read as 1999-12-31 23:00:00 UTC" in rows[1]["error"]
    assert "a time in the future" in rows[2]["error"] and "a time in the future" in rows[3]["error"]


def test_a_17_digit_time_stored_as_a_number_is_accepted_with_a_warning(tmp_path):
    path = write_workbook(
        tmp_path / "n.xlsx",
        {
            "S": [
                ["call_start_time", "name", "transaction_id"],
                [20160411130000000, "Sale", ""],
                ["20160411130000000", "Quote", ""],
            ]
        },
    )
    result, rows = validate(path)
    assert result.code == 0, result.output
    assert "hundredths of a second may have been rounded" in rows[0]["warning"]
    assert rows[1]["warning"] == ""
    # An id stored that way has really lost digits: still invalid.
    path = write_workbook(tmp_path / "i.xlsx", {"S": [HEADER, [12345678901234567, "Sale", 1]]})
    result, rows = validate(path)
    assert rows[0]["status"] == "invalid" and "scientific notation" in rows[0]["error"]


def test_ids_whose_leading_zeros_were_dropped_are_invalid(tmp_path):
    data = [HEADER] + [[f"{i:08d}", "Sale", 1] for i in (1001, 2002, 3003, 4004)] + [[12345, "Sale", 1]]
    path = write_workbook(tmp_path / "z.xlsx", {"S": data})
    result, rows = validate(path)
    assert [r["status"] for r in rows] == ["valid"] * 4 + ["invalid"]
    assert "probably dropped its zeros (it may be 00012345)" in rows[4]["error"]
    # An id cell stored as a number is a risk even alone: warned.
    path = write_workbook(tmp_path / "n.xlsx", {"S": [HEADER, [12345, "Sale", 1], ["A-1", "Sale", 2]]})
    result, rows = validate(path)
    assert result.code == 0, result.output
    assert "was stored as a number in the workbook" in rows[0]["warning"] and rows[1]["warning"] == ""


def test_amounts_are_read_as_excel_shows_them(tmp_path):
    # Excel writes 274.66 as the nearest double, with 17 significant digits.
    path = write_workbook(
        tmp_path / "a.xlsx", {"S": [HEADER, ["T1", "Sale", ("raw", '<c r="REF"><v>274.65999999999997</v></c>')]]}
    )
    result, rows = validate(path)
    assert result.code == 0, result.output
    assert rows[0]["sale_amount"] == "274.66"


def test_headers_below_a_title_a_sep_line_or_a_merged_row_are_found(tmp_path):
    titled = write_workbook(tmp_path / "t.xlsx", {"S": [["March conversions"], [], HEADER, ["T1", "Sale", 1]]})
    result, rows = validate(titled)
    assert result.code == 0, result.output
    assert rows[0]["row"] == "4" and "the header is row 3" in result.stderr

    sep = tmp_path / "sep.csv"
    sep.write_bytes(b"sep=;\r\ntransaction_id;name;sale_amount\r\nT1;Sale;1.5\r\n")
    result, _ = validate(sep)
    assert result.code == 0, result.output
    with open(sep.with_name("sep.check.csv"), newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))  # the report keeps the input's delimiter
    assert rows[0]["transaction_id"] == "T1" and rows[0]["row"] == "3"

    merged = write_csv(tmp_path / "m.csv", [["Call", "", "Conversion"], HEADER, ["T1", "Sale", "1"]])
    result, rows = validate(merged)
    assert result.code == 0, result.output

    none = write_csv(tmp_path / "n.csv", [["Report", "March"], ["a", "b"]])
    result, _ = validate(none)
    assert result.code == 2
    assert "row 1, taken as the header, holds 'Report', 'March'" in result.stderr


def test_sheet_mistakes_list_the_worksheets(tmp_path):
    path = write_workbook(tmp_path / "c.xlsx", {"Data": [HEADER, ["T1", "Sale", 1]]}, charts=("Chart1",))
    result, _ = validate(path, "--sheet", "Chart1")
    assert result.code == 2
    assert "'Chart1' is a chart sheet" in result.stderr and "'Data'" in result.stderr

    path = write_workbook(tmp_path / "empty.xlsx", {"Cover": [], "Data": [HEADER, ["T1", "Sale", 1]]})
    result, _ = validate(path)
    assert result.code == 2
    assert "the sheet 'Cover' (the active sheet) is empty" in result.stderr
    assert "'Data' (2 rows)" in result.stderr and "--sheet" in result.stderr


def test_the_dst_hint_gives_the_zones_own_offsets(tmp_path):
    path = write_csv(tmp_path / "d.csv", [["call_start_time", "name"], ["2016/11/06 01:30:00 AM", "Sale"]])
    _result, rows = validate(path, *TZ)
    assert "2016-11-06T01:30:00-04:00 (the first) or 2016-11-06T01:30:00-05:00 (the second)" in rows[0]["error"]


def test_stderr_holds_only_the_tools_own_lines(tmp_path):
    # a second sheet makes the tool say which one it read: stderr holds at least that line
    path = write_workbook(tmp_path / "w.xlsx", {"S": [HEADER, ["T1", "Sale", 1]], "Notes": [["x"]]})
    # a real process: what libraries print or warn on their own reaches its stderr, not the runner's
    result = run_cli("validate", path, process=True)
    assert_no_traceback(result)
    assert "warning: read the sheet 'S'" in result.stderr
    assert all(line.startswith(("warning:", "note:", "error:", "hint:")) for line in result.stderr.splitlines()), (
        result.stderr
    )


def _ods(path, rows):
    """A minimal OpenDocument spreadsheet, as LibreOffice structures one."""
    cells = "".join(
        "<table:table-row>"
        + "".join(
            f'<table:table-cell office:value-type="float" office:value="{v}"><text:p>{v}</text:p></table:table-cell>'
            if isinstance(v, (int, float))
            else f'<table:table-cell office:value-type="string"><text:p>{v}</text:p></table:table-cell>'
            for v in row
        )
        + "</table:table-row>"
        for row in rows
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f'<office:body><office:spreadsheet><table:table table:name="Sheet1">{cells}</table:table>'
        "</office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:'
        'opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry '
        'manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>'
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet", zipfile.ZIP_STORED)
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
    return path


def test_ods_and_gzipped_csv_are_read(tmp_path, emulator):
    ods = _ods(tmp_path / "s.ods", [HEADER, ["00000000-00000001", "Sale", 12.5]])
    result, rows = validate(ods)
    assert result.code == 0, result.output
    assert rows[0]["sale_amount"] == "12.5"

    plain = write_csv(tmp_path / "g.csv", [["transaction_id", "name"], ["00000000-00000001", "Sale"]])
    packed = tmp_path / "g.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    result = run_cli("upload", packed, "--base-url", emulator.base_url)
    assert result.code == 0, result.output
    assert [r["status"] for r in report_rows(tmp_path / "g.results.csv")] == ["created"]
    assert len(emulator.signals()) == 1
