"""What a target's rows hold, declared once: :class:`FieldSet`, and how headers are matched.

Each target's schema module (``schemas/signals.py``, ...) declares a
FieldSet: the field names, the other spellings accepted for them, the columns
a file must have, and which fields are times, phone numbers, identifiers,
booleans, whole numbers or free text. The reader, the validator and the
report read these declarations; none of them knows a target's fields.

Headers match case-insensitively, ignoring spaces, underscores and hyphens:

>>> fields = FieldSet(names=("name", "transaction_id"), aliases={"outcome_name": "name"},
...                   needs=(Need(("name",), "no 'name' column", "add one"),))
>>> fields.canonical("Transaction ID"), fields.canonical("Outcome Name"), fields.canonical("Notes")
('transaction_id', 'name', None)
>>> fields.looks_like_header(["Name", "Notes"]), fields.looks_like_header(["Notes"])
(True, False)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

# Every cell is text in an Arrow-backed column: pandas' string methods on it
# run as compiled Arrow kernels, not one Python call per cell.
TEXT = pd.StringDtype("pyarrow", na_value=np.nan)

# Columns the uploader itself writes in front of the input's columns in its
# reports, in order; the target's id columns follow them. A report fed back in
# as input (the way failed rows are reprocessed) carries them; they are dropped
# silently rather than warned about and copied into the next report again.
OUTCOME_COLUMNS = (
    "row",
    "status",
    "plan",  # what the journal said of the row before it was sent (uploader.plan)
    "http_status",
    "error_class",
    "failure_kind",
    "error",
    "warning",
    "plan_note",
)

# What Excel shows for a long number in a General-format cell: 1.23457E+15.
SCIENTIFIC_NOTATION = r"[-+]?\d(?:[.,]\d+)?[eE][-+]?\d+"

_SQUASH = re.compile(r"[\s_\-]+")


def _common_prefix(a: str, b: str) -> str:
    import os.path

    return os.path.commonprefix([a, b])  # noqa: RUF071 (two strings, not paths: character by character is meant)


def squash(header: str) -> str:
    """Lower-case a header and drop spaces, underscores and hyphens.

    >>> squash(" Call-Start_Time ")
    'callstarttime'
    """
    return _SQUASH.sub("", str(header)).casefold()


@dataclass(frozen=True)
class Need:
    """A file must have at least one of these columns; otherwise no row could be sent."""

    any_of: tuple[str, ...]
    message: str  # after "{path}: "
    hint: str


@dataclass(frozen=True)
class FieldSet:
    """The fields of one target's rows, and what kind each is."""

    names: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)  # other spelling -> field
    # Words people head such a column with (revenue, txn, when): never read as the field on their
    # own, only offered as a likely match (closest), for a person or a --map to confirm.
    synonyms: Mapping[str, str] = field(default_factory=dict)
    needs: tuple[Need, ...] = ()  # column requirements, checked on the header
    times: tuple[str, ...] = ()  # read with the timestamp rules and --timezone
    phones: tuple[str, ...] = ()  # parsed to E.164 with --phone-region
    ids: tuple[str, ...] = ()  # identifiers: a spreadsheet's 1.23457E+15 lost their digits
    padded_ids: tuple[str, ...] = ()  # ids whose leading zeros a spreadsheet may drop
    free_text: tuple[str, ...] = ()  # sent exactly as written, surrounding white space included
    booleans: Mapping[str, str] = field(default_factory=dict)  # field -> what an empty cell means ("" = absent)
    whole_numbers: tuple[str, ...] = ()  # "30.0" is sent as "30"
    report_ids: tuple[str, ...] = ()  # the ids a success carries: the report's columns after the outcome
    # When set, every column that is not a field is a value of this block, named
    # by its header exactly as written (the Calls In Progress API's custom_data:
    # marketing data fields such as "Five9 Disposition"), not an ignored column.
    custom_block: str = ""
    # The pandera schema of the rules on the text, for the columns a file has
    # (canonical names) -> ``pandera.DataFrameSchema``; None: no text rules.
    rules: Callable | None = None
    # Headers (squashed) the user chose to leave out: ignored, whatever they would have meant.
    left_out: frozenset[str] = frozenset()

    @cached_property
    def _lookup(self) -> dict[str, str]:
        lookup = {squash(name): name for name in self.names}
        lookup.update({squash(alias): name for alias, name in self.aliases.items()})
        return lookup

    def mapped(self, columns: Mapping[str, str]) -> FieldSet:
        """These fields with a user's column mapping: header -> field, or "" to leave the column out.

        >>> fields = FieldSet(names=("name", "transaction_id"))
        >>> mine = fields.mapped({"Conversion": "name", "Transaction ID": ""})
        >>> mine.canonical("conversion"), mine.canonical("Transaction ID"), mine.is_left_out("transaction id")
        ('name', None, True)
        """
        unknown = sorted({f for f in columns.values() if f and f not in self.names})
        if unknown:
            raise ValueError(f"not fields of these rows: {', '.join(unknown)}")
        aliases = {**self.aliases, **{header: name for header, name in columns.items() if name}}
        left_out = self.left_out | {squash(header) for header, name in columns.items() if not name}
        return replace(self, aliases=aliases, left_out=frozenset(left_out))

    def is_left_out(self, header: str) -> bool:
        return squash(header) in self.left_out

    @cached_property
    def _report_lookup(self) -> dict[str, str]:
        return {squash(name): name for name in self.report_columns}

    @property
    def report_columns(self) -> tuple[str, ...]:
        """The columns a report of this target puts before the input's own."""
        return OUTCOME_COLUMNS + self.report_ids

    def canonical(self, header: str) -> str | None:
        """The field a header stands for, or None for an unknown column (or one left out)."""
        key = squash(header)
        return None if key in self.left_out else self._lookup.get(key)

    def report_column(self, header: str) -> str | None:
        """The report column a header stands for, or None (see OUTCOME_COLUMNS)."""
        return self._report_lookup.get(squash(header))

    def unmet(self, present: Iterable[str]) -> Need | None:
        """The first requirement a set of fields does not meet, or None."""
        present = set(present)
        return next((need for need in self.needs if not present & set(need.any_of)), None)

    def closest(
        self, header: str, among: Iterable[str] | None = None, at_least: float = 0.7
    ) -> tuple[str, float] | None:
        """The field a header most looks like, and how much (0 to 1); None when nothing is close.

        ``among`` limits the fields compared (a column a file needs). A
        header holding a field's whole name (``Signal Name`` holds ``name``)
        is close; otherwise the spelling must be mostly the same.

        >>> fields = FieldSet(names=("name", "call_start_time", "calling_phone_number"))
        >>> fields.closest("Signal Name"), fields.closest("Caller Phone")[0], fields.closest("Notes")
        (('name', 0.9), 'calling_phone_number', None)
        """
        import difflib

        key = squash(header)
        if not key:
            return None
        wanted = set(self.names if among is None else among)
        spellings = {squash(n): n for n in wanted}
        spellings.update({squash(a): n for a, n in self.aliases.items() if n in wanted})
        # A word of the same meaning is a likely match, never a sure one: at most 0.8.
        meanings = {squash(w): n for w, n in self.synonyms.items() if n in wanted and squash(w) not in spellings}
        best: tuple[str, float] | None = None
        for spelled, name in [*spellings.items(), *meanings.items()]:
            score = difflib.SequenceMatcher(None, key, spelled).ratio()
            if len(spelled) >= 4 and (key.endswith(spelled) or key.startswith(spelled)):
                score = max(score, 0.9)
            prefix = len(_common_prefix(key, spelled))
            if prefix >= 4:  # "Caller Phone" and calling_phone_number share "call"
                score = max(score, 0.6 + 0.35 * difflib.SequenceMatcher(None, key[prefix:], spelled[prefix:]).ratio())
            if spelled in meanings:
                score = 0.8 if key == spelled else min(score, 0.8) * 0.9
            if best is None or score > best[1]:
                best = (name, round(score, 2))
        return best if best is not None and best[1] >= at_least else None

    def looks_like_header(self, cells) -> bool:
        """Whether a record names the fields a row needs (a title row above the header does not)."""
        named = (self.canonical(str(c).strip()) for c in cells if str(c).strip())
        present = {name for name in named if name is not None}
        return bool(present) and self.unmet(present) is None
