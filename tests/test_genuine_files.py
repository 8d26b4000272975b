"""Files written by real spreadsheet programs, read as their CSV is: the corpus of genuine files.

Every workbook and CSV here is written, at test time, by the real program
from Debian's packages: LibreOffice Calc (`soffice --convert-to`) and
Gnumeric (`ssconvert`), from a CSV the test writes. So the bytes are the
programs' own (their XML layout, BIFF records, dimensions, styles, number
and date detection, encodings), not a model of them. `make test` installs
both programs; outside CI a machine without them skips these tests, and in
CI their absence is a failure.

The check is what the analyst cares about: the emulator's final state after
uploading the program's file is the one the original CSV gives.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from test_cli_upload import HEADER, ROWS, report_rows

from conftest import Emulator, assert_no_traceback, run_cli, write_csv

TZ = "America/Los_Angeles"
# The sample rows, less "$5", which both programs read as the currency amount 5 (a valid row then).
CORPUS = [HEADER] + [row for row in ROWS if row[7] != "$5"]
# LibreOffice's CSV import: comma, double quote, UTF-8 (76), from line 1, English (US), detect numbers and dates.
LO_IMPORT = "CSV:44,34,76,1,,1033,false,true"
# LibreOffice's text encodings by number: Windows-1252, Mac Roman, code page 850 ("CSV (MS-DOS)").
LO_ENCODINGS = {"windows-1252": 1, "mac-roman": 2, "cp850": 4}
WORKBOOKS = [
    ("libreoffice", "xlsx"),
    ("libreoffice", "ods"),
    ("libreoffice", "xls"),
    ("gnumeric", "Gnumeric_Excel:xlsx"),
    ("gnumeric", "Gnumeric_Excel:xlsx2"),
    ("gnumeric", "Gnumeric_OpenCalc:odf"),
    ("gnumeric", "Gnumeric_Excel:excel_biff8"),
]
EXTENSIONS = {
    "Gnumeric_Excel:xlsx": "xlsx",
    "Gnumeric_Excel:xlsx2": "xlsx",
    "Gnumeric_OpenCalc:odf": "ods",
    "Gnumeric_Excel:excel_biff8": "xls",
}


def _programs() -> dict[str, str]:
    found = {name: shutil.which(command) for name, command in (("libreoffice", "soffice"), ("gnumeric", "ssconvert"))}
    missing = [name for name, path in found.items() if not path]
    if missing:
        message = f"{' and '.join(missing)} not installed (make test installs them from Debian's packages)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


class Programs:
    """The two programs, writing into one folder for the whole session."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.paths = _programs()
        self.profile = (folder / "lo-profile").as_uri()  # its own LibreOffice profile: no clash with a user's

    def libreoffice(self, source: Path, convert_to: str, out: Path) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                self.paths["libreoffice"],
                f"-env:UserInstallation={self.profile}",
                "--headless",
                f"--infilter={LO_IMPORT}",
                "--convert-to",
                convert_to,
                "--outdir",
                str(out),
                str(source),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
        written = out / f"{source.stem}.{convert_to.split(':')[0]}"
        assert written.exists(), f"LibreOffice wrote nothing for {convert_to}"
        return written

    def gnumeric(self, source: Path, exporter: str, out: Path) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"{source.stem}-{exporter.rsplit(':', 1)[-1]}.{EXTENSIONS[exporter]}"
        subprocess.run(
            [self.paths["gnumeric"], "-T", exporter, str(source), str(target)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        return target

    def write(self, program: str, source: Path, form: str) -> Path:
        out = self.folder / program
        return self.libreoffice(source, form, out) if program == "libreoffice" else self.gnumeric(source, form, out)


@pytest.fixture(scope="session")
def programs(tmp_path_factory) -> Programs:
    return Programs(tmp_path_factory.mktemp("genuine"))


@pytest.fixture(scope="session")
def corpus_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("corpus") / "conversions.csv", CORPUS)


def final_state(path: Path, *args) -> tuple[dict, object]:
    """Upload the file to a fresh emulator; its signals by (call, name, partner id), and the CLI's result."""
    server = Emulator()
    try:
        result = run_cli(
            "upload",
            path,
            "--timezone",
            TZ,
            "--base-url",
            server.base_url,
            "--report",
            path.with_name(path.name + ".results.csv"),
            *args,
        )
        assert_no_traceback(result)
        signals = {(s["call_transaction_id"], s["name"], s["partner_unique_id"]): s for s in server.signals()}
    finally:
        server.stop()
    return signals, result


def meaning(signal: dict) -> dict:
    """What a signal says; amounts as numbers ("100.00" from a CSV is 100 in any workbook).

    The occurred time is checked apart: a row without one gets the time the emulator received it.
    """
    keep = ("description", "value", "custom_parameter_1", "api", "call_transaction_id")
    view = {key: signal.get(key) for key in keep}
    view["sale_amount"] = Decimal(signal["sale_amount"]) if signal.get("sale_amount") else None
    return view


@pytest.mark.parametrize("program,form", WORKBOOKS, ids=[f"{p}-{f.rsplit(':', 1)[-1]}" for p, f in WORKBOOKS])
def test_a_workbook_written_by_a_real_program_lands_as_its_csv_does(tmp_path, programs, corpus_csv, program, form):
    workbook = programs.write(program, corpus_csv, form)
    expected, _ = final_state(corpus_csv)
    assert len(expected) == 4  # the sample rows' four signals (one row is not found)

    got, result = final_state(workbook)
    assert result.code == 1, result.output  # the row whose call does not exist
    assert {key: meaning(s) for key, s in got.items()} == {key: meaning(s) for key, s in expected.items()}
    first = got[("00000000-00000001", "Sale", "1")]
    assert first["occurred_at_time_t"] == int(dt.datetime(2026, 11, 2, 18, 0, tzinfo=dt.UTC).timestamp())
    assert "read the sheet 'conversions" in result.stderr  # says which sheet it read
    report = report_rows(workbook.with_name(workbook.name + ".results.csv"))
    assert [r["status"] for r in report] == ["created", "updated", "created", "created", "created", "failed"]
    # The 17-digit start time became a number in the program: exact to a tenth of a second, and said.
    assert "may have been rounded" in report[4]["warning"]


@pytest.mark.parametrize("encoding", sorted(LO_ENCODINGS))
def test_a_csv_saved_by_libreoffice_in_a_legacy_encoding_keeps_its_accents(tmp_path, programs, encoding):
    source = write_csv(
        tmp_path / "accents.csv",
        [HEADER, ["00000000-00000001", "", "", "", "Vente", "1", "Café crème, reçu № 5 – Müller", "", "", "", ""]],
    )
    saved = programs.libreoffice(
        source, f"csv:Text - txt - csv (StarCalc):44,34,{LO_ENCODINGS[encoding]}", tmp_path / encoding
    )
    saved.read_bytes().decode(encoding.replace("mac-roman", "mac_roman"))  # the program really wrote that encoding
    got, result = final_state(saved)
    assert result.code == 0, result.output
    description = got[("00000000-00000001", "Vente", "1")]["description"]
    # None of the three has "№" (LibreOffice writes "?"), nor cp850 "–" (it writes "-"); every accent arrives.
    assert (
        description.startswith("Café crème, reçu ") and description.endswith(" 5 – Müller")
    ) or description.endswith(" 5 - Müller"), description
    names = {"windows-1252": "windows-1252", "mac-roman": "Mac Roman", "cp850": "code page 850"}
    assert f"read as {names[encoding]}" in result.stderr


@pytest.mark.parametrize("program,form", WORKBOOKS, ids=[f"{p}-{f.rsplit(':', 1)[-1]}" for p, f in WORKBOOKS])
def test_error_cells_written_by_a_real_program_are_invalid_and_never_sent(tmp_path, programs, program, form):
    source = write_csv(
        tmp_path / "formulas.csv",
        [
            HEADER,
            ["00000000-00000001", "", "", "", "=NA()", "1", "x", "", "", "", ""],
            ["00000000-00000004", "", "", "", "Sale", "1", "=1/0", "", "", "", ""],
            ["00000000-00000006", "", "", "", "Sale", "1", "ok", "=0.1*3", "", "", ""],
        ],
    )
    workbook = programs.write(program, source, form)
    got, result = final_state(workbook)
    assert result.code == 1, result.output
    report = report_rows(workbook.with_name(workbook.name + ".results.csv"))
    assert [r["status"] for r in report] == ["invalid", "invalid", "created"]
    assert "is an Excel error value" in report[0]["error"] and "Name" in report[0]["error"]
    assert "is an Excel error value" in report[1]["error"] and "Description" in report[1]["error"]
    # Only the good row arrived, its computed amount as the program showed it (0.3, not 0.30000000000000004).
    assert list(got) == [("00000000-00000006", "Sale", "1")]
    assert got[("00000000-00000006", "Sale", "1")]["sale_amount"] == "0.3"


@pytest.mark.parametrize("program,form", WORKBOOKS, ids=[f"{p}-{f.rsplit(':', 1)[-1]}" for p, f in WORKBOOKS])
def test_a_time_at_midnight_written_by_a_real_program_is_read_as_the_program_shows_it(
    tmp_path, programs, program, form
):
    # The cell's value is a whole day either way; its number format says whether a time of day is shown.
    source = write_csv(
        tmp_path / "midnight.csv",
        [HEADER, ["00000000-00000001", "", "", "", "Sale", "1", "x", "", "", "2026/11/02 12:00:00 AM", ""]],
    )
    workbook = programs.write(program, source, form)
    got, result = final_state(workbook)
    if program == "libreoffice":  # it keeps the time: "YYYY/MM/DD HH:MM:SS AM/PM", shown as 12:00:00 AM
        assert result.code == 0, result.output
        signal = got[("00000000-00000001", "Sale", "1")]
        # Midnight in Los Angeles (PST) is 08:00 UTC.
        assert signal["occurred_at_time_t"] == int(dt.datetime(2026, 11, 2, 8, tzinfo=dt.UTC).timestamp())
    else:  # Gnumeric's import shows the cell as a date alone (yyyy-mm-dd): refused, as the user sees it
        assert result.code == 1 and not got, result.output
        report = report_rows(workbook.with_name(workbook.name + ".results.csv"))
        assert "has a date but no time of day" in report[0]["error"]


NEW_WARNINGS = ("would make a second signal", "the file's own times say otherwise", "is before the call started")


@pytest.mark.parametrize(
    "program,form", [("csv", ""), *WORKBOOKS], ids=["csv", *[f"{p}-{f.rsplit(':', 1)[-1]}" for p, f in WORKBOOKS]]
)
def test_the_genuine_files_raise_no_false_alarm_when_planned_again(tmp_path, programs, corpus_csv, program, form):
    """Issue 30's warnings (second signal, timezone, conversion before its call) on the corpus, sent then planned."""
    path = corpus_csv if program == "csv" else programs.write(program, corpus_csv, form)
    server = Emulator()
    try:
        args = ("--timezone", TZ, "--base-url", server.base_url, "--state-dir", tmp_path / "state")
        sent = run_cli("upload", path, *args, "--report", tmp_path / "sent.csv")
        assert_no_traceback(sent)
        planned = run_cli("upload", path, *args, "--dry-run", "--report", tmp_path / "plan.csv")
        assert_no_traceback(planned)
    finally:
        server.stop()
    for report in ("sent.csv", "plan.csv"):
        rows = report_rows(tmp_path / report)
        assert not [r["warning"] for r in rows if any(w in r["warning"] for w in NEW_WARNINGS)], report
    plans = [r["plan"] for r in report_rows(tmp_path / "plan.csv")]
    # Every row the first run confirmed is unchanged; the one whose call does not exist is still new.
    assert plans.count("new") == 1 and plans.count("unchanged") == len(plans) - 1, plans
