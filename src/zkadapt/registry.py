"""Name -> component tables for every pluggable family (STYLE.md rule 1).

Storage backends, channel backends, privacy schemes and aggregation strategies are each one
:class:`Registry`. A new component is one module plus one :meth:`Registry.register` call;
the session file accepts its name as soon as it is registered, because the settings
validators ask the registry (:meth:`Registry.check_name`) instead of a fixed list.
"""

from __future__ import annotations

import re
from typing import Generic, TypeVar

T = TypeVar("T")

_NAME = re.compile(r"[a-z][a-z0-9_-]*")


class Registry(Generic[T]):
    """Unique lowercase names mapped to factories of one kind of component."""

    def __init__(self, kind: str) -> None:
        """``kind`` names the family in error messages ("storage backend")."""
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> None:
        """Add ``item`` under ``name``.

        Raises:
            ValueError: ``name`` is not lowercase ``[a-z0-9_-]`` or is already registered.
        """
        if not _NAME.fullmatch(name):
            raise ValueError(f"{self.kind} name must be lowercase [a-z0-9_-], got {name!r}")
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a test that registered a component cleans up after itself)."""
        self._items.pop(name, None)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def get(self, name: str) -> T:
        """The component registered as ``name``.

        Raises:
            ValueError: ``name`` is unknown (the message lists the valid names).
        """
        item = self._items.get(name)
        if item is None:
            raise ValueError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return item

    def check_name(self, name: str) -> str:
        """``name`` if registered; for pydantic validators, whose ValueError names the key.

        Raises:
            ValueError: one line listing the registered names.
        """
        if name not in self._items:
            names = ", ".join(repr(n) for n in self.names())
            raise ValueError(f"unknown {self.kind} {name!r}; registered: {names}")
        return name
