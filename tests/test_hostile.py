"""Hostile and broken input, secrets, personal data and transport.

Whatever comes in, the uploader answers with a clear message and the right
exit code, never a traceback, and sends nothing invalid. The corpus is
generated here: every file is small to describe and some would be large to
store.
"""

import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from test_cli_upload import report_rows

from uploader.errors import FileFormatError

from conftest import ROOT, TOKEN, assert_no_traceback, run_cli, write_csv, write_xlsx

HEADER = ["transaction_id", "name", "description", "sale_amount"]
GOOD_ROW = ["00000000-00000001", "Sale", "fine", "1.00"]

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>
<row r="1"><c r="A1" t="inlineStr"><is><t>name</t></is></c><c r="B1" t="inlineStr"><is><t>transaction_id</t></is></c></row>
<row r="2"><c r="A2" t="inlineStr"><is><t>&lol9;</t></is></c><c r="B2" t="inlineStr"><is><t>1</t></is></c></row>
</sheetData></worksheet>"""


def good_workbook(path: Path) -> Path:
    return write_xlsx(path, [HEADER, GOOD_ROW])


def replace_part(source: Path, target: Path, name: str, data: bytes) -> Path:
    """Copy a workbook, swapping one part of its zip for ``data``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            new.writestr(item, data if item.filename == name else old.read(item.filename))
    return target


def zip_bomb(tmp_path: Path) -> Path:
    """A workbook whose sheet expands 300 MB of spaces from a few hundred KB."""
    source = good_workbook(tmp_path / "seed.xlsx")
    target = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            if item.filename == "xl/worksheets/sheet1.xml":
                with new.open(item.filename, "w", force_zip64=True) as part:
                    block = b" " * (1 << 20)
                    for _ in range(300):
                        part.write(block)
            else:
                new.writestr(item, old.read(item.filename))
    return target


def corpus(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Broken and hostile files -> (path, what the one-line message must say)."""
    files = {}

    def add(name, data, message):
        path = tmp_path / name
        path.write_bytes(data)
        files[name] = (path, message)

    add("empty.csv", b"", "the file is empty")
    add("header_only.csv", b"transaction_id,name\r\n", "no data rows")
    add("junk.csv", os.urandom(4096).replace(b"\x00", b"\x01") + b"\x00" * 64, "not a text CSV file")
    add("text.xlsx", b"transaction_id,name\n1,Sale\n", "not a readable .xlsx workbook")
    # An encrypted workbook is an OLE compound file, not a zip.
    add("password.xlsx", bytes.fromhex("d0cf11e0a1b11ae1") + os.urandom(2048), "password-protected")
    truncated = good_workbook(tmp_path / "whole.xlsx").read_bytes()
    add("truncated.xlsx", truncated[: len(truncated) // 2], "not a readable .xlsx workbook")
    add("data.json", b'{"name": "Sale"}', "unknown file type")
    add("old.xls", bytes.fromhex("d0cf11e0a1b11ae1") + b"\x00" * 512, "not a readable .xls workbook")
    add("dup_headers.csv", b"name,Name,transaction_id\r\nSale,Sale,1\r\n", "appears twice")
    add("no_name.csv", b"transaction_id,description\r\n1,x\r\n", "no 'name' column")
    add("no_call_column.csv", b"name,description\r\nSale,x\r\n", "neither a 'transaction_id' nor")
    # Bytes that read as symbols or box drawing in every single-byte encoding spreadsheets write.
    add("latin_garbage.csv", b"transaction_id,name\r\n1,Sale\xb0\xb1\xb2\xb3\xb4\xb5\r\n", "reads as garbage")

    sheet = tmp_path / "sheet.xlsx"
    write_xlsx(sheet, [HEADER, GOOD_ROW], sheet="Data")
    files["missing_sheet.xlsx"] = (sheet, "no sheet named 'Nope'")

    bomb = zip_bomb(tmp_path)
    files["bomb.xlsx"] = (bomb, "the mark of a zip bomb")

    laughs = replace_part(
        good_workbook(tmp_path / "seed2.xlsx"),
        tmp_path / "laughs.xlsx",
        "xl/worksheets/sheet1.xml",
        BILLION_LAUGHS.encode(),
    )
    files["laughs.xlsx"] = (laughs, "XML declares entities")

    many = tmp_path / "many_parts.xlsx"
    with zipfile.ZipFile(many, "w") as archive:
        for i in range(10_050):
            archive.writestr(f"junk/{i}.xml", b"")
    files["many_parts.xlsx"] = (many, "parts")
    return files


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return corpus(tmp_path_factory.mktemp("corpus"))


CASES = [
    "empty.csv",
    "header_only.csv",
    "junk.csv",
    "text.xlsx",
    "password.xlsx",
    "truncated.xlsx",
    "data.json",
    "old.xls",
    "dup_headers.csv",
    "no_name.csv",
    "no_call_column.csv",
    "latin_garbage.csv",
    "missing_sheet.xlsx",
    "bomb.xlsx",
    "laughs.xlsx",
    "many_parts.xlsx",
]


@pytest.mark.parametrize("name", CASES)
def test_each_broken_or_hostile_file_gets_one_clear_line_and_exit_2(hostile, emulator, name):
    path, message = hostile[name]
    args = ["--sheet", "Nope"] if name == "missing_sheet.xlsx" else []
    result = run_cli("upload", path, "--base-url", emulator.base_url, *args)
    assert result.code == 2, result.output
    assert_no_traceback(result)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert message in lines[0] and path.name in lines[0]
    assert emulator.requests == 0


def peak_rss_mb(*args) -> tuple[int, float]:
    """Run the CLI in a child and return (exit code, the child's peak RSS in MB)."""
    probe = (
        "import resource, subprocess, sys; "
        "code = subprocess.run([sys.executable, '-m', 'uploader', *sys.argv[1:]], "
        "capture_output=True).returncode; "
        "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    ).stdout.split()
    return int(out[0]), int(out[1]) / 1024


@pytest.mark.posix
def test_bombs_are_refused_with_bounded_memory(hostile, tmp_path):
    baseline_code, baseline = peak_rss_mb("validate", hostile["empty.csv"][0])
    assert baseline_code == 2
    for name in ("bomb.xlsx", "laughs.xlsx", "many_parts.xlsx"):
        code, peak = peak_rss_mb("validate", hostile[name][0])
        assert code == 2
        # The bombs would need gigabytes; refusing them costs what an empty file costs.
        assert peak < baseline + 50, (name, peak, baseline)


def test_an_xml_bomb_is_refused_by_its_declarations_before_the_reader_sees_it(hostile):
    from uploader.read import check_archive, check_xml

    laughs = hostile["laughs.xlsx"][0]
    check_archive(laughs)  # small and well-formed as an archive: the zip checks pass
    with pytest.raises(FileFormatError, match="declares entities or a DTD"):
        check_xml(laughs)


def test_bad_rows_are_invalid_and_the_rest_is_sent(tmp_path, emulator):
    path = tmp_path / "rows.csv"
    long = "x" * 300_000  # past Python's default csv field limit
    path.write_text(
        "transaction_id,name,description,custom_parameter_1\r\n"
        "00000000-00000001,Sale,ok,\r\n"
        f"00000000-00000002,Sale,{long},\r\n"
        "00000000-00000003,Sale,ok,,extra,fields\r\n"
        "00000000-00000004,Sale\r\n"
        f"00000000-00000005,Sale,ok,{'y' * 256}\r\n"
        f"00000000-00000006,{'N' * 300},ok,\r\n"
        "00000000-00000007,Sale,ok,\r\n",
        encoding="utf-8",
    )
    result = run_cli("upload", path, "--base-url", emulator.base_url)
    assert result.code == 1
    rows = report_rows(tmp_path / "rows.results.csv")
    assert [r["status"] for r in rows] == ["created", "invalid", "invalid", "invalid", "invalid", "invalid", "created"]
    assert emulator.requests == 2
    assert "longer than 10,000 characters" in rows[1]["error"]
    assert "6 fields but the header has 4" in rows[2]["error"]


FORMULAS = [
    '=HYPERLINK("http://evil.example","click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\tTab first",
    "\rCR first",
]


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
def test_report_cells_are_neutralised_and_the_api_gets_the_exact_text(tmp_path, emulator, extension):
    rows = [["00000000-00000001", "Sale", str(i), text, "-12.50"] for i, text in enumerate(FORMULAS)]
    header = ["transaction_id", "name", "partner_unique_id", "description", "sale_amount"]
    if extension == "csv":
        source = write_csv(tmp_path / "in.csv", [header] + rows)
    else:
        # XML turns a raw carriage return into a line feed, so an .xlsx cannot hold "\r..." as typed.
        rows = rows[:-1]
        source = write_xlsx(tmp_path / "in.xlsx", [header] + rows, text_columns="D")  # typed as text
    formulas = [row[3] for row in rows]
    result = run_cli("upload", source, "--base-url", emulator.base_url)
    assert result.code == 0, result.output
    sent = {s["partner_unique_id"]: s["description"] for s in emulator.signals()}
    assert sent == {str(i): text for i, text in enumerate(formulas)}  # exactly what the user wrote

    report = tmp_path / f"in.results.{extension}"
    cells = report_rows(report)
    for cell, text in zip(cells, formulas):
        assert cell["description"] == "'" + text  # shown as text by a spreadsheet
        assert cell["sale_amount"] == "-12.50"  # numbers stay numbers
    if extension == "xlsx":
        from openpyxl import load_workbook

        sheet = load_workbook(report).active
        assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)  # no formula anywhere

    # The report read back as input sends the original text again, unchanged.
    requests = emulator.requests
    again = tmp_path / f"again.{extension}"
    shutil.copy(report, again)
    result = run_cli("upload", again, "--base-url", emulator.base_url, "--force")
    assert result.code == 0
    assert {s["partner_unique_id"]: s["description"] for s in emulator.signals()} == sent
    assert emulator.requests == requests + len(formulas)
    assert {r["status"] for r in report_rows(tmp_path / f"again.results.{extension}")} == {"updated"}


def test_the_token_never_appears_anywhere(tmp_path, make_emulator):
    secret = "tok-9b1f0c7e-SECRET"
    emulator = make_emulator(token=secret, fail_rate=0.2, lost_answer_rate=0.1, seed=5)
    path = write_csv(
        tmp_path / "in.csv", [HEADER, GOOD_ROW, ["99999999", "Sale", "x", "1"], ["00000000-00000002", "", "x", "$1"]]
    )
    state = tmp_path / "state"
    log = tmp_path / "run.jsonl"
    summary = tmp_path / "summary.json"
    result = run_cli(
        "upload",
        path,
        "--base-url",
        emulator.base_url,
        "-vv",
        "--state-dir",
        state,
        "--log-file",
        log,
        "--summary-json",
        summary,
        token=secret,
    )
    assert result.code == 1, result.output
    assert "urllib3" in result.stderr  # debug logging really was on
    wrong = run_cli(
        "upload", path, "--base-url", emulator.base_url, "-vv", "--state-dir", state, "--force", token=secret + "-wrong"
    )
    assert wrong.code == 2
    places = {"stdout": result.stdout, "stderr": result.stderr, "401 run": wrong.output}
    for file in [log, summary, tmp_path / "in.results.csv", *state.rglob("*")]:
        if file.is_file():
            places[str(file)] = file.read_bytes().decode("utf-8", "replace")
    for where, text in places.items():
        assert secret not in text, where


def test_redaction_filter_catches_what_slips_into_a_log():
    import logging

    from uploader.logs import REDACT, setup_logging

    stream = io.StringIO()
    setup_logging(2)
    logging.getLogger().handlers[0].stream = stream
    REDACT.add_secret("hunter2-token")
    logging.getLogger("urllib3.connectionpool").debug("body: %s", '{"oauth_token": "hunter2-token"}')
    try:
        raise ValueError("failed with hunter2-token")
    except ValueError:
        logging.getLogger("uploader").error("boom", exc_info=True)
    assert "hunter2-token" not in stream.getvalue()
    assert '"oauth_token": "***"' in stream.getvalue()
    REDACT.secrets.clear()


def test_missing_token_is_exit_2_before_any_file_work(tmp_path):
    result = run_cli(
        "upload",
        tmp_path / "does-not-exist.csv",
        "--base-url",
        "https://invoca.net/api/2020-10-01",
        token=None,
        process=True,  # the environment from scratch: no token anywhere
    )
    assert result.code == 2
    assert "no API token" in result.stderr and "does-not-exist" not in result.stderr


def test_token_file_readable_by_others_is_warned_about(tmp_path, emulator):
    path = write_csv(tmp_path / "in.csv", [HEADER, GOOD_ROW])
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o644)
    result = run_cli("upload", path, "--base-url", emulator.base_url, "--token-file", token_file, token=None)
    assert result.code == 0
    assert "can be read by other users" in result.stderr and "chmod 600" in result.stderr
    assert TOKEN not in result.output


def test_mask_pii_hides_phone_numbers_in_printed_output_not_in_the_report(tmp_path):
    path = write_csv(
        tmp_path / "in.csv", [["call_start_time", "calling_phone_number", "name"], ["1460404800", "415555013", "Sale"]]
    )
    plain = run_cli("validate", path)
    assert "415555013" in plain.stdout
    masked = run_cli("validate", path, "--mask-pii", "--report", tmp_path / "r.csv", "-v")
    assert "415555013" not in masked.output
    assert "*****5013" in masked.stdout
    assert report_rows(tmp_path / "r.csv")[0]["calling_phone_number"] == "415555013"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            folder / "key.pem",
            "-out",
            folder / "cert.pem",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return folder / "cert.pem", folder / "key.pem"


def test_tls_is_verified_and_a_ca_bundle_can_be_given(tmp_path, make_emulator, certificate):
    cert, key = certificate
    emulator = make_emulator(tls_cert=cert, tls_key=key)
    assert emulator.base_url.startswith("https://")
    path = write_csv(tmp_path / "in.csv", [HEADER, GOOD_ROW, ["00000000-00000002", "Sale", "", ""]])
    result = run_cli("upload", path, "--base-url", emulator.base_url)
    assert result.code == 2
    assert_no_traceback(result)
    assert "certificate could not be verified" in result.stderr and "--ca-bundle" in result.stderr
    assert emulator.signals() == []

    result = run_cli("upload", path, "--base-url", emulator.base_url, "--ca-bundle", cert)
    assert result.code == 0, result.output
    assert len(emulator.signals()) == 2

    result = run_cli("upload", path, "--base-url", emulator.base_url, "--force", env={"REQUESTS_CA_BUNDLE": str(cert)})
    assert result.code == 0, result.output


def test_no_switch_turns_verification_off():
    result = run_cli("upload", "--help")
    assert result.code == 0 and "--ca-bundle" in result.stdout, result.output  # the help was printed
    for forbidden in ("--insecure", "--no-verify", "-k,"):
        assert forbidden not in result.stdout
