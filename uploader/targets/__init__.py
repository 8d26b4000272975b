"""The APIs the uploader sends to: one module per API, and this registry.

The CLI's ``--api`` choices, the settings' check and the README's list come
from :data:`TARGETS`. To add an API, write a module beside these with a
:class:`~uploader.targets.base.Target` subclass and register its instance here
(see the README's Development section).

>>> sorted(TARGETS)
['call_outcomes', 'signals']
"""

from __future__ import annotations

from .base import Target
from .call_outcomes import CALL_OUTCOMES, CallOutcomeTarget
from .signals import SIGNALS, SignalTarget

TARGETS: dict[str, Target] = {t.name: t for t in (SIGNALS, CALL_OUTCOMES)}

__all__ = ["TARGETS", "Target", "SIGNALS", "CALL_OUTCOMES", "SignalTarget", "CallOutcomeTarget"]
