"""Validation against the hydra-node API schema (``api.yaml``), offline.

``api.yaml`` (AsyncAPI 2.3) refers to its own components as ``api.yaml#/components/...``
and to the Cardano schemas by absolute URL; both documents are registered in one
:class:`referencing.Registry`, as tests/data/hydra/README.md recommends, so nothing is
fetched from the network. The double validates every client input it receives and every
server output and HTTP body it sends, and records violations for the tests to assert on.
"""

from __future__ import annotations

import json
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

#: Vendored from cardano-scaling/hydra (Apache-2.0); tests/data/hydra/README.md says what.
HYDRA_DATA = Path(__file__).resolve().parents[1] / "data" / "hydra"
API_URI = "https://hydra.invalid/json-schemas/api.yaml"
CARDANO_URI = (
    "https://raw.githubusercontent.com/cardano-scaling/hydra/master/hydra-node/"
    "json-schemas/cardanonical/cardano.json"
)


def hydra_data() -> Path:
    """The vendored Hydra reference data directory (api.yaml, golden/, credentials/)."""
    if not (HYDRA_DATA / "api.yaml").exists():
        raise FileNotFoundError(f"hydra reference data not found at {HYDRA_DATA}")
    return HYDRA_DATA


@lru_cache(maxsize=4)
def api_schema(root: Path | None = None) -> ApiSchema:
    """One :class:`ApiSchema` per data directory and process (loading api.yaml is slow)."""
    return ApiSchema(root)


class ApiSchema:
    """Validators for the api.yaml components the double speaks."""

    def __init__(self, root: Path | None = None) -> None:
        root = root or hydra_data()
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        self.api = yaml.load((root / "api.yaml").read_text(), Loader=loader)
        cardano = json.loads((root / "cardanonical" / "cardano.json").read_text())
        cardano["$id"] = CARDANO_URI
        self.registry = Registry().with_resources(
            [
                (API_URI, DRAFT7.create_resource(self.api)),
                (CARDANO_URI, Resource.from_contents(cardano, default_specification=DRAFT7)),
            ]
        )
        self._validators: dict[str, Draft7Validator] = {}

    def validator(self, pointer: str) -> Draft7Validator:
        """A validator for ``api.yaml#<pointer>`` (e.g. ``/components/schemas/UTxO``)."""
        if pointer not in self._validators:
            schema = {"$ref": f"{API_URI}#{pointer}"}
            self._validators[pointer] = Draft7Validator(schema, registry=self.registry)
        return self._validators[pointer]

    def errors(self, pointer: str, instance: Any) -> list[str]:
        """Every violation of ``instance`` against ``api.yaml#<pointer>``, as text."""
        found = self.validator(pointer).iter_errors(instance)
        return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in found]

    def schema_of(self, tag: str) -> str:
        """The pointer of the schema for a message with ``tag`` (server output or input)."""
        return f"/components/schemas/{tag}"

    @cached_property
    def server_tags(self) -> set[str]:
        names = [
            ref["$ref"].rsplit("/", 1)[1]
            for ref in self.api["components"]["schemas"]["ServerOutput"]["oneOf"]
        ]
        return set(names)

    @cached_property
    def input_tags(self) -> set[str]:
        names = [
            ref["$ref"].rsplit("/", 1)[1]
            for ref in self.api["components"]["schemas"]["ClientInput"]["oneOf"]
        ]
        return set(names)

    def output_errors(self, message: dict[str, Any]) -> list[str]:
        """Violations of one WebSocket output (server output, Greetings or client message)."""
        tag = message.get("tag")
        if tag not in self.server_tags | {
            "Greetings",
            "CommandFailed",
            "InvalidInput",
            "PostTxOnChainFailed",
            "RejectedInputBecauseUnsynced",
        }:
            return [f"unknown server output tag {tag!r}"]
        errors = self.errors(self.schema_of(tag), message)
        if tag in self.server_tags:
            errors += self.errors("/components/schemas/ServerOutput", message)
        return errors

    def input_errors(self, message: Any) -> list[str]:
        """Violations of one client input against ``ClientInput``."""
        return self.errors("/components/schemas/ClientInput", message)
