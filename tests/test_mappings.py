"""Column mappings (saved by the web page, used by ``--mapping``) and corrected cells, through the library and the CLI."""

from __future__ import annotations

import pytest

from uploader.config import resolve
from uploader.errors import FileFormatError, UsageError
from uploader.mappings import MappingStore
from uploader.run import Run

from conftest import SAMPLES, run_cli, write_csv

TZ = "America/Los_Angeles"


def test_a_mapping_reads_unknown_headers_as_fields_and_leaves_columns_out(tmp_path):
    path = write_csv(tmp_path / "crm.csv", [["Ref", "What", "Description"], ["00000000-00000001", "Sale", "x"]])
    with pytest.raises(FileFormatError, match="no 'name' column"):
        Run(path, resolve({}), job="validate").run()
    settings = resolve({"mapping": (("Ref", "transaction_id"), ("What", "name"), ("Description", ""))})
    result = Run(path, settings, job="validate").run()
    assert result.summary.statuses == {"valid": 1}
    # left out on purpose: not warned about as a column the API does not take
    assert not [w for w in result.file_warnings if "Description" in w]


def test_leaving_out_a_needed_column_is_a_clear_file_error(tmp_path):
    settings = resolve({"timezone": TZ, "mapping": (("Name", ""),)})
    with pytest.raises(FileFormatError, match="no 'name' column"):
        Run(SAMPLES / "signals.csv", settings, job="validate").run()


def test_a_mapping_to_a_field_the_api_does_not_have_is_a_usage_error():
    with pytest.raises(UsageError, match="the column mapping names not fields of these rows: sku"):
        resolve({"mapping": (("Item", "sku"),)})


def test_a_saved_mapping_chooses_its_api_and_refuses_another(tmp_path, isolated_state):
    path = write_csv(tmp_path / "outcomes.csv", [["Ref", "Outcome"], ["00000000-00000001", "Sale"]])
    MappingStore(isolated_state).save(
        "outcomes", "call_outcomes", ["Ref", "Outcome"], {"Ref": "transaction_id", "Outcome": "name"}
    )
    settings = resolve({}, mapping_name="outcomes")
    assert settings.api == "call_outcomes" and settings.target.fields.canonical("REF") == "transaction_id"
    clash = run_cli("validate", path, "--mapping", "outcomes", "--api", "signals")
    assert clash.code == 2
    assert "the mapping 'outcomes' is for --api call_outcomes, not signals" in clash.output
    fine = run_cli("validate", path, "--mapping", "outcomes")
    assert fine.code == 0, fine.output


def test_corrected_cells_replace_the_file_s_cells_and_show_in_the_report(tmp_path):
    report = tmp_path / "checked.csv"
    settings = resolve({"timezone": TZ, "report": report})
    result = Run(SAMPLES / "signals.csv", settings, job="validate", edits={9: {"Sale Amount": "1200.00"}}).run()
    assert result.summary.statuses == {"valid": 11, "invalid": 2}
    assert "1200.00" in report.read_text(encoding="utf-8-sig").splitlines()[8]
    with pytest.raises(UsageError, match="the column 'Price'"):
        Run(SAMPLES / "signals.csv", settings, job="validate", edits={9: {"Price": "1"}}).run()


def test_mapping_names_are_checked(tmp_path):
    with pytest.raises(UsageError, match="not a usable mapping name"):
        MappingStore(tmp_path).save("../etc/passwd", "signals", ["a"], {"a": "name"})
