"""Reader: encodings, delimiters, quoting, XLSX cells as text, headers, file-level errors."""

import datetime as dt

import pytest

from uploader.errors import FileFormatError, UsageError
from uploader.read import read_table
from uploader.read.csvfile import careful_csv_chunks
from uploader.schemas.signals import FIELDS

from conftest import write_csv, write_xlsx

HEADER = ["transaction_id", "name", "description"]


def read_signals(path, **options):
    """A file of signals: the header matched against the Signal API's fields."""
    return read_table(path, fields=FIELDS, **options)


def test_utf8_with_and_without_bom(tmp_path):
    for bom in (False, True):
        path = write_csv(tmp_path / f"bom{bom}.csv", [HEADER, ["00123", "Vente", "Café crème"]], bom=bom)
        table = read_signals(path)
        assert table.frame.columns.tolist() == HEADER  # the BOM is not part of the first header
        assert table.frame.loc[2, "description"] == "Café crème"


def test_windows_1252_as_excel_saves_it(tmp_path):
    path = write_csv(tmp_path / "ansi.csv", [HEADER, ["1", "Sale", "Café – 5€"]], encoding="cp1252")
    table = read_signals(path)
    assert table.encoding == "windows-1252"
    assert table.frame.loc[2, "description"] == "Café – 5€"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_found(tmp_path, delimiter):
    path = write_csv(tmp_path / "d.csv", [HEADER, ["1", "Sale", "a, b; c"], ["2", "Quote", "x|y"]], delimiter=delimiter)
    table = read_signals(path)
    assert table.delimiter == delimiter
    assert table.frame["description"].tolist() == ["a, b; c", "x|y"]


def test_semicolon_csv_with_decimal_commas(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text("transaction_id;name;sale_amount\n1;Sale;1,50\n2;Sale;3,75\n", encoding="utf-8")
    table = read_signals(path)
    assert table.delimiter == ";"
    assert table.frame["sale_amount"].tolist() == ["1,50", "3,75"]


def test_quoted_cells_with_commas_quotes_and_newlines(tmp_path):
    path = write_csv(tmp_path / "q.csv", [HEADER, ["1", "Sale", 'said "hi",\nthen left'], ["2", "Quote", "ok"]])
    table = read_signals(path)
    assert table.frame.loc[2, "description"] == 'said "hi",\nthen left'
    # The second record is on spreadsheet row 3 even though it starts on line 4.
    assert table.frame.index.tolist() == [2, 3]


def test_ids_keep_their_zeros_in_csv(tmp_path):
    path = write_csv(
        tmp_path / "z.csv", [["transaction_id", "name", "calling_phone_number"], ["00123", "Sale", "0044123"]]
    )
    table = read_signals(path)
    assert table.frame.loc[2, "transaction_id"] == "00123"
    assert table.frame.loc[2, "calling_phone_number"] == "0044123"


def test_xlsx_cells_are_text_as_the_user_typed_them(tmp_path):
    path = write_xlsx(
        tmp_path / "t.xlsx",
        [
            ["transaction_id", "name", "sale_amount", "value", "duration_in_seconds", "calling_phone_number"],
            ["00123", "Sale", 1, True, 125.0, 4155550134],
            [123, "Sale", 12.5, False, 0, "(415) 555-0134"],
        ],
    )
    frame = read_signals(path).frame
    assert frame.loc[2].tolist() == ["00123", "Sale", "1", "true", "125", "4155550134"]
    assert frame.loc[3].tolist() == ["123", "Sale", "12.5", "false", "0", "(415) 555-0134"]


def test_xlsx_long_numbers_show_as_excel_shows_them(tmp_path):
    # Excel keeps 15 significant digits: a 16-digit id typed as a number is damaged.
    path = write_xlsx(tmp_path / "n.xlsx", [["transaction_id", "name"], [1234567890123456, "Sale"]])
    assert read_signals(path).frame.loc[2, "transaction_id"] == "1.23456789012346E+15"


def test_xlsx_date_cells_become_wall_clock_text(tmp_path):
    path = write_xlsx(
        tmp_path / "d.xlsx",
        [
            ["call_start_time", "name"],
            [dt.datetime(2016, 4, 11, 13, 0, 0), "Sale"],
            [dt.datetime(2016, 4, 11, 13, 0, 0, 250000), "Sale"],
        ],
        formats={"A": "yyyy/mm/dd hh:mm:ss.000 AM/PM"},
    )
    table = read_signals(path)
    assert table.has_date_cells
    assert table.frame["call_start_time"].tolist() == ["2016/04/11 13:00:00", "2016/04/11 13:00:00.250"]


def test_sheet_choice(tmp_path):
    path = write_xlsx(
        tmp_path / "s.xlsx",
        [["notes"], ["nothing here"]],
        sheet="Readme",
        extra_sheets={"Data": [["transaction_id", "name"], ["1", "Sale"]]},
    )
    assert read_signals(path, sheet="Data").frame.loc[2, "name"] == "Sale"
    with pytest.raises(FileFormatError, match="no 'name' column"):
        read_signals(path)  # the first sheet is the default
    with pytest.raises(FileFormatError, match="no sheet named 'Nope'") as caught:
        read_signals(path, sheet="Nope")
    assert "'Readme', 'Data'" in caught.value.hint


def test_headers_match_loosely_and_both_apis_names_are_accepted(tmp_path):
    path = write_csv(
        tmp_path / "h.csv",
        [
            ["Transaction ID", "Outcome-Name", "START_TIME_T", "occurred at time t", "Custom Paramter 1", "Notes"],
            ["1", "Sale", "1460404800", "1460404800", "x", "n"],
        ],
    )
    table = read_signals(path)
    assert table.fields == {
        "transaction_id": "Transaction ID",
        "name": "Outcome-Name",
        "call_start_time": "START_TIME_T",
        "occurred_at_time": "occurred at time t",
        "custom_parameter_1": "Custom Paramter 1",
    }
    assert table.ignored_columns == ["Notes"]
    assert "Notes" in table.frame.columns  # carried into the report all the same


def test_report_columns_are_dropped_when_a_report_is_read_back(tmp_path):
    path = write_csv(
        tmp_path / "r.csv", [["row", "status", "error", "transaction_id", "name"], ["2", "failed", "x", "1", "Sale"]]
    )
    table = read_signals(path)
    assert table.frame.columns.tolist() == ["transaction_id", "name"]
    assert table.ignored_columns == []


def test_blank_rows_are_skipped_and_row_numbers_kept(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("transaction_id,name\n1,Sale\n,\n\n2,Quote\n", encoding="utf-8")
    table = read_signals(path)
    assert table.frame.index.tolist() == [2, 5]
    assert table.blank_rows == 2


def test_rows_with_too_many_or_too_few_fields_are_flagged(tmp_path):
    path = tmp_path / "shape.csv"
    path.write_text("transaction_id,name,description\n1,Sale,ok\n2,Sale,a,b\n3,Sale\n4,Sale,ok,\n", encoding="utf-8")
    table = read_signals(path)
    assert table.shape_problems == {3: (4, 3), 4: (2, 3)}  # a trailing empty cell is not a problem
    assert table.frame.loc[4, "description"] == ""


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "the file is empty"),
        (b"\n\n", "the file is empty"),
        (b"transaction_id,name\n", "no data rows"),
        (b"transaction_id,name\n,\n", "no data rows"),
        (b"transaction_id,description\n1,x\n", "no 'name' column"),
        (b"name,description\nSale,x\n", "neither a 'transaction_id' nor a 'call_start_time'"),
        (b"transaction_id,name,Name\n1,a,b\n", "appears twice"),
        (b"Transaction ID,name,transaction_id\n1,a,b\n", "both mean 'transaction_id'"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text CSV file"),
    ],
)
def test_file_level_errors(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match=message) as caught:
        read_signals(path)
    assert str(path) in caught.value.message


def test_text_named_xlsx_is_a_file_level_error(tmp_path):
    path = tmp_path / "fake.xlsx"
    path.write_text("transaction_id,name\n1,Sale\n")
    with pytest.raises(FileFormatError, match=r"not a readable \.xlsx workbook"):
        read_signals(path)


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match=r"unknown file type '\.json'"):
        (tmp_path / "x.json").write_text("{}")
        read_signals(tmp_path / "x.json")
    with pytest.raises(FileFormatError, match="no such file"):
        read_signals(tmp_path / "missing.csv")
    with pytest.raises(UsageError, match="--sheet"):
        read_signals(write_csv(tmp_path / "c.csv", [HEADER, ["1", "Sale", ""]]), sheet="Data")


# --- the Arrow fast path and the careful path read the same thing -----------------


def _read_both(path, size):
    """Every chunk's rows, shape problems and blank count: by the fast path, then the careful one."""
    from uploader.read import open_table

    def collect(chunks):
        frames, shapes, blank = [], {}, 0
        for chunk in chunks:
            frames.append(chunk.frame)
            shapes.update(chunk.shape_problems)
            blank += chunk.blank_rows
        import pandas as pd

        return pd.concat(frames), shapes, blank

    fast_reader = open_table(path, fields=FIELDS)
    fast = collect(fast_reader.chunks(size))
    careful_reader = open_table(path, fields=FIELDS)
    careful_reader._arrow_width = None
    careful = collect(careful_csv_chunks(careful_reader, size))
    return fast_reader, fast, careful


TRICKY = [
    ["T-1", "Sale", 'quoted "words", commas'],
    ["T-2", "Vente", "Café crème\nsecond line"],
    ["T-3", "  Quote  ", "  spaced  "],
    ["", "", ""],  # a blank row keeps its number
    ["  ", "   ", "   "],  # spaces only: blank too
    ["T-5", "Sale", "=1+1"],
    ["T-6", "Sale", ""],
]


@pytest.mark.parametrize("bom", [False, True])
def test_fast_path_reads_what_the_careful_path_reads(tmp_path, bom):
    path = write_csv(tmp_path / "tricky.csv", [HEADER] + TRICKY * 40, bom=bom)
    reader, (frame, shapes, blank), (frame2, shapes2, blank2) = _read_both(path, 25)
    assert reader._arrow_width == 3  # the fast path was taken
    assert frame.equals(frame2) and frame.index.tolist() == frame2.index.tolist()
    assert (shapes, blank) == (shapes2, blank2) == ({}, 80)
    assert frame.loc[3, "description"] == "Café crème\nsecond line"
    assert frame.index[-1] == 1 + len(TRICKY) * 40


@pytest.mark.parametrize(
    "bad_row",
    [
        ["T-9", "Sale", "x", "extra"],  # one field too many
        ["T-9", "Sale"],  # one too few
        [],  # an empty line
    ],
)
def test_fast_path_hands_over_mid_file_without_losing_or_repeating_a_row(tmp_path, monkeypatch, bad_row):
    import uploader.read.csvfile

    monkeypatch.setattr(uploader.read.csvfile, "ARROW_BLOCK_BYTES", 2048)  # many blocks, so some are read first
    rows = [[f"T-{i}", "Sale", f"row {i}"] for i in range(2, 1202)]
    rows.insert(900, bad_row)  # record 902 of the file
    path = write_csv(tmp_path / "ragged.csv", [HEADER] + rows)
    reader, (frame, shapes, blank), (frame2, shapes2, blank2) = _read_both(path, 100)
    if bad_row:  # (Arrow reads an empty line as a row of empty cells: a blank row, as it should be)
        assert 0 < reader.handed_over_at <= 900 and reader.handed_over_at % 100 == 0
    assert frame.equals(frame2) and (shapes, blank) == (shapes2, blank2)
    expected_rows = [n for n in range(2, 1203) if n != 902 or bad_row]
    assert frame.index.tolist() == expected_rows  # every record once, numbered as in a spreadsheet
    if bad_row:
        assert 902 in shapes
    else:
        assert blank == 1
    assert frame.loc[1202, "transaction_id"] == "T-1201"


def test_a_cell_beyond_the_last_header_is_reported_after_the_hand_over(tmp_path):
    path = tmp_path / "trailing.csv"
    path.write_text("transaction_id,name,\n" + "".join(f"T-{i},Sale,\n" for i in range(300)) + "T-x,Sale,oops\n")
    _, (frame, shapes, _), (frame2, shapes2, _) = _read_both(path, 64)
    assert frame.equals(frame2) and shapes == shapes2 == {302: (3, 2)}
