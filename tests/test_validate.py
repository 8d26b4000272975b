"""Validation: every rule, every problem of every row, normalised values, warnings."""

import pandas as pd
import pytest

from uploader.config import resolve
from uploader.pipeline import check_file

from conftest import write_csv

COLUMNS = [
    "transaction_id",
    "call_start_time",
    "calling_phone_number",
    "duration_in_seconds",
    "name",
    "partner_unique_id",
    "sale_amount",
    "value",
    "custom_parameter_1",
    "occurred_at_time",
]


def check(tmp_path, rows, columns=COLUMNS, tz="America/Los_Angeles", region=None):
    path = write_csv(tmp_path / "in.csv", [columns] + rows)
    _table, validation, _ = check_file(path, resolve({"timezone": tz, "phone_region": region}))
    return validation


def row(**values):
    return [values.get(c, "") for c in COLUMNS]


def codes_by_row(validation, severity="error"):
    frame = validation.problems.frame()
    frame = frame[frame["severity"] == severity]
    return {r: sorted(g["code"]) for r, g in frame.groupby("row")}


def test_a_good_row_is_valid_and_normalised(tmp_path):
    v = check(
        tmp_path,
        [
            row(
                call_start_time="2016/04/11 01:00:00 PM",
                calling_phone_number="(415) 555-0134",
                duration_in_seconds="125",
                name=" Sale ",
                sale_amount="100.50",
                value="TRUE",
            )
        ],
    )
    assert v.valid.all()
    r = v.rows.loc[2]
    assert r["call_start_time"] == pd.Timestamp("2016-04-11T20:00:00Z")
    assert r["calling_phone_number"] == "+14155550134"
    assert r["name"] == "Sale"
    assert r["value"] == "true"
    assert pd.isna(r["occurred_at_time"])


def test_every_problem_of_every_row_is_collected(tmp_path):
    v = check(
        tmp_path,
        [
            row(name="", sale_amount="$1,000", value="yes", custom_parameter_1="x" * 256),
            row(
                transaction_id="1.23457E+15",
                name="Sale",
                duration_in_seconds="-5",
                calling_phone_number="12",
                occurred_at_time="2016-04-11T13:00:00",
            ),
            row(transaction_id="T1", name="Sale"),
        ],
    )
    assert codes_by_row(v) == {
        2: ["call-reference-required", "name-required", "sale-amount-format", "too-long", "value-format"],
        3: ["duration-format", "phone-invalid", "scientific-notation", "time-no-offset"],
    }
    assert v.valid.tolist() == [False, False, True]
    errors = v.problems.messages_by_row()
    assert "sale_amount '$1,000': must be a number with at most 2 decimal places" in errors[2]
    assert errors[2].count(";") == 4  # five problems, one line


@pytest.mark.parametrize(
    "amount,ok",
    [
        ("100", True),
        ("100.5", True),
        ("100.50", True),
        ("0.99", True),
        (".5", True),
        ("100.505", False),
        ("1,000.00", False),
        ("$5", False),
        ("5 USD", False),
        ("1e3", False),
    ],
)
def test_sale_amount(tmp_path, amount, ok):
    assert check(tmp_path, [row(transaction_id="T", name="Sale", sale_amount=amount)]).valid.all() == ok


@pytest.mark.parametrize(
    "value,normal",
    [("true", "true"), ("FALSE", "false"), ("1", "true"), ("0", "false"), ("", "true"), ("True", "true")],
)
def test_value_accepts_documented_forms_and_defaults_to_true(tmp_path, value, normal):
    v = check(tmp_path, [row(transaction_id="T", name="Sale", value=value)])
    assert v.valid.all() and v.rows.loc[2, "value"] == normal


@pytest.mark.parametrize(
    "duration,ok", [("0", True), ("125", True), ("125.0", True), ("12.5", False), ("-1", False), ("two", False)]
)
def test_duration(tmp_path, duration, ok):
    v = check(tmp_path, [row(call_start_time="1460404800", name="Sale", duration_in_seconds=duration)])
    assert v.valid.all() == ok


def test_custom_parameters_up_to_255(tmp_path):
    v = check(
        tmp_path,
        [
            row(transaction_id="T", name="S", custom_parameter_1="x" * 255),
            row(transaction_id="T", name="S", custom_parameter_1="x" * 256),
        ],
    )
    assert v.valid.tolist() == [True, False]


def test_phone_numbers_normalised_to_e164_with_region(tmp_path):
    v = check(
        tmp_path,
        [
            row(call_start_time="1460404800", name="S", calling_phone_number="020 7946 0018"),
            row(call_start_time="1460404800", name="S", calling_phone_number="+1 415-555-0134"),
        ],
        region="GB",
    )
    assert v.valid.all()
    assert v.rows["calling_phone_number"].tolist() == ["+442079460018", "+14155550134"]


@pytest.mark.parametrize("phone", ["12", "555", "not a number", "4.15555E+09", "+1 415 555 01345678"])
def test_impossible_phone_numbers_are_invalid(tmp_path, phone):
    v = check(tmp_path, [row(call_start_time="1460404800", name="S", calling_phone_number=phone)])
    assert not v.valid.any()


def test_transaction_id_or_call_start_time_is_enough(tmp_path):
    v = check(
        tmp_path,
        [
            row(transaction_id="T", name="S"),
            row(call_start_time="1460404800", name="S"),
            row(name="S", calling_phone_number="4155550134"),
        ],
    )
    assert v.valid.tolist() == [True, True, False]


def test_call_outcomes_names_follow_the_same_rules(tmp_path):
    columns = [
        "transaction_id",
        "start_time_t",
        "outcome_name",
        "occurred_at_time_t",
        "custom_paramter_1",
        "sale_amount",
    ]
    v = check(
        tmp_path,
        [["", "1460404800", "Sale", "1460404800", "x", "1.00"], ["", "", "", "soon", "x" * 300, "1.001"]],
        columns=columns,
    )
    assert v.valid.tolist() == [True, False]
    frame = v.problems.frame()
    # The messages name the analyst's own columns.
    assert set(frame["field"]) >= {"outcome_name", "occurred_at_time_t", "custom_paramter_1", "sale_amount"}


def test_duplicates_without_partner_id_warn_but_stay_valid(tmp_path):
    v = check(
        tmp_path,
        [
            row(transaction_id="T1", name="Sale"),
            row(transaction_id="T1", name="sale"),
            row(transaction_id="T1", name="Sale", partner_unique_id="2"),
            row(transaction_id="T2", name="Sale"),
        ],
    )
    assert v.valid.all()
    warnings = codes_by_row(v, "warning")
    assert warnings == {2: ["duplicate-without-id"], 3: ["duplicate-without-id"]}
    assert "only row 3 will remain" in v.problems.messages_by_row("warning")[2]


def test_duplicates_by_search_fields(tmp_path):
    v = check(
        tmp_path,
        [
            row(call_start_time="1460404800", calling_phone_number="4155550134", name="Sale"),
            row(call_start_time="2016-04-11T20:00:00Z", calling_phone_number="+14155550134", name="Sale"),
        ],
    )
    assert codes_by_row(v, "warning") == {2: ["duplicate-without-id"], 3: ["duplicate-without-id"]}


def test_search_fields_beside_a_transaction_id_are_ignored_with_a_warning(tmp_path):
    v = check(tmp_path, [row(transaction_id="T1", call_start_time="1460404800", duration_in_seconds="5", name="Sale")])
    assert v.valid.all()
    text = v.problems.messages_by_row("warning")[2]
    assert "call_start_time, duration_in_seconds are ignored by the API and not sent" in text


def test_excel_serial_warns_and_scientific_id_is_invalid(tmp_path):
    v = check(
        tmp_path,
        [
            row(call_start_time="42471.5416666667", name="Sale"),
            row(transaction_id="1.23457E+15", name="Sale"),
            row(call_start_time="1460404800", calling_phone_number="4.15555E+09", name="Sale"),
        ],
    )
    assert v.valid.tolist() == [True, False, False]
    assert codes_by_row(v, "warning")[2] == ["excel-serial-time"]
    assert codes_by_row(v)[4] == ["scientific-notation"]


def test_row_with_wrong_field_count_is_invalid_and_the_rest_is_not(tmp_path):
    path = tmp_path / "shape.csv"
    path.write_text("transaction_id,name\n1,Sale\n2,Sale,extra\n3,Sale\n", encoding="utf-8")
    _, v, _ = check_file(path, resolve({}))
    assert v.valid.tolist() == [True, False, True]
    assert "3 fields but the header has 2" in v.problems.messages_by_row()[3]


def test_fast_north_american_path_agrees_with_phonenumbers():
    import itertools
    import random

    import phonenumbers

    from uploader.problems import Problems
    from uploader.validate import _PhoneBook

    rng = random.Random(4)
    spellings = [
        "({a}) {b}-{c}",
        "{a}-{b}-{c}",
        "{a}.{b}.{c}",
        "{a} {b} {c}",
        "{a}{b}{c}",
        "1 {a} {b} {c}",
        "1-{a}-{b}-{c}",
        "+1 {a} {b} {c}",
        "+1-{a}-{b}-{c}",
        "+1{a}{b}{c}",
        "1({a}){b}-{c}",
        "+1 ({a}) {b}-{c}",
        "1{a}{b}{c}",
        "({a}){b}{c}",
        "{a} {b}{c}",
        "+1.{a}.{b}.{c}",
    ]
    values = []
    for spelling, _ in itertools.product(spellings, range(30)):
        a = f"{rng.randrange(0, 1000):03d}"
        values.append(spelling.format(a=a, b=f"{rng.randrange(0, 1000):03d}", c=f"{rng.randrange(0, 10000):04d}"))
    values += [
        "555-0134",
        "+44 20 7946 0018",
        "1 800 FLOWERS",
        "+1 415 555 0134 ext 5",
        "123",
        "+(415) 555-0134",
        "41-55-55-01-34",
        "(4155550134)",
        "+14155550134",
        "+4155550134",
        "1 (555) 555-0134",
        "0 415 555 0134",
        "+1 015 555 0134",
        "415 555 0134 ",
        "４１５５５５０１３４",
    ]
    series = pd.Series(values, index=range(2, 2 + len(values)), dtype=object)
    fast = _PhoneBook("US").normalise(series, Problems())
    for value, got in zip(values, fast):
        try:
            number = phonenumbers.parse(value, "US")
            expected = (
                phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                if phonenumbers.is_possible_number(number)
                else ""
            )
        except phonenumbers.NumberParseException:
            expected = ""
        assert got == expected, value
