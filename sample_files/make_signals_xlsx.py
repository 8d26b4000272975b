"""Regenerate sample_files/signals.xlsx: python sample_files/make_signals_xlsx.py

The workbook is what an analyst's Excel file looks like: real date cells,
numbers typed as numbers (a duration, a sale amount), an id typed as a number
(damaged: Excel shows it in scientific notation), a boolean cell, and ids with
leading zeros kept as text.
"""

import datetime as dt
from pathlib import Path

from openpyxl import Workbook

HEADER = [
    "Transaction ID",
    "Call Start Time",
    "Calling Phone Number",
    "Duration In Seconds",
    "Outcome Name",
    "Partner Unique ID",
    "Description",
    "Sale Amount",
    "Value",
    "Occurred At Time",
    "Notes",
]
ROWS = [
    [
        "00000000-00000009",
        None,
        None,
        None,
        "Sale",
        "X-1",
        "Annual plan",
        499.0,
        True,
        dt.datetime(2026, 11, 5, 12, 20),
        "date cell, number cells, boolean cell",
    ],
    [
        None,
        dt.datetime(2026, 11, 5, 12, 30, 20),
        2065550143,
        298,
        "Appointment",
        "X-2",
        "Matched by a date cell",
        None,
        None,
        None,
        "phone typed as a number",
    ],
    [
        None,
        dt.datetime(2026, 11, 6, 10, 10, 0),
        "(503) 555-0165",
        80,
        "Sale",
        "X-3",
        "Start time as a date cell",
        89.5,
        1,
        dt.datetime(2026, 11, 6, 11, 0),
        "",
    ],
    ["00000000-0000000C", None, None, None, "Quote", "X-4", 'Cell with a comma, and "quotes"', None, False, None, ""],
    [
        1.23456789012345e15,
        None,
        None,
        None,
        "Sale",
        "X-5",
        "Id typed as a number: digits lost",
        10.0,
        None,
        None,
        "invalid: scientific notation",
    ],
    [
        "00000000-0000000B",
        None,
        None,
        None,
        "Sale",
        "X-6",
        "Sale amount with three decimals",
        12.345,
        None,
        None,
        "invalid: money format",
    ],
    [
        None,
        dt.datetime(2026, 11, 20, 9, 0, 0),
        "(415) 555-0199",
        60,
        "Sale",
        "X-7",
        "No call at that time",
        20.0,
        None,
        None,
        "not found on the server",
    ],
]


def main() -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Conversions"
    sheet.append(HEADER)
    for row in ROWS:
        sheet.append(row)
    for cell in sheet["B"][1:] + sheet["J"][1:]:
        cell.number_format = "yyyy/mm/dd hh:mm:ss AM/PM"
    sheet["E1"].value = "Outcome Name"
    other = workbook.create_sheet("Notes")
    other.append(["This sheet is not read unless --sheet Notes is given."])
    workbook.save(Path(__file__).with_name("signals.xlsx"))


if __name__ == "__main__":
    main()
