"""Stage 2a: turn timestamp text into exact instants, column-wise.

The Signal API documents four formats; all examples mean 11 April 2016, 1 PM
Pacific (``2016-04-11T20:00:00Z``):

============== =============================== ===================================
form           example                         read as
============== =============================== ===================================
epoch          ``1460404800`` / ``...800000``  UTC seconds (10 digits) / ms (13)
compressed     ``20160411130000000``           always US Pacific
ISO 8601       ``2016/04/11T13:00:00-07:00``   its own offset (``Z`` = UTC); ``-``
                                               date separators are accepted too
Excel          ``2016/04/11 01:00:00 PM``      wall clock in ``--timezone``
============== =============================== ===================================

An Excel-compatible value may use a 24-hour clock and still say PM (the
documents' own ``13:00:00.000 PM``). Excel date cells arrive from the reader as
Excel-compatible text, and bare Excel serial numbers (``42471.54``) are read as
wall-clock days since 1899-12-30 with a warning. A wall-clock time that a DST
change skips or repeats is refused, because either answer would be a guess.

>>> import pandas as pd
>>> p = Problems()
>>> parse_times(pd.Series(["1460404800", "2016/04/11 13:00:00.000 PM"], index=[2, 3]),
...             "call_start_time", "America/Los_Angeles", p).dt.strftime("%H:%M%z").tolist()
['20:00+0000', '20:00+0000']
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from dataclasses import field as _field
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from .errors import UsageError
from .fields import SCIENTIFIC_NOTATION, TEXT
from .problems import WARNING, Problems

PACIFIC = "America/Los_Angeles"

_EPOCH_S = r"\d{10}"
_EPOCH_MS = r"\d{13}"
_COMPRESSED = (
    r"(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})(?P<hour>\d{2})(?P<minute>\d{2})(?P<second>\d{2})(?P<fraction>\d{3})"
)
_ISO = (
    r"(?P<date>\d{4}[-/]\d{2}[-/]\d{2})[T ]"
    r"(?P<time>\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)\s?"
    r"(?P<offset>Z|z|[+-]\d{2}(?::?\d{2})?)"
)
_ISO_NO_OFFSET = (
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?|\d{4}/\d{2}/\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?"
)
_EXCEL = (
    r"(?P<year>\d{4})/(?P<month>\d{1,2})/(?P<day>\d{1,2})\s+"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,6}))?)?"
    r"(?:\s*(?P<ampm>[AaPp][Mm]))?"
)
_DATE_ONLY = r"\d{4}[/-]\d{1,2}[/-]\d{1,2}"
# The everyday spellings, for the compiled fast path: ASCII digits, one space
# at most (RE2, which pandas uses on Arrow text, matches these exactly like re).
_ISO_PLAIN = (
    r"[0-9]{4}[-/][0-9]{2}[-/][0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)? ?"
    r"(?:Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)"
)
_EXCEL_PLAIN = r"[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} [AaPp][Mm]"
_SERIAL = r"\d{5}(?:\.\d+)?"
_SCIENTIFIC = SCIENTIFIC_NOTATION

FORMATS_HINT = (
    "use epoch seconds (1460404800), 17-digit Pacific (20160411130000000), "
    "ISO 8601 with an offset (2016-04-11T13:00:00-07:00) or YYYY/MM/DD HH:MM:SS AM/PM"
)


def validate_timezone(name: str | None) -> str | None:
    """Check an IANA timezone name; return it unchanged.

    >>> validate_timezone("Europe/Paris")
    'Europe/Paris'
    """
    if name is None:
        return None
    import pendulum

    try:
        pendulum.timezone(name)
    except Exception:
        raise UsageError(
            f"--timezone {name!r} is not a known IANA timezone",
            hint="use a name such as America/Los_Angeles, America/New_York, Europe/London or UTC",
        ) from None
    return name


def needs_timezone(values: pd.Series) -> pd.Series:
    """Which values are wall-clock times (Excel-compatible text or serials)."""
    text = values.astype(str).str.strip()
    return text.str.fullmatch(_EXCEL) | text.str.fullmatch(_SERIAL)


# The documented epoch forms are 10 digits (13 with milliseconds): the first such second.
EARLIEST = pd.Timestamp(1_000_000_000, unit="s", tz="UTC")
# How far ahead of this computer's clock a time may be: a call cannot have started
# in the future (clocks drift a little); a conversion may be logged a day ahead of UTC.
AHEAD = {"call_start_time": pd.Timedelta(minutes=10), "occurred_at_time": pd.Timedelta(days=1)}
# Times that schedule something (an Engage Voice callback): ahead of now by at most
# a year, and not already past (an hour's grace for a file prepared a little earlier).
SCHEDULED = {"callBackDTS": (pd.Timedelta(hours=1), pd.Timedelta(days=366))}
# A 17-digit compressed time a spreadsheet stored as a number: 15 significant digits survive.
_COMPRESSED_AS_NUMBER = r"[0-9]\.[0-9]{14,15}E\+16"


def parse_times(
    values: pd.Series,
    field: str,
    timezone: str | None,
    problems: Problems,
    *,
    label: str | None = None,
    date1904: bool = False,
    now: float | None = None,
    forms: TimeForms | None = None,
) -> pd.Series:
    """Parse a column of timestamp text into UTC instants.

    Empty cells become NaT without a problem (whether a time is required is the
    validator's rule). Every unparseable value becomes NaT and a problem for its
    row; the index of ``values`` must be the spreadsheet row numbers.

    Raises :class:`UsageError` if wall-clock values are present and no
    ``timezone`` was given: guessing one would shift every such row. ``label``
    names the column in that message (default: ``field``).

    The common spellings of each form go through pandas' compiled parsers
    (epoch numbers, 17 digits split arithmetically, ``format="ISO8601"``,
    ``%Y/%m/%d %I:%M:%S %p``); anything else takes the exact, slower path
    of regular expressions, which is also the one that explains refusals.
    """
    # Arrow-backed text: every string method below is one compiled kernel.
    text = values.astype(str).astype(TEXT).str.strip()
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ms, UTC]")
    present = (text != "").to_numpy()
    if not present.any():
        return out
    as_number = text.str.fullmatch(_COMPRESSED_AS_NUMBER).to_numpy(dtype=bool)
    if as_number.any():
        # Exact to a tenth of a second: good enough to find a call, and said.
        rows = text.index[as_number]
        original = text[rows]
        text = text.copy()
        text[rows] = [str(int(Decimal(v))) for v in original]
        problems.add(
            rows,
            field,
            original,
            "time-rounded",
            "is a 17-digit time a spreadsheet stored as a number: read as "
            + text[rows]
            + "; its hundredths of a second may have been rounded (format the column as text to keep them)",
            severity=WARNING,
        )
    out = _parse(text, field, timezone, problems, label, date1904, forms)
    return _plausible(out, text, field, problems, now)


def _plausible(out: pd.Series, text: pd.Series, field: str, problems: Problems, now: float | None) -> pd.Series:
    """Refuse instants the platform cannot have recorded: before the documented epoch forms, or in the future.

    A scheduled time (:data:`SCHEDULED`) is refused when it has passed, or is more than a year ahead.
    """
    now_ts = pd.Timestamp(time.time() if now is None else now, unit="s", tz="UTC")
    if field in SCHEDULED:
        grace, horizon = SCHEDULED[field]
        earliest, latest = now_ts - grace, now_ts + horizon
        bounds = (
            f"which has passed (before {earliest:%Y-%m-%d %H:%M} UTC): a callback is scheduled ahead",
            f"more than a year ahead (after {latest:%Y-%m-%d %H:%M} UTC)",
        )
    else:
        earliest, latest = EARLIEST, now_ts + AHEAD.get(field, AHEAD["occurred_at_time"])
        bounds = (
            f"before {EARLIEST:%Y-%m-%d %H:%M:%S} UTC, the earliest time the API takes",
            f"after {latest:%Y-%m-%d %H:%M} UTC (now, plus "
            f"{'10 minutes' if field == 'call_start_time' else 'a day'}): a time in the future",
        )
    early = (out < earliest).to_numpy(dtype=bool)
    late = (out > latest).to_numpy(dtype=bool)
    for mask, bound in ((early, bounds[0]), (late, bounds[1])):
        if mask.any():
            rows = out.index[mask]
            shown = out[rows].dt.strftime("%Y-%m-%d %H:%M:%S UTC")
            problems.add(rows, field, text[rows], "time-implausible", "was read as " + shown + ", " + bound)
            out[rows] = pd.NaT
    return out


def _parse(
    text: pd.Series,
    field: str,
    timezone: str | None,
    problems: Problems,
    label: str | None,
    date1904: bool,
    forms: TimeForms | None = None,
) -> pd.Series:
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ms, UTC]")
    present = (text != "").to_numpy()
    lengths = text.str.len().to_numpy()
    digits = text.str.fullmatch("[0-9]+").to_numpy(dtype=bool)
    index = text.index

    for width, unit in ((10, "s"), (13, "ms")):
        hit = digits & (lengths == width)
        if hit.any():
            out[hit] = pd.to_datetime(text[hit].astype("int64"), unit=unit, utc=True)
    done = digits & ((lengths == 10) | (lengths == 13))

    compressed = digits & (lengths == 17)
    if compressed.any():
        n = text[compressed].astype("int64").to_numpy()
        naive = _naive(
            n // 10**13,
            n // 10**11 % 100,
            n // 10**9 % 100,
            n // 10**7 % 100,
            n // 10**5 % 100,
            n // 10**3 % 100,
            n % 1000 * 1000,
            index=text.index[compressed],
        )
        _bad_dates(naive, text[compressed], field, problems)
        out[compressed] = _localize(naive, text[compressed], PACIFIC, field, problems, "US Pacific time")
        done |= compressed

    rest = present & ~done
    if rest.any():
        candidates = text[rest]
        iso_like = candidates[candidates.str.fullmatch(_ISO_PLAIN).to_numpy(dtype=bool)]
        if len(iso_like):
            normal = iso_like.str.replace("/", "-", n=2, regex=False)
            parsed = pd.to_datetime(normal, format="ISO8601", utc=True, errors="coerce")
            ok = parsed.notna().to_numpy()
            out[iso_like.index[ok]] = parsed[ok]
            rest[index.get_indexer(iso_like.index[ok])] = False
            if forms is not None:
                forms.offsets.append(iso_like[ok])
        wall_like = candidates[candidates.str.fullmatch(_EXCEL_PLAIN).to_numpy(dtype=bool)]
        if len(wall_like):
            if timezone is None:
                first = int(wall_like.index[0])
                raise _no_timezone(field, label, first, text[first])
            naive = _excel_plain_naive(wall_like)
            ok = naive.notna().to_numpy()
            rows = wall_like.index[ok]
            out[rows] = _localize(naive[ok], text[rows], timezone, field, problems, timezone)
            rest[index.get_indexer(rows)] = False
            if forms is not None:
                forms.wall.append(text[rows])
    if rest.any():
        out[rest] = _parse_slow(text[rest], field, timezone, problems, label, date1904, forms)
    return out


@dataclass
class TimeForms:
    """Which values of a time column carried their own offset (ISO 8601), and which were wall-clock times."""

    offsets: list[pd.Series] = _field(default_factory=list)  # ISO 8601 text, by row
    wall: list[pd.Series] = _field(default_factory=list)  # wall-clock text (read in --timezone), by row


_OFFSET = r"(Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)$"


class ZoneWitness:
    """Whether a file's own offsets contradict the timezone its wall-clock times are read in, across its chunks.

    A file that holds ISO 8601 times with offsets beside wall-clock times tells
    which zone its author was in: when the chosen timezone's offset on those
    dates is not the one the file carries, every wall-clock time is warned
    about, naming both. UTC offsets (``Z``, ``+00:00``) are not evidence:
    systems export UTC whatever their users' zone. The first contradiction
    found is kept for the rest of the file.

    >>> import pandas as pd
    >>> p, forms = Problems(), TimeForms()
    >>> times = parse_times(pd.Series(["2026-06-01T10:00:00+02:00", "2026/06/01 10:00:00 AM"], index=[2, 3]),
    ...                     "occurred_at_time", "America/Chicago", p, forms=forms)
    >>> ZoneWitness("America/Chicago").look({"occurred_at_time": (forms, times)}, p, {})
    >>> p.frame()["message"].tolist()[0][:70]
    "is read as a wall-clock time in America/Chicago, but the file's own ti"
    """

    def __init__(self, timezone: str | None):
        self.timezone = timezone
        self.evidence: str | None = None

    def look(self, columns: dict[str, tuple[TimeForms, pd.Series]], problems: Problems, labels: dict[str, str]) -> None:
        """One checked chunk's time columns (field -> (forms, instants)); warns its wall-clock values."""
        if self.timezone is None:
            return
        walls = [(f, pd.concat(forms.wall)) for f, (forms, _) in columns.items() if forms.wall]
        if not walls:
            return
        if self.evidence is None:
            for f, (forms, instants) in columns.items():
                if forms.offsets and self.evidence is None:
                    self.evidence = self._contradiction(pd.concat(forms.offsets), instants, labels.get(f, f))
        if self.evidence is None:
            return
        for f, wall in walls:
            problems.add(
                wall.index,
                f,
                wall,
                ZONE_CONTRADICTS_FILE,
                f"is read as a wall-clock time in {self.timezone}, but the file's own times say otherwise: "
                f"{self.evidence}; if the file's times are all in one timezone, choose that one",
                severity=WARNING,
            )

    def _contradiction(self, text: pd.Series, instants: pd.Series, label: str) -> str | None:
        offsets = text.str.extract(_OFFSET, expand=False).str.upper()
        carried = offsets[
            (offsets.notna() & ~offsets.isin(["Z", "+00", "-00", "+00:00", "-00:00", "+0000"])).to_numpy()
        ]
        if carried.empty:
            return None
        sign = np.where(carried.str.startswith("-"), -1, 1)
        digits = carried.str.replace(r"[^0-9]", "", regex=True)
        minutes = sign * (digits.str.slice(0, 2).astype(int) * 60 + digits.str.slice(2, 4).replace("", "0").astype(int))
        when = instants[carried.index]
        local = when.dt.tz_convert(self.timezone)
        zone = ((local.dt.tz_localize(None) - when.dt.tz_localize(None)).dt.total_seconds() // 60).astype(int)
        differ = (zone.to_numpy() != minutes.to_numpy()) & when.notna().to_numpy()
        if not differ.any():
            return None
        row = carried.index[differ][0]
        theirs = _offset_text(int(minutes.to_numpy()[differ][0]))
        ours = _offset_text(int(zone.to_numpy()[differ][0]))
        return (
            f"row {row}'s {label} {text[row]!r} carries {theirs}, where {self.timezone} is {ours} "
            f"on {local[row]:%Y-%m-%d}"
        )


def _offset_text(minutes: int) -> str:
    """``-300`` -> ``UTC-05:00``."""
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


ZONE_CONTRADICTS_FILE = "timezone-contradicts-file"


def _no_timezone(field: str, label: str | None, row: int, value: str) -> UsageError:
    return UsageError(
        f"{label or field!r} holds wall-clock times but no timezone was given (row {row}: {value!r})",
        hint="say which timezone they are in with --timezone, e.g. --timezone America/New_York",
    )


def _parse_slow(
    text: pd.Series,
    field: str,
    timezone: str | None,
    problems: Problems,
    label: str | None,
    date1904: bool = False,
    forms: TimeForms | None = None,
) -> pd.Series:
    """The reference parser: one regular expression per form, every refusal explained."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ms, UTC]")
    remaining = text != ""

    def take(pattern: str) -> pd.Series:
        nonlocal remaining
        hit = remaining & text.str.fullmatch(pattern)
        remaining = remaining & ~hit
        return hit

    epoch_s = take(_EPOCH_S)
    if epoch_s.any():
        out[epoch_s] = pd.to_datetime(text[epoch_s].astype("int64"), unit="s", utc=True)
    epoch_ms = take(_EPOCH_MS)
    if epoch_ms.any():
        out[epoch_ms] = pd.to_datetime(text[epoch_ms].astype("int64"), unit="ms", utc=True)

    compressed = take(_COMPRESSED)
    if compressed.any():
        parts = text[compressed].str.extract(_COMPRESSED)
        naive = _from_parts(parts, parts["hour"].astype(int))
        _bad_dates(naive, text[compressed], field, problems)
        out[compressed] = _localize(naive, text[compressed], PACIFIC, field, problems, "US Pacific time")

    iso = take(_ISO)
    if iso.any():
        parts = text[iso].str.extract(_ISO)
        offset = parts["offset"].str.upper().str.replace(r"^([+-]\d{2})$", r"\1:00", regex=True)
        normal = parts["date"].str.replace("/", "-") + "T" + parts["time"].str.replace(",", ".") + offset
        parsed = pd.to_datetime(normal, format="ISO8601", utc=True, errors="coerce")
        _bad_dates(parsed, text[iso], field, problems)
        out[iso] = parsed
        if forms is not None:
            forms.offsets.append(text[iso][parsed.notna().to_numpy()])

    excel = take(_EXCEL)
    serial = take(_SERIAL)
    wall = excel | serial
    if forms is not None and wall.any():
        forms.wall.append(text[wall])
    if wall.any() and timezone is None:
        first = int(text.index[wall.to_numpy()][0])
        raise _no_timezone(field, label, first, text[first])
    if excel.any():
        assert timezone is not None  # a wall-clock time without one raised just above
        naive = _excel_naive(text[excel], field, problems)
        out[excel] = _localize(naive, text[excel], timezone, field, problems, timezone)
    if serial.any():
        assert timezone is not None
        days = text[serial].astype(float)
        # A workbook in the 1904 date system (Excel for Mac's old default) counts from 1904-01-01.
        epoch = pd.Timestamp("1904-01-01" if date1904 else "1899-12-30")
        naive = (epoch + pd.to_timedelta(days, unit="D")).dt.round("s")
        localized = _localize(naive, text[serial], timezone, field, problems, timezone)
        out[serial] = localized
        shown = naive.dt.strftime("%Y/%m/%d %H:%M:%S")
        problems.add(
            text.index[serial.to_numpy()],
            field,
            text[serial],
            "excel-serial-time",
            "looks like an Excel serial date, read as " + shown + f" in {timezone}; "
            "format the column as yyyy/mm/dd hh:mm:ss so no precision is lost",
            severity=WARNING,
        )

    scientific = take(_SCIENTIFIC)
    problems.add(
        text.index[scientific.to_numpy()],
        field,
        text[scientific],
        "scientific-notation",
        "was turned into scientific notation by a spreadsheet and its digits are lost; "
        "format the column as text and export again",
    )
    date_only = take(_DATE_ONLY)
    problems.add(
        text.index[date_only.to_numpy()], field, text[date_only], "time-date-only", "has a date but no time of day"
    )
    no_offset = take(_ISO_NO_OFFSET)
    problems.add(
        text.index[no_offset.to_numpy()],
        field,
        text[no_offset],
        "time-no-offset",
        "ISO 8601 times need a UTC offset or Z (2016-04-11T13:00:00-07:00); for wall-clock "
        "times write YYYY/MM/DD HH:MM:SS and give --timezone",
    )
    problems.add(
        text.index[remaining.to_numpy()],
        field,
        text[remaining],
        "time-format",
        "is not a timestamp the API accepts; " + FORMATS_HINT,
    )
    return out


def _bad_dates(parsed: pd.Series, text: pd.Series, field: str, problems: Problems) -> None:
    bad = parsed.isna()
    problems.add(
        text.index[bad.to_numpy()],
        field,
        text[bad],
        "time-invalid",
        "is not a real date and time (check the month, day and hour)",
    )


def _excel_naive(text: pd.Series, field: str, problems: Problems) -> pd.Series:
    parts = text.str.extract(_EXCEL)
    hour = parts["hour"].astype(int)
    ampm = parts["ampm"].fillna("").str.upper()
    # 12-hour clock: 12 AM is midnight, 1-11 PM add twelve. A 24-hour value
    # with a redundant PM (the documents' "13:00:00.000 PM") keeps its hour.
    h24 = hour.where(~((ampm == "AM") & (hour == 12)), 0)
    h24 = h24.where(~((ampm == "PM") & (hour >= 1) & (hour <= 11)), hour + 12)
    contradictory = ((ampm == "AM") & (hour > 12) & (hour <= 23)) | ((ampm == "PM") & (hour == 0))
    problems.add(
        text.index[contradictory.to_numpy()],
        field,
        text[contradictory],
        "time-am-pm",
        "has an hour that does not fit its AM/PM",
    )
    naive = _from_parts(parts, h24)
    invalid = naive.isna() & ~contradictory
    problems.add(
        text.index[invalid.to_numpy()],
        field,
        text[invalid],
        "time-invalid",
        "is not a real date and time (check the month, day and hour)",
    )
    return naive.where(~contradictory)


def _from_parts(parts: pd.DataFrame, hour: pd.Series) -> pd.Series:
    """Naive datetimes from extracted text parts; impossible dates are NaT."""

    def number(name: str, default: str = "0") -> np.ndarray:
        return parts[name].fillna(default).astype("int64").to_numpy()

    micro = parts["fraction"].fillna("0").str.ljust(6, "0").astype("int64").to_numpy()
    return _naive(
        number("year"),
        number("month"),
        number("day"),
        hour.astype("int64").to_numpy(),
        number("minute"),
        number("second"),
        micro,
        index=parts.index,
    )


def _excel_plain_naive(text: pd.Series) -> pd.Series:
    """``YYYY/MM/DD hh:mm:ss AM`` (every part at its place), by position; NaT if not a real time."""
    cells = _fixed_width_bytes(text, 22)
    digits = cells.astype(np.int64) - ord("0")

    def number(start: int, stop: int) -> np.ndarray:
        return digits[:, start:stop] @ 10 ** np.arange(stop - start - 1, -1, -1)

    hour = number(11, 13)
    pm = (cells[:, 20] | 0x20) == ord("p")  # ASCII lower case
    twelve_hour = (hour >= 1) & (hour <= 12)  # others take the careful path, which explains them
    h24 = np.where(pm, np.where(hour == 12, 12, hour + 12), np.where(hour == 12, 0, hour))
    naive = _naive(number(0, 4), number(5, 7), number(8, 10), h24, number(14, 16), number(17, 19), 0, index=text.index)
    return naive.where(twelve_hour)


def _fixed_width_bytes(text: pd.Series, width: int) -> np.ndarray:
    """Strings of exactly ``width`` ASCII characters as a (rows, width) array of bytes, read from Arrow's buffer."""
    import pyarrow as pa

    array = pa.array(text.astype(TEXT).array)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    offset_type = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(
        array.buffers()[1],
        dtype=offset_type,
        count=len(array) + 1,
        offset=array.offset * np.dtype(offset_type).itemsize,
    )
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data.reshape(len(array), width)


_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _naive(year, month, day, hour, minute, second, microsecond, *, index) -> pd.Series:
    """Naive datetimes from integer fields, strictly: an impossible date or time is NaT.

    Strict on purpose (a lenient parser reads month 13 of a 17-digit value as
    something else). Days are counted with the proleptic Gregorian calendar.

    >>> _naive(np.array([2016, 2015]), np.array([2, 2]), np.array([29, 29]), 13, 0, 0, 0, index=[2, 3]).tolist()
    [Timestamp('2016-02-29 13:00:00'), NaT]
    """
    year, month, day = (np.asarray(v, dtype=np.int64) for v in (year, month, day))
    hour, minute, second, microsecond = (
        np.broadcast_to(np.asarray(v, dtype=np.int64), year.shape) for v in (hour, minute, second, microsecond)
    )
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[np.clip(month - 1, 0, 11)] + ((month == 2) & leap)
    real = (
        (year >= 1)
        & (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (day <= month_days)
        & (hour <= 23)
        & (minute <= 59)
        & (second <= 59)
    )
    # days since 1970-01-01 of a civil date (H. Hinnant's days_from_civil)
    y = year - (month <= 2)
    era = y // 400
    year_of_era = y - era * 400
    day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    days = era * 146097 + year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year - 719468
    micros = (((days * 24 + hour) * 60 + minute) * 60 + second) * 1_000_000 + microsecond
    values = np.where(real, micros, np.iinfo(np.int64).min).astype("datetime64[us]")  # int64 min is NaT
    return pd.Series(values, index=index)


def _localize(naive: pd.Series, text: pd.Series, tz: str, field: str, problems: Problems, zone_label: str) -> pd.Series:
    """Attach ``tz`` to wall-clock times; DST gaps and overlaps become problems."""
    unparsed = naive.isna()
    localized = naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    failed = localized.isna() & ~unparsed
    if failed.any():
        again = naive[failed].dt.tz_localize(tz, ambiguous=np.ones(int(failed.sum()), dtype=bool), nonexistent="NaT")
        gap = again.isna()
        gap_rows = again.index[gap.to_numpy()]
        overlap_rows = again.index[(~gap).to_numpy()]
        problems.add(
            gap_rows,
            field,
            text[gap_rows],
            "time-nonexistent",
            f"does not exist in {zone_label}: the clocks skip that hour for daylight saving time",
        )
        problems.add(
            overlap_rows,
            field,
            text[overlap_rows],
            "time-ambiguous",
            [
                f"happens twice in {zone_label} (the clocks go back that night); give it as ISO 8601 with "
                f"its offset: {_both_offsets(naive[row], tz)}"
                for row in overlap_rows
            ],
        )
    return localized.dt.tz_convert("UTC")


def _both_offsets(naive: pd.Timestamp, tz: str) -> str:
    """The two ISO 8601 spellings of a wall-clock time that happens twice.

    >>> _both_offsets(pd.Timestamp("2016-11-06 01:30"), "America/New_York")
    '2016-11-06T01:30:00-04:00 (the first) or 2016-11-06T01:30:00-05:00 (the second)'
    """
    zone = ZoneInfo(tz)
    wall = naive.to_pydatetime().replace(tzinfo=zone)
    first, second = wall.replace(fold=0).isoformat(), wall.replace(fold=1).isoformat()
    return f"{first} (the first) or {second} (the second)"


__all__ = ["FORMATS_HINT", "PACIFIC", "needs_timezone", "parse_times", "validate_timezone"]
