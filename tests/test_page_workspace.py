"""The page's workspace without a browser: header rows, matches, fixes in bulk, words, what is kept."""

from __future__ import annotations

import json
import os
import time

import pytest

from uploader.config import resolve
from uploader.errors import UsageError
from uploader.messages import page_words, size_text
from uploader.read import peek_header
from uploader.schemas.signals import FIELDS
from uploader.web.workspace import Workspace

from conftest import SAMPLES, write_csv, write_xlsx

TZ = "America/Los_Angeles"


@pytest.fixture
def work(tmp_path):
    return Workspace(resolve({"state_dir": tmp_path / "state"}, environ={}), environ={})


def stored(work, path):
    return work.add_file(path.name, [path.read_bytes()])


def test_the_header_row_is_searched_for_or_chosen_and_the_first_rows_come_with_it(tmp_path):
    book = write_xlsx(tmp_path / "t.xlsx", [["Title"], [], ["Name", "Transaction ID"], ["Sale", "00000000-00000001"]])
    found = peek_header(book, fields=FIELDS)
    assert (found.header_row, found.headers) == (3, ["Name", "Transaction ID"])
    assert [number for number, _ in found.rows] == [1, 3, 4]  # blank rows are not offered
    chosen = peek_header(book, fields=FIELDS, header_row=1)
    assert (chosen.header_row, chosen.headers) == (1, ["Title"])
    csv = write_csv(tmp_path / "t.csv", [["Export"], ["Conversion", "Call"], ["Sale", "00000000-00000001"]])
    assert peek_header(csv, fields=FIELDS, header_row=2).headers == ["Conversion", "Call"]


def test_columns_are_matched_exact_remembered_or_close_with_how_sure(tmp_path, work):
    file = stored(work, write_csv(tmp_path / "m.csv", [["Signal Name", "Transaction ID", "Memo"], ["Sale", "x", ""]]))
    columns = work.columns(file.id, "signals")
    assert columns["matches"]["Transaction ID"] == {"field": "transaction_id", "how": "exact", "confidence": 1.0}
    assert columns["matches"]["Signal Name"] == {"field": "name", "how": "close", "confidence": 0.9}
    assert columns["matches"]["Memo"]["how"] == "none"
    assert columns["chosen"] == {"Signal Name": "name"} and columns["missing"] == []
    left_out = work.columns(file.id, "signals", chosen={"Signal Name": ""})
    assert left_out["missing"] == ["no 'name' column (the signal's name, e.g. Sale)"]
    # words of the same meaning are likely, never sure; and a word is matched once
    file = stored(
        work, write_csv(tmp_path / "crm.csv", [["Txn", "Conversion", "Revenue", "Amount"], ["x", "Sale", "1", ""]])
    )
    likely = work.columns(file.id, "signals")["matches"]
    assert likely["Txn"] == {"field": "transaction_id", "how": "close", "confidence": 0.8}
    assert likely["Conversion"]["field"] == "name" and likely["Revenue"]["field"] == "sale_amount"
    assert likely["Amount"]["how"] == "none"  # sale_amount is taken by Revenue
    file = stored(work, write_csv(tmp_path / "m.csv", [["Signal Name", "Transaction ID", "Memo"], ["Sale", "x", ""]]))
    work.mappings.save("mine", "signals", columns["headers"], {"Signal Name": "name", "Memo": "description"})
    again = work.columns(file.id, "signals")
    assert again["matches"]["Memo"] == {"field": "description", "how": "remembered", "confidence": 1.0}


def test_a_fix_in_bulk_is_counted_applied_and_undone_even_after_the_file_is_checked_again(tmp_path, work):
    rows = [["transaction_id", "name", "sale_amount"]]
    rows += [[f"00000000-{i:08d}", "Sale", f"${i},000.00" if i % 2 else f"{i}.00"] for i in range(1, 11)]
    file = stored(work, write_csv(tmp_path / "b.csv", rows))
    preview = work.preview(file.id, {"timezone": TZ})
    assert preview.counts()["invalid"] == 5
    counted = preview.bulk({"column": "sale_amount", "kind": "currency"}, apply=False)
    assert counted["changes"] == 5 and counted["examples"][0] == {"row": 2, "old": "$1,000.00", "new": "1000.00"}
    assert preview.counts()["invalid"] == 5  # counting changes nothing
    applied = preview.bulk({"column": "sale_amount", "kind": "currency"}, apply=True)
    assert applied["counts"]["invalid"] == 0 and applied["undo"] == [
        "removed currency symbols and thousands separators in sale_amount (5 cells)"
    ]
    assert preview.invalid_page(0, "corrected")["rows"][0]["corrected"] == {"sale_amount": ["$1,000.00", "1000.00"]}

    # another timezone: the file is checked again with the corrections, which stay undoable
    again = work.preview(file.id, {"timezone": "UTC"})
    assert again.counts()["invalid"] == 0 and len(again.undo_stack) == 1
    undone = again.undo()
    assert undone["counts"]["invalid"] == 5 and again.edits == {} and again.original == {}
    with pytest.raises(UsageError, match="no correction to undo"):
        again.undo()
    with pytest.raises(UsageError, match="unknown correction"):
        again.bulk({"column": "sale_amount", "kind": "guess"}, apply=False)


def test_command_line_words_are_said_in_the_pages_own():
    said = page_words(
        "the API looks unavailable; 3 row(s) not sent; report written to /home/a/.local/state/x.results.xlsx "
        "(try again later: running the same command again sends only the rows not confirmed "
        "(--stop-after-failures sets how many failures in a row stop a run))"
    )
    assert "--" not in said and "command" not in said and "/home" not in said
    assert "the report is below" in said and "uploading the file again" in said
    assert size_text(10 << 10) == "10 KB" and size_text(200 << 20) == "200 MB"
    renewal = page_words(
        "check ENGAGE_VOICE_REFRESH_TOKEN (or --refresh-token-file): it may have expired or been used already"
    )
    assert renewal.startswith("check the refresh token given on this page:") and "--" not in renewal


def test_what_is_older_than_the_kept_time_is_forgotten_and_a_run_can_be_forgotten(tmp_path):
    work = Workspace(resolve({"state_dir": tmp_path / "state"}, environ={}), environ={}, keep_days=30)
    file = work.add_file("signals.csv", [(SAMPLES / "signals.csv").read_bytes()])
    folder = file.path.parent
    month_ago = time.time() - 31 * 86400
    os.utime(folder, (month_ago, month_ago))
    assert work.sweep() == 1 and not folder.exists()
    with pytest.raises(UsageError, match="no such run"):
        work.forget("nope")


def test_a_run_recorded_before_runs_named_their_file_forgets_its_file_by_its_reports_folder(tmp_path, work):
    file = work.add_file("old.csv", [b"transaction_id,name\n00000000-00000001,Sale\n"])
    report = file.path.parent / "old.results.csv"
    report.write_text("row,status\n2,created\n")
    record = {"id": "0ld0ld0ld0ld0ld0", "file": "old.csv", "state": "finished", "report": str(report)}
    (work.root / "runs" / "0ld0ld0ld0ld0ld0.json").write_text(json.dumps(record))
    assert work.forget("0ld0ld0ld0ld0ld0") == {"forgotten": 1, "file": "old.csv", "file_id": file.id}
    assert not file.path.parent.exists() and work.past_runs() == []
