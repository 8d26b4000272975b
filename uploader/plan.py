"""The plan: what a run does with each valid row, asked of the source's journal before anything is sent.

Every valid row of an upload (a dry run, the page's preview, folder mode, the
Python API) gets one of these, in the report's ``plan`` column and counted in
the summary:

- ``new``: never confirmed: it is sent;
- ``correction``: a row of the same key (for the Signal API: the same call,
  name and ``partner_unique_id``) was confirmed before with other content:
  sending it updates what the API holds. ``plan_note`` says when that row was
  confirmed and which fields differ;
- ``unchanged``: confirmed before with this very content: skipped;
- ``unknown``: an action that must not happen twice was sent and its answer
  never came: only ``retry --include-unknown`` sends it;
- ``final``: the API's earlier answer can never change (the call had ended):
  not sent again unless ``--force``.

A real upload says the same after the fact: how many of the rows it sent were
corrections.

>>> plan_line({"new": 1204, "correction": 3, "unchanged": 98793})
'1,204 new, 3 corrections, 98,793 unchanged'
"""

from __future__ import annotations

NEW = "new"
CORRECTION = "correction"
UNCHANGED = "unchanged"
UNKNOWN = "unknown"
FINAL = "final"

# In the order the summary lists them, with what each means (the CLI's summary and the page say these words).
PLAN_WORDS = {
    NEW: "never confirmed: it is sent",
    CORRECTION: "confirmed before with other content: sending it updates what the API holds",
    UNCHANGED: "confirmed before with the same content: skipped",
    UNKNOWN: "sent before and its answer never came: only retry --include-unknown sends it",
    FINAL: "the API's earlier answer cannot change: not sent again (--force sends it)",
}
PLANS = tuple(PLAN_WORDS)
SENDS = frozenset({NEW, CORRECTION})  # the plans whose rows an upload sends (unchanged, unknown, final: not)

# The warning on a row to send that only its own id tells apart from a confirmed one (a second signal).
DUPLICATE_ACROSS_RUNS = "duplicate-across-runs"

# What the journal is asked about each row: the report's columns for it.
PLAN_COLUMNS = ("plan", "plan_note")


def plan_line(counts: dict[str, int]) -> str:
    """The plan's counts in one line, for a nightly log: ``1,204 new, 3 corrections, 98,793 unchanged``."""
    parts = []
    for plan in PLANS:
        count = counts.get(plan, 0)
        if count:
            word = "corrections" if plan == CORRECTION and count != 1 else plan
            parts.append(f"{count:,} {word}")
    return ", ".join(parts) or "no valid rows"


def plan_lines(summary) -> list[str]:
    """The summary's plan block: a line per status, and for a real run how many of its confirmations corrected.

    >>> from uploader.report import Summary
    >>> print("\\n".join(plan_lines(Summary("m.csv", "signals", 4, dry_run=True, plan={"new": 3, "unchanged": 1}))))
    the journal's plan (what a real run does with each valid row):
      new             3   never confirmed: it is sent
      unchanged       1   confirmed before with the same content: skipped
    """
    if not summary.plan:
        return []
    lines = [
        "the journal's plan (what a real run does with each valid row):"
        if summary.dry_run
        else "the journal's plan (what this run did with each valid row):"
    ]
    for name in PLANS:
        count = summary.plan.get(name, 0)
        if count:
            lines.append(f"  {name:<10}{count:>7,}   {PLAN_WORDS[name]}")
    corrected = summary.confirmed_plan.get(CORRECTION, 0)
    if not summary.dry_run and sum(summary.confirmed_plan.values()):
        confirmed = sum(summary.confirmed_plan.values())
        lines.append(f"  of the {confirmed:,} row(s) the API confirmed now, {corrected:,} were corrections")
    return lines
