"""One cell's value as the text a person typed: the same rule for a workbook cell and a Python value."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import numpy as np
import pandas as pd


def _cell_text(value) -> tuple[str, bool]:
    """One workbook cell as the text the user sees (:func:`value_text`), and whether it is a date cell.

    Excel keeps a time to the millisecond: finer digits of a serial are noise.

    >>> _cell_text(1.0), _cell_text(True), _cell_text(dt.datetime(2016, 4, 11, 13)), _cell_text(274.65999999999997)
    (('1', False), ('true', False), ('2016/04/11 13:00:00', True), ('274.66', False))
    """
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and float(value).is_integer()
        and abs(value) >= 1e15
    ):
        # Excel keeps 15 significant digits of what is typed: a longer number (an id, say) has
        # already lost its tail. Shown as Excel shows it, the validator flags it instead of sending it.
        return _excel_scientific(float(value)), False
    if isinstance(value, dt.datetime) and value.microsecond % 1000:
        value = value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value_text(value), isinstance(value, dt.date) and not isinstance(value, dt.time)


def _excel_scientific(value: float) -> str:
    return f"{value:.14E}".replace(".00000000000000", "")


def value_text(value) -> str:
    """A value as the text a person would have typed into a cell: the one rule for every source.

    Workbook cells and the Python API's values (a DataFrame's, a query's)
    go through it, so the same value reads the same wherever it comes from.
    Numbers show as a spreadsheet shows them, to 15 significant digits
    (``0.1 + 0.2`` is ``0.3``); a whole float past 2**53, which a double
    cannot hold exactly, shows in Excel's scientific form, which the
    validator refuses for an id (an ``int`` is exact and shows whole).
    Naive datetimes are wall-clock times; aware ones keep their offset. A
    ``Decimal`` keeps two decimals, and more only where they are not zeros (a
    database's ``NUMERIC`` scale pads them).

    >>> value_text(0.1 + 0.2), value_text(12345.0), value_text(1.234567890123457e16), value_text(12345678901234567)
    ('0.3', '12345', '1.23456789012346E+16', '12345678901234567')
    >>> value_text(None), value_text(float("nan")), value_text(False), value_text(Decimal("149.9900000000"))
    ('', '', 'false', '149.99')
    >>> value_text(dt.datetime(2026, 11, 2, 9, 15)), value_text(dt.datetime(2026, 11, 2, 9, 15, 0, 250000))
    ('2026/11/02 09:15:00', '2026/11/02 09:15:00.250')
    >>> value_text(dt.datetime(2026, 11, 2, 17, 15, tzinfo=dt.timezone.utc)), value_text(dt.date(2016, 4, 11))
    ('2026-11-02T17:15:00+00:00', '2016/04/11')
    """
    if isinstance(value, str):
        return value
    if value is None or value is pd.NaT or value is pd.NA:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, np.generic):  # numpy scalars, as the Python values they hold
        return value_text(value.item())
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return ""
        if value.is_integer() and abs(value) >= 2**53:
            return _excel_scientific(value)  # a double no longer holds every digit
        if value.is_integer():
            return str(int(value))
        return f"{value:.15g}"
    if isinstance(value, Decimal):
        if value.is_nan():
            return ""
        whole, _, decimals = format(value, "f").partition(".")
        decimals = decimals[:2] + decimals[2:].rstrip("0")
        return f"{whole}.{decimals}" if decimals else whole
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return value.isoformat()
        text = value.strftime("%Y/%m/%d %H:%M:%S")
        if value.microsecond:
            text += (
                f".{value.microsecond // 1000:03d}" if value.microsecond % 1000 == 0 else f".{value.microsecond:06d}"
            )
        return text
    if isinstance(value, dt.date):
        return value.strftime("%Y/%m/%d")
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
        return str(int(seconds)) if seconds.is_integer() else str(seconds)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)
