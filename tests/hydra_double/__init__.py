"""A faithful hydra-node double for tests, built from the official API schema (api.yaml).

A hydra-node cannot be installed here (no registry ships it), so the ``hydra`` channel is
tested against this double: WebSocket + HTTP servers on 127.0.0.1 (one per party) around one
shared head whose ledger applies the Conway rules a head applies to plain payments, and that
checks every input and output against api.yaml. See docs/hydra.md for what it does not model.
"""

from tests.hydra_double.server import HydraDouble

__all__ = ["HydraDouble"]
