"""The APIs the uploader sends to: one module per API, and this registry.

The CLI's ``--api`` choices, the settings' check and the README's list come
from :data:`TARGETS`. To add an API, write a module beside these with a
:class:`~uploader.targets.base.Target` subclass and register its instance here
(see the README's Development section).

>>> sorted(TARGETS)[:4]
['call_outcomes', 'calls_in_progress', 'engage_add_session', 'engage_disposition']
"""

from __future__ import annotations

from .base import Target
from .call_outcomes import CALL_OUTCOMES, CallOutcomeTarget
from .calls_in_progress import CALLS_IN_PROGRESS, CallsInProgressTarget
from .engage import ENGAGE_TARGETS, EngageAction
from .signals import SIGNALS, SignalTarget

# A new target's instance is imported above and listed here (the README's "Adding a target").
TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        SIGNALS,
        CALL_OUTCOMES,
        CALLS_IN_PROGRESS,
        *ENGAGE_TARGETS,
    )
}

# The listings of calls (`calls`, `engage calls`, find_calls), and the target whose access each uses
# (its token variables, documented pace, retry statuses and own options): the Engage Voice listing
# shares them with every engage_* target.
LISTINGS: dict[str, str] = {"calls_in_progress": "calls_in_progress", "engage": "engage_hangup"}

README_START = "<!-- targets: generated from uploader/targets by `make readme`; do not edit -->"
README_END = "<!-- /targets -->"


def markdown() -> str:
    """The README's table of targets, from the registry (a test keeps the README equal to it)."""
    lines = ["| `--api` | API | request | success | sent twice? |", "| --- | --- | --- | --- | --- |"]
    for target in TARGETS.values():
        success = ", ".join(f"{status} {meaning}" for status, meaning in sorted(target.success.items()))
        token = {
            "body": f"token in the body (`{target.token_field}`)",
            "query": f"token in the query (`{target.token_field}`)",
            "header": "token in the `Authorization` header",
        }[target.token_in]
        twice = "safe: idempotent" if target.idempotent else "never without the user asking"
        lines.append(
            f"| `{target.name}` | {target.title} | `{target.method} {{base}}/{target.path}`, {token} "
            f"| {success} | {twice} |"
        )
    return "\n".join([README_START, *lines, README_END])


def update_readme(path) -> bool:
    """Rewrite the README's table of targets; whether it changed."""
    from pathlib import Path

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    new = text[:start] + markdown() + text[end:]
    path.write_text(new, encoding="utf-8")
    return new != text


__all__ = [
    "CALLS_IN_PROGRESS",
    "CALL_OUTCOMES",
    "ENGAGE_TARGETS",
    "LISTINGS",
    "SIGNALS",
    "TARGETS",
    "CallOutcomeTarget",
    "CallsInProgressTarget",
    "EngageAction",
    "SignalTarget",
    "Target",
]
