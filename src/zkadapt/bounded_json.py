"""JSON from other parties, parsed totally: every input ends in a value or a ``ValueError``.

Everything a party reads from the channel or the store was written by someone it does not
trust (docs/threats.md). Python's ``json.loads`` is not total on such input: an integer of
5,000 digits raises a plain ``ValueError`` from the int-string limit (and smaller ones cost
quadratic time), lists nested 5,000 deep raise ``RecursionError``, and ``1e999`` or
``NaN`` become non-finite floats that later arithmetic trips over. :func:`loads_bounded`
checks the size and the nesting depth before parsing, refuses over-long numbers and
non-finite values while parsing, and raises :class:`JsonLimitError` (a ``ValueError``) for
every one of them, so a caller that maps ``ValueError`` to a named rejection is total.

Big numbers never travel as JSON numbers here (they are hex strings, CRYPTO.md), so the
limits below are far above anything an honest party writes.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: Deepest nesting of arrays and objects an honest message uses is 3 (metrics per party).
MAX_DEPTH = 16
#: Digits of a JSON integer: rounds, sizes and counts fit in 20.
MAX_INT_DIGITS = 40
#: Characters of a JSON number with a fraction or exponent.
MAX_FLOAT_CHARS = 64

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


class JsonLimitError(ValueError):
    """The input is not JSON within the named limits; the message says which."""


def nesting_depth(data: bytes) -> int:
    """Deepest array/object nesting of ``data``, brackets inside strings not counted.

    Linear time and no recursion, so it is safe on any input (an unterminated string just
    leaves its brackets counted: the parser rejects such input anyway).
    """
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b'""', data)):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise JsonLimitError(f"integer of {digits} digits (limit {MAX_INT_DIGITS})")
    return int(text)


def _bounded_float(text: str) -> float:
    if len(text) > MAX_FLOAT_CHARS:
        raise JsonLimitError(f"number of {len(text)} characters (limit {MAX_FLOAT_CHARS})")
    value = float(text)
    if not math.isfinite(value):
        raise JsonLimitError(f"number {text[:20]} is not finite")
    return value


def _no_constant(name: str) -> Any:
    raise JsonLimitError(f"{name} is not a finite number")


def loads_bounded(data: bytes | str, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON that another party wrote, within named limits.

    Args:
        data: UTF-8 bytes (or text).
        max_bytes: the largest input accepted, checked before anything else.
        max_depth: the deepest nesting of arrays and objects accepted.

    Raises:
        JsonLimitError: over a limit, not UTF-8, not JSON, or a non-finite number; the message
            names the problem (never a ``RecursionError`` or a traceback from the parser).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise JsonLimitError(f"{len(raw)} bytes of JSON (limit {max_bytes})")
    depth = nesting_depth(raw)
    if depth > max_depth:
        raise JsonLimitError(f"nested {depth} deep (limit {max_depth})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonLimitError(f"not JSON: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(
            text,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
            parse_constant=_no_constant,
        )
    except JsonLimitError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise JsonLimitError(f"not JSON: {exc}") from None
