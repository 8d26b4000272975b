"""Column mappings people saved: which header means which field, remembered per set of headers.

The web page saves the mapping an analyst chose and offers it again for the
next file with the same headers (and API); the CLI uses one by name with
``--mapping NAME``. They live in ``mappings.json`` in the state folder, beside
the journals, and hold headers and field names only, never a cell's value.

>>> import tempfile
>>> store = MappingStore(tempfile.mkdtemp())
>>> saved = store.save("march", "signals", ["Conv", "Txn", "Notes"], {"Conv": "name", "Txn": "transaction_id", "Notes": ""})
>>> store.find("signals", ["txn", "NOTES", "conv"]).name, store.load("march").columns["Notes"]
('march', '')
>>> store.find("call_outcomes", ["Conv", "Txn", "Notes"]) is None
True
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import UsageError
from .fields import squash

FILE_NAME = "mappings.json"
_NAME = re.compile(r"^[\w][\w .@+-]{0,79}$")


@dataclass(frozen=True)
class SavedMapping:
    """One saved mapping: for ``api``'s rows, header -> field ("" leaves the column out)."""

    name: str
    api: str
    headers: tuple[str, ...]
    columns: dict[str, str]

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """As :attr:`~uploader.config.Settings.mapping` holds it."""
        return tuple(sorted(self.columns.items()))


def header_set(headers) -> tuple[str, ...]:
    """What makes two files' headers the same: squashed, blanks dropped, order ignored."""
    return tuple(sorted({squash(h) for h in headers if str(h).strip()}))


class MappingStore:
    """The saved mappings of one state folder (written atomically: a crash leaves the old file or the new)."""

    _lock = threading.Lock()

    def __init__(self, state_folder: str | Path):
        self.path = Path(state_folder) / FILE_NAME

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"cannot read the saved mappings {self.path} ({exc})",
                hint="fix or remove that file; it only holds column mappings",
            ) from None
        return data if isinstance(data, dict) else {}

    def names(self) -> list[str]:
        return sorted(self._read())

    def load(self, name: str) -> SavedMapping:
        data = self._read().get(name)
        if data is None:
            known = ", ".join(self.names()) or "none yet"
            raise UsageError(
                f"no saved mapping named {name!r}",
                hint=f"saved mappings: {known} (the web page saves them: signal-uploader serve)",
            )
        return SavedMapping(name, data["api"], tuple(data["headers"]), dict(data["columns"]))

    def find(self, api: str, headers) -> SavedMapping | None:
        """The most recently saved mapping for ``api`` and this set of headers, if any."""
        wanted = header_set(headers)
        found = None
        for name, data in self._read().items():
            if data.get("api") == api and header_set(data.get("headers", ())) == wanted:
                found = SavedMapping(name, data["api"], tuple(data["headers"]), dict(data["columns"]))
        return found

    def save(self, name: str, api: str, headers, columns: dict[str, str]) -> SavedMapping:
        name = name.strip()
        if not _NAME.match(name):
            raise UsageError(
                f"{name!r} is not a usable mapping name",
                hint="letters, digits, spaces and . _ - @ +, at most 80 characters",
            )
        saved = SavedMapping(name, api, tuple(str(h) for h in headers), {str(k): str(v) for k, v in columns.items()})
        with self._lock:
            data = self._read()
            data.pop(name, None)  # re-inserted last: the newest wins in find()
            data[name] = {k: v for k, v in asdict(saved).items() if k != "name"}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".mappings-")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=1, ensure_ascii=False)
            os.replace(temporary, self.path)
        return saved
