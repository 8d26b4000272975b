"""The table model: a file's cells as text (:class:`Table`), what its header says (:class:`Layout`),
and the report writer's formula guard undone."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..fields import TEXT, FieldSet

log = logging.getLogger(__name__)

CSV_EXTENSIONS = {".csv", ".txt", ".tsv"}
XLSX_EXTENSIONS = {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"}  # every workbook calamine reads

# What the report writer puts before a cell a spreadsheet could run as a
# formula (OWASP's advice). Reading a report back takes it off again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Table:
    """A file's cells as text.

    ``frame`` has the file's own headers as columns and the spreadsheet row
    number (header row = 1) as index; blank rows are left out.
    """

    path: Path
    kind: str  # "csv" or "xlsx"
    frame: pd.DataFrame
    fields: dict[str, str]  # canonical field -> the file's header for it
    fieldset: FieldSet  # the target's fields the headers were matched against
    ignored_columns: list[str] = field(default_factory=list)
    custom_columns: list[str] = field(default_factory=list)  # values of the target's custom block, by header
    # row number -> (fields in that row, fields in the header)
    shape_problems: dict[int, tuple[int, int]] = field(default_factory=dict)
    blank_rows: int = 0
    unnamed_columns: int = 0  # columns with values but no header: ignored
    has_date_cells: bool = False
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    report_meta: pd.DataFrame | None = None  # a report's own status columns, when asked for
    date1904: bool = False  # the workbook counts serial dates from 1904 (Excel for Mac's old default)
    # row -> headers of cells holding a formula that was never calculated (no saved value)
    uncomputed: dict[int, list[str]] = field(default_factory=dict)
    numeric_ids: dict[int, list[str]] = field(default_factory=dict)  # row -> id headers stored as numbers
    # A workbook's cells that were numbers or dates (NUMBER_CELL, DATE_CELL; 0: text), one row per
    # frame row and one column per frame column, so a workbook report keeps them as such. None: all text.
    cell_types: np.ndarray | None = None

    @property
    def columns(self) -> list[str]:
        """The original headers carried into reports, in file order."""
        return list(self.frame.columns)

    def canonical(self) -> pd.DataFrame:
        """The known fields under their canonical names; absent fields are empty.

        Ids, names, numbers and times are stripped of surrounding white space;
        free text (description, custom parameters) is kept exactly as written.
        The original cells stay untouched in :attr:`frame` for the report.
        """
        columns = {}
        free_text = self.fieldset.free_text
        for name in self.fieldset.names:
            header = self.fields.get(name)
            if header is None:
                columns[name] = pd.Series("", index=self.frame.index, dtype=TEXT)
            elif name in free_text:
                columns[name] = self.frame[header]
            else:
                columns[name] = self.frame[header].str.strip()
        for header in self.custom_columns:  # under their own headers, which no field name can equal
            columns[header] = self.frame[header].str.strip()
        return pd.DataFrame(columns, index=self.frame.index)


CHUNK_ROWS = 100_000
NUMBER_CELL, DATE_CELL = 1, 2  # Table.cell_types


@dataclass
class Layout:
    """What a file's header says: which columns are which field."""

    header: list[str]  # stripped, trailing empty headers dropped
    keep: list[int]  # positions carried into frames (known fields and unknown columns)
    report_positions: list[int]  # a previous report's status columns
    fields: dict[str, str]
    ignored: list[str]
    unnamed: int
    fieldset: FieldSet  # the target's fields
    custom: list[str] = field(default_factory=list)  # headers that are values of the target's custom block

    @property
    def sentinel(self) -> int:
        """A column to test first for rows of only spaces: a required field's (usually filled), else the first."""
        for need in self.fieldset.needs:
            for name in need.any_of:
                if name in self.fields:
                    return self.header.index(self.fields[name])
        return 0

    @property
    def width(self) -> int:
        return len(self.header)


def _frame(columns, names: list[str], index: pd.Index) -> pd.DataFrame:
    frame = pd.DataFrame({i: pd.Series(c, index=index, copy=False) for i, c in enumerate(columns)}, index=index)
    frame.columns = names
    return frame


def unescape_formulas(column: pd.Series) -> pd.Series:
    """Undo the report writer's formula guard: ``'=x`` is read as ``=x``.

    >>> unescape_formulas(pd.Series(["'=SUM(A1)", "'+1 415", "'plain", "=raw"])).tolist()
    ['=SUM(A1)', '+1 415', "'plain", '=raw']
    """
    text = column.astype(str)
    guarded = text.str.startswith("'") & text.str.slice(1, 2).isin(FORMULA_STARTS)
    if not guarded.any():
        return column
    return text.where(~guarded, text.str.slice(1))
