"""Timestamps: the four documented formats on the documents' own examples,
ISO with dashes, Excel serials, DST gaps and overlaps, and the timezone rule."""

import pandas as pd
import pendulum
import pytest

from uploader.errors import UsageError
from uploader.problems import Problems
from uploader.timestamps import parse_times, validate_timezone

# 11 April 2016, 1 PM Pacific, as the Signal API document writes it in each format.
DOCUMENTED = [
    "1460404800",  # epoch seconds
    "1460404800000",  # epoch milliseconds
    "20160411130000000",  # compressed, always Pacific
    "2016/04/11T23:00:00.000+03:00",  # ISO, +3 hours
    "2016/04/11T13:00:00.000-07:00",  # ISO, -7 hours
    "2016/04/11T20:00:00.000Z",  # ISO, UTC
    "2016/04/11T13:00:00-07:00",  # ISO, no milliseconds
    "2016/04/11 13:00:00.000 PM",  # Excel-compatible: 24-hour clock *and* PM, as documented
    "2016/04/11 13:00:00 PM",  # Excel-compatible, no milliseconds
]
ONE_PM_PACIFIC = pendulum.datetime(2016, 4, 11, 13, tz="America/Los_Angeles")


def parse(values, tz="America/Los_Angeles"):
    problems = Problems()
    series = pd.Series(values, index=range(2, 2 + len(values)), dtype=object)
    return parse_times(series, "call_start_time", tz, problems), problems.frame()


def test_every_documented_example_is_the_same_instant():
    instants, problems = parse(DOCUMENTED)
    assert problems.empty
    assert instants.dt.tz is not None  # timezone-aware
    expected = pd.Timestamp(ONE_PM_PACIFIC.in_timezone("UTC").isoformat())
    assert (instants == expected).all(), instants.tolist()


def test_pendulum_agrees_with_the_documented_epoch():
    # An independent check of the reference instant itself.
    assert int(ONE_PM_PACIFIC.timestamp()) == 1460404800


@pytest.mark.parametrize(
    "value",
    [
        "2016-04-11T20:00:00Z",
        "2016-04-11T13:00:00-07:00",
        "2016-04-11T13:00:00.000-0700",
        "2016-04-11 13:00:00-07:00",
        "2016/04/11 01:00:00 PM",
        "2016/04/11 1:00 pm",
        "2016/4/11 13:00:00",
    ],
)
def test_other_accepted_spellings(value):
    instants, problems = parse([value])
    assert problems.empty, problems.to_dict("records")
    assert instants.iloc[0] == pd.Timestamp("2016-04-11T20:00:00Z")


def test_compressed_is_pacific_whatever_the_timezone_flag_says():
    instants, _ = parse(["20160411130000000"], tz="Europe/Paris")
    assert instants.iloc[0] == pd.Timestamp("2016-04-11T20:00:00Z")


def test_excel_compatible_is_read_in_the_chosen_timezone():
    instants, _ = parse(["2016/04/11 01:00:00 PM"], tz="America/New_York")
    assert instants.iloc[0] == pd.Timestamp("2016-04-11T17:00:00Z")


def test_milliseconds_are_kept():
    instants, _ = parse(
        ["1460404800123", "2016/04/11T20:00:00.123Z", "20160411130000123", "2016/04/11 01:00:00.123 PM"]
    )
    assert (instants == pd.Timestamp("2016-04-11T20:00:00.123Z")).all()
    instants, _ = parse(["20160411130000005"])
    assert instants.iloc[0] == pd.Timestamp("2016-04-11T20:00:00.005Z")


def test_twelve_oclock_edges():
    instants, problems = parse(["2016/04/11 12:00:00 AM", "2016/04/11 12:30:00 PM"])
    assert problems.empty
    assert instants.iloc[0] == pd.Timestamp("2016-04-11T07:00:00Z")  # midnight PDT
    assert instants.iloc[1] == pd.Timestamp("2016-04-11T19:30:00Z")


def codes(problems):
    return dict(zip(problems["row"], problems["code"]))


def test_dst_gap_and_overlap_make_the_row_invalid_saying_why():
    instants, problems = parse(
        [
            "2016/03/13 02:30:00 AM",  # clocks jump 2:00 -> 3:00 in Los Angeles
            "2016/11/06 01:30:00 AM",  # 1:00-2:00 happens twice
            "20160313023000000",  # the compressed form is Pacific too
        ]
    )
    assert instants.isna().all()
    assert codes(problems) == {2: "time-nonexistent", 3: "time-ambiguous", 4: "time-nonexistent"}
    messages = problems.set_index("row")["message"]
    assert "does not exist" in messages[2] and "daylight saving" in messages[2]
    assert "happens twice" in messages[3]


def test_dst_depends_on_the_zone():
    # The same wall-clock time is fine where the clocks did not change that night.
    instants, problems = parse(["2016/03/13 02:30:00 AM"], tz="Europe/London")
    assert problems.empty and instants.notna().all()


def test_offsets_are_never_ambiguous():
    instants, problems = parse(["2016-11-06T01:30:00-07:00", "2016-11-06T01:30:00-08:00"])
    assert problems.empty
    assert instants.iloc[1] - instants.iloc[0] == pd.Timedelta(hours=1)


@pytest.mark.parametrize(
    "value,code",
    [
        ("2016-04-11T13:00:00", "time-no-offset"),
        ("2016-04-11 13:00:00", "time-no-offset"),
        ("2016/04/11", "time-date-only"),
        ("2016/02/30 10:00:00", "time-invalid"),
        ("20161311130000000", "time-invalid"),
        ("2016/04/11 25:00:00", "time-invalid"),
        ("2016/04/11 13:00:00 AM", "time-am-pm"),
        ("1.46E+09", "scientific-notation"),
        ("146040480", "time-format"),  # 9 digits: neither seconds nor milliseconds
        ("04/11/2016 1:00 PM", "time-format"),  # month/day order is a guess: refused
        ("yesterday", "time-format"),
    ],
)
def test_refused_values(value, code):
    instants, problems = parse([value])
    assert instants.isna().all()
    assert codes(problems) == {2: code}


def test_excel_serial_is_read_with_a_warning():
    instants, problems = parse(["42471.5416666667"])
    assert instants.iloc[0] == pd.Timestamp("2016-04-11T20:00:00Z")
    assert problems.iloc[0]["code"] == "excel-serial-time"
    assert problems.iloc[0]["severity"] == "warning"


def test_empty_cells_are_not_problems():
    instants, problems = parse(["", "  "])
    assert instants.isna().all() and problems.empty


def test_wall_clock_without_timezone_is_refused_not_guessed():
    with pytest.raises(UsageError) as caught:
        parse(["1460404800", "2016/04/11 01:00:00 PM"], tz=None)
    assert "--timezone" in caught.value.hint
    assert "row 3" in caught.value.message


def test_unambiguous_values_need_no_timezone():
    instants, problems = parse(["1460404800", "20160411130000000", "2016-04-11T20:00:00Z"], tz=None)
    assert problems.empty and instants.notna().all()


def test_timezone_names_are_checked():
    assert validate_timezone("America/Chicago") == "America/Chicago"
    with pytest.raises(UsageError):
        validate_timezone("Pacific Time")
