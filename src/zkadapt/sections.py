"""The base of every settings section of a session file.

Each backend's settings model lives beside the backend and derives from :class:`Section`;
``zkadapt.config`` composes them into ``SessionConfig``. The shared base keeps one rule for
all of them: unknown keys are errors, values are frozen, and TOML values are never coerced
(``true`` or ``"3"`` are not numbers). This module imports nothing from ``zkadapt``, so a
leaf package can use it without reaching up to the config.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Marks a key added after sessions were first recorded (see :func:`added_later`).
ADDED_LATER = "zkadapt_added_later"


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


def added_later(default: Any, **constraints: Any) -> Any:
    """A field for a key that sessions recorded before it existed do not have.

    A session's id is the hash of its canonical JSON, so a new key that appeared in that JSON
    would change the id of every existing session file and fail the audit of every recorded
    session. A key declared with ``added_later`` is left out of the canonical JSON, the
    seed id and the written session file while it holds its default (:func:`canonical_dump`):
    an old session keeps its id, and a session that sets the key gets a new one.
    """
    return Field(default, json_schema_extra={ADDED_LATER: True}, **constraints)


def canonical_dump(model: BaseModel) -> dict[str, Any]:
    """``model.model_dump(mode="json")`` without ``added_later`` keys at their defaults."""
    dumped = model.model_dump(mode="json")
    _prune(model, dumped)
    return dumped


def _prune(model: BaseModel, dumped: dict[str, Any]) -> None:
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get(ADDED_LATER) and value == field.default:
            dumped.pop(name, None)
        elif isinstance(value, BaseModel) and isinstance(dumped.get(name), dict):
            _prune(value, dumped[name])
        elif isinstance(value, tuple) and isinstance(dumped.get(name), list):
            for item, sub in zip(value, dumped[name], strict=False):
                if isinstance(item, BaseModel) and isinstance(sub, dict):
                    _prune(item, sub)
