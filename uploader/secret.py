"""The API token as a value that never shows itself."""

from __future__ import annotations


class Secret:
    """A string that never shows itself: not in repr, str, f-strings or logs.

    >>> t = Secret("abc123")
    >>> f"{t}", repr(t), t.reveal()
    ('***', "Secret('***')", 'abc123')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return "***"

    def __repr__(self) -> str:
        return "Secret('***')"

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
