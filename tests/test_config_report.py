"""Configuration resolution and report writing."""

from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from uploader import report as report_module
from uploader.config import Secret, check_base_url, resolve
from uploader.errors import UsageError
from uploader.report import default_report_path, write_report


def test_flags_beat_environment_beat_defaults():
    env = {"SIGNAL_UPLOADER_TIMEZONE": "Europe/Paris", "SIGNAL_UPLOADER_CONCURRENCY": "3"}
    settings = resolve({"timezone": "UTC", "concurrency": None}, environ=env)
    assert settings.timezone == "UTC" and settings.concurrency == 3 and settings.api == "signals"


def test_token_never_shows():
    settings = resolve({}, environ={"INVOCA_API_TOKEN": "tok-123"}, need_token=True)
    assert settings.token == Secret("tok-123")
    assert "tok-123" not in repr(settings) and "tok-123" not in str(settings.token)


def test_token_file_wins_over_environment(tmp_path):
    path = tmp_path / "t"
    path.write_text("from-file\n")
    settings = resolve({}, environ={"INVOCA_API_TOKEN": "from-env"}, token_file=path, need_token=True)
    assert settings.token.reveal() == "from-file"


@pytest.mark.parametrize(
    "flags,message",
    [
        ({"concurrency": 0}, "--concurrency"),
        ({"timezone": "Nowhere/Town"}, "IANA"),
        ({"base_url": "ftp://x"}, r"not an http\(s\) URL"),
        ({"base_url": "http://10.0.0.5/api/2020-10-01"}, "https is required"),
    ],
)
def test_bad_settings(flags, message):
    with pytest.raises(UsageError, match=message):
        resolve(flags)


def test_base_url_rules():
    assert check_base_url("https://invoca.net/api/2020-10-01/") == "https://invoca.net/api/2020-10-01"
    assert check_base_url("http://localhost:8080/api/2020-10-01") == "http://localhost:8080/api/2020-10-01"
    assert check_base_url("http://[::1]:8080/api/x") == "http://[::1]:8080/api/x"


def test_default_report_path():
    assert default_report_path(Path("a/b/march.csv")) == Path("a/b/march.results.csv")
    assert default_report_path(Path("march.XLSX")) == Path("march.results.xlsx")
    assert default_report_path(Path("march.tsv")) == Path("march.results.csv")


def test_xlsx_report_keeps_text_as_text(tmp_path):
    frame = pd.DataFrame(
        {
            "row": [2],
            "status": ["failed"],
            "http_status": ["404"],
            "description": ['=HYPERLINK("http://x")'],
            "id": ["00123"],
        }
    )
    path = write_report(frame, tmp_path / "r.xlsx")
    cells = list(load_workbook(path).active.iter_rows(values_only=True))[1]
    assert cells == (2, "failed", 404, '\'=HYPERLINK("http://x")', "00123")
    assert load_workbook(path).active["D2"].data_type == "s"  # a string, not a formula


def test_reports_are_replaced_atomically(tmp_path, monkeypatch):
    path = tmp_path / "r.csv"
    path.write_text("old report")

    def full_disk(handle, frame, *args, **kwargs):
        handle.write(b"half a rep")
        raise OSError("disk full")

    monkeypatch.setattr(report_module, "write_csv_rows", full_disk)
    with pytest.raises(OSError):
        write_report(pd.DataFrame({"row": [1]}), path)
    assert path.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]  # no temporary left behind
