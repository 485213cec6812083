"""The base of every settings section of a session file.

Each backend's settings model lives beside the backend and derives from :class:`Section`;
``zkadapt.config`` composes them into ``SessionConfig``. The shared base keeps one rule for
all of them: unknown keys are errors, values are frozen, and TOML values are never coerced
(``true`` or ``"3"`` are not numbers). This module imports nothing from ``zkadapt``, so a
leaf package can use it without reaching up to the config.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class Section(BaseModel):
    """A frozen, strict settings table that refuses unknown keys."""

    # strict: TOML's `true` or "3" are not numbers; lists become tuples in _tuples below
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _tuples(cls, value: Any) -> Any:
        return as_tuple(value)


def as_tuple(value: Any) -> Any:
    """A TOML array as a tuple (sections are frozen); anything else unchanged."""
    return tuple(value) if isinstance(value, list) else value


def is_changed(section: BaseModel, key: str) -> bool:
    """Whether ``key`` differs from its default (round-trips through to_toml, unlike fields_set)."""
    return bool(getattr(section, key) != type(section).model_fields[key].default)
