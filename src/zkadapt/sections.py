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
#: Marks a key that says where a session runs, not what it is (see :func:`locator`).
LOCATOR = "zkadapt_locator"


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


def locator(default: Any, **constraints: Any) -> Any:
    """A field that says *where* a session runs, not *what* it is: never part of its id.

    A Hydra head id is the example (``channel.hydra.head_id``): the same session may be
    read from a head that has since been fanned out, or its head named only after it ran
    (docs/hydra.md, "Reading a finished session"). Such a key is written to the session
    file like any other (:func:`canonical_dump`) but left out of the session id and the
    seed id (:func:`identity_dump` puts its default there, as sessions recorded before it
    was set have it), so setting or changing it never changes either. The default must be
    JSON-plain (None, a number or a string).
    """
    return Field(default, json_schema_extra={LOCATOR: True}, **constraints)


def canonical_dump(model: BaseModel) -> dict[str, Any]:
    """``model.model_dump(mode="json")`` without ``added_later`` keys at their defaults."""
    dumped = model.model_dump(mode="json")
    _prune(model, dumped, identity=False)
    return dumped


def identity_dump(model: BaseModel) -> dict[str, Any]:
    """:func:`canonical_dump` with every :func:`locator` key at its default: what a session
    id hashes."""
    dumped = model.model_dump(mode="json")
    _prune(model, dumped, identity=True)
    return dumped


def _dropped(field: Any, value: Any) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get(ADDED_LATER)) and value == field.default


def _is_locator(field: Any) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get(LOCATOR))


def _prune(model: BaseModel, dumped: dict[str, Any], *, identity: bool) -> None:
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if _dropped(field, value):
            dumped.pop(name, None)
        elif identity and _is_locator(field) and name in dumped:
            dumped[name] = field.default  # as recorded before it was set: ids unchanged
        elif isinstance(value, BaseModel) and isinstance(dumped.get(name), dict):
            _prune(value, dumped[name], identity=identity)
        elif isinstance(value, tuple) and isinstance(dumped.get(name), list):
            for item, sub in zip(value, dumped[name], strict=False):
                if isinstance(item, BaseModel) and isinstance(sub, dict):
                    _prune(item, sub, identity=identity)
