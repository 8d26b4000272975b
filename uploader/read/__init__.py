"""Stage 1: read a CSV or a workbook into a DataFrame of text, as the user typed it.

Nothing here interprets a value: ``00123`` stays ``"00123"``, a numeric Excel
cell ``1`` becomes ``"1"`` (not ``"1.0"``), booleans become ``"true"``/``"false"``
and Excel date cells become Excel-compatible wall-clock text
(``2016/04/11 13:00:00``) that the timestamp stage reads in the user's
``--timezone``. The caller says whose fields the header is matched against
(a target's :class:`~uploader.fields.FieldSet`).

>>> from uploader.schemas.signals import FIELDS
>>> table = read_table("sample_files/signals.csv", fields=FIELDS)
>>> table.frame.loc[2, "Name"], table.fields["name"], table.frame.loc[2, "Transaction ID"]
('Sale', 'Name', '00000000-00000001')

A file that cannot be used at all raises :class:`~uploader.errors.FileFormatError`
with one sentence naming the file; rows with the wrong number of fields are kept
and flagged in :attr:`Table.shape_problems` for the validator.

The package's files say which part of reading they are:

- :mod:`.table`: the table model (:class:`Table`, :class:`Layout`) and the formula guard undone;
- :mod:`.header`: which row is the header, and which column is which field;
- :mod:`.opener`: :func:`open_table`, :func:`read_table`, :func:`peek_header`, the chunked :class:`TableReader`;
- :mod:`.csvfile`: encodings, delimiters, the Arrow path and the careful path;
- :mod:`.workbook`: zip and XML checks, calamine, the special cells of ODS, OOXML and XLS;
- :mod:`.cells`: one value as text (:func:`value_text`), for workbook cells and Python values alike;
- :mod:`.gzipped`: ``.csv.gz``.
"""

from __future__ import annotations

from .cells import value_text
from .header import check_header, pick_header
from .opener import HeaderPeek, TableReader, combine, file_identity, open_table, peek_header, read_table
from .table import (
    CHUNK_ROWS,
    CSV_EXTENSIONS,
    DATE_CELL,
    FORMULA_STARTS,
    NUMBER_CELL,
    XLSX_EXTENSIONS,
    Layout,
    Table,
    unescape_formulas,
)
from .workbook import EXCEL_ERRORS, check_archive, check_xml

__all__ = [
    "CHUNK_ROWS",
    "CSV_EXTENSIONS",
    "DATE_CELL",
    "EXCEL_ERRORS",
    "FORMULA_STARTS",
    "NUMBER_CELL",
    "XLSX_EXTENSIONS",
    "HeaderPeek",
    "Layout",
    "Table",
    "TableReader",
    "check_archive",
    "check_header",
    "check_xml",
    "combine",
    "file_identity",
    "open_table",
    "peek_header",
    "pick_header",
    "read_table",
    "unescape_formulas",
    "value_text",
]
