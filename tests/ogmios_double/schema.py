"""Validation against the Ogmios v6 schema (``ogmios.json`` + ``cardano.json``), offline.

``ogmios.json`` names every request (``SubmitTransaction``) and its answer
(``SubmitTransactionResponse``) under ``properties``, and refers to the Cardano types as
``cardano.json#/definitions/...``; both documents are registered in one
:class:`referencing.Registry` under their own ``$id`` (draft 7), so nothing is fetched.
The schema and the server's own test vectors are vendored in tests/data/ogmios (MPL-2.0,
from CardanoSolutions/ogmios; see its README.md).

One correction is made when loading, never in the files: ``cardano.json``'s ``Value`` (and
``Value<Delta>``) require an ``ada`` key but restrict every key (``propertyNames``) to a
56-hex policy id, so under draft-7 rules no value validates, the server's own UTxO test
vectors included. :func:`_allow_ada` lets ``ada`` through those ``propertyNames`` and
changes nothing else; and ``RpcError`` requires a key ``string`` where every JSON-RPC error
(and its own example) has ``message``, which :func:`_fix_rpc_error` corrects. Tests pin both
defects and both fixes.
"""

from __future__ import annotations

import json
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

OGMIOS_DATA = Path(__file__).resolve().parents[1] / "data" / "ogmios"


@lru_cache(maxsize=2)
def ogmios_schema(root: Path = OGMIOS_DATA) -> OgmiosSchema:
    """One :class:`OgmiosSchema` per data directory and process."""
    return OgmiosSchema(root)


class OgmiosSchema:
    """Validators for Ogmios' JSON-RPC requests and responses, by method."""

    def __init__(self, root: Path = OGMIOS_DATA) -> None:
        self.ogmios = _fix_rpc_error(json.loads((root / "ogmios.json").read_text()))
        cardano = _allow_ada(json.loads((root / "cardano.json").read_text()))
        self.registry = Registry().with_resources(
            [
                ("ogmios.json", DRAFT7.create_resource(self.ogmios)),
                ("cardano.json", DRAFT7.create_resource(cardano)),
            ]
        )
        self._validators: dict[str, Draft7Validator] = {}

    @cached_property
    def pairs(self) -> dict[str, tuple[str, str]]:
        """JSON-RPC method -> (request schema, response schema), from ``ogmios.json``'s
        ``required`` list, which names each request followed by its response."""
        required = [n for n in self.ogmios["required"] if n != "RpcError"]
        out = {}
        for request, response in zip(required[::2], required[1::2], strict=True):
            schema = self.ogmios["properties"][request]
            method = schema["properties"]["method"]["enum"][0]
            out[method] = (request, response)
        return out

    @property
    def names(self) -> dict[str, str]:
        return {method: pair[0] for method, pair in self.pairs.items()}

    def validator(self, pointer: str) -> Draft7Validator:
        """A validator for ``ogmios.json#<pointer>``."""
        if pointer not in self._validators:
            schema = {"$ref": f"ogmios.json#{pointer}"}
            self._validators[pointer] = Draft7Validator(schema, registry=self.registry)
        return self._validators[pointer]

    def errors(self, pointer: str, instance: Any) -> list[str]:
        """Every violation of ``instance`` against ``ogmios.json#<pointer>``, as text."""
        found = self.validator(pointer).iter_errors(instance)
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}" for e in found
        ]

    def request_errors(self, request: Any) -> list[str]:
        """Violations of a request against the schema of its method."""
        method = request.get("method") if isinstance(request, dict) else None
        if method not in self.names:
            return [f"unknown method {method!r}"]
        return self.errors(f"/properties/{self.names[method]}", request)

    def response_errors(self, method: str, response: Any) -> list[str]:
        """Violations of a response against ``<Name>Response`` of ``method``."""
        if method not in self.names:
            return [f"unknown method {method!r}"]
        return self.errors(f"/properties/{self.pairs[method][1]}", response)


def _allow_ada(cardano: dict[str, Any]) -> dict[str, Any]:
    """``cardano.json`` with ``ada`` allowed by the ``propertyNames`` of the value types."""
    for schema in cardano["definitions"].values():
        names = schema.get("propertyNames") if isinstance(schema, dict) else None
        if "ada" in schema.get("properties", {}) and isinstance(names, dict) and "pattern" in names:
            names["pattern"] = f"^ada$|{names['pattern']}"
    return cardano


def _fix_rpc_error(ogmios: dict[str, Any]) -> dict[str, Any]:
    """``ogmios.json`` with ``RpcError.error`` requiring ``message`` instead of ``string``."""
    error = ogmios["properties"]["RpcError"]["properties"]["error"]
    error["required"] = ["message" if key == "string" else key for key in error["required"]]
    return ogmios
