"""One "top problems" for every front end, and a corrected cell re-checked by the library.

The summary of `validate` (the CLI's and the Python API's) and the page's
preview of the same file name the same problems, with the same counts and
examples; a correction on the page moves the preview's counts at once.
"""

from __future__ import annotations

from uploader import validate_rows
from uploader.config import resolve
from uploader.web.workspace import Workspace

from conftest import write_csv

HEADER = ["Transaction ID", "Name", "Partner Unique ID", "Sale Amount"]
ROWS = [
    ["00000000-00000001", "Sale", "p-1", "12,50"],  # a comma decimal: sale-amount-format
    ["00000000-00000002", "Sale", "p-2", "1e3"],
    ["00000000-00000003", "Sale", "p-3", "12,75"],
    ["00000000-00000004", "Sale", "p-4", "20.00"],
    ["00000000-00000005", "", "p-5", "3"],  # no name
]


def test_the_summary_and_the_page_name_the_same_top_problems(tmp_path):
    path = write_csv(tmp_path / "june.csv", [HEADER, *ROWS])
    result = validate_rows([dict(zip(HEADER, row)) for row in ROWS], source="june.csv", timezone="UTC")
    summary_top = result.summary.top_problems

    workspace = Workspace(resolve({"timezone": "UTC"}, environ={}), root=tmp_path / "web", environ={})
    stored = workspace.add_file("june.csv", [path.read_bytes()])
    preview = workspace.preview(stored.id, {"api": "signals", "timezone": "UTC"}).as_dict()
    assert [(p["code"], p["rows"]) for p in preview["top_problems"]] == [(p["code"], p["rows"]) for p in summary_top]
    assert [p["example"] for p in preview["top_problems"]] == [p["example"] for p in summary_top]
    assert [p["rows"] for p in summary_top] == [3, 1]  # the most rows first


def test_a_correction_moves_the_previews_counts_and_top_problems_at_once(tmp_path):
    path = write_csv(tmp_path / "june.csv", [HEADER, *ROWS])
    workspace = Workspace(resolve({"timezone": "UTC"}, environ={}), root=tmp_path / "web", environ={})
    stored = workspace.add_file("june.csv", [path.read_bytes()])
    preview = workspace.preview(stored.id, {"api": "signals", "timezone": "UTC"})
    before = {p["code"]: p["rows"] for p in preview.as_dict()["top_problems"]}
    assert sum(before.values()) == 4 and preview.counts()["invalid"] == 4

    fixed = preview.fix(2, "Sale Amount", "12.50")
    assert fixed["errors"] == [] and fixed["counts"]["invalid"] == 3
    after = {p["code"]: p["rows"] for p in preview.as_dict()["top_problems"]}
    assert before["sale-amount-format"] == 3 and after["sale-amount-format"] == 2

    preview.fix(4, "Sale Amount", "12.75")
    preview.fix(3, "Sale Amount", "1000")
    preview.fix(6, "Name", "Sale")
    assert preview.as_dict()["top_problems"] == [] and preview.counts()["invalid"] == 0
    assert preview.fix(3, "Sale Amount", "oops")["counts"]["invalid"] == 1  # a new mistake is caught too
