"""The double's head: one Hydra head shared by several nodes, as a state machine (no I/O).

It follows hydra 2.x as api.yaml and the "API behavior" docs describe it: ``Init`` opens the
head directly (``HeadIsOpen``, with an offline-mode initial UTxO if one is given); ``NewTx``
is applied to the local ledger state, answered with ``TxValid`` or ``TxInvalid`` on the node it
was sent to, and the valid ones are confirmed in the next snapshot (``SnapshotConfirmed`` on
every node, transactions in arrival order); deposits go ``CommitRecorded`` ->
``DepositActivated`` -> snapshot with ``utxoToCommit`` -> ``CommitApproved`` ->
``CommitFinalized``; ``Close`` -> ``HeadIsClosed`` -> (contestation period) ``ReadyToFanout``;
``Fanout`` -> ``HeadIsFinalized``. A command in the wrong state gets ``CommandFailed``.

Methods return :class:`Out` records (which nodes, which message); the server adds ``seq`` and
``timestamp``, validates them against api.yaml and sends them.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from nacl.signing import SigningKey
from pycardano import (
    Address,
    Network,
    ScriptHash,
    Transaction,
    TransactionBody,
    TransactionInput,
    TransactionOutput,
    TransactionWitnessSet,
    Value,
)

from tests.hydra_double.ledger import Ledger, LedgerError
from zkadapt.channel.hydra.cbor import blake2b_256

#: The (fake) deposit validator the double's deposit transactions pay to.
DEPOSIT_SCRIPT = ScriptHash(bytes.fromhex("d0" * 28))


def utc(offset_s: float = 0.0) -> str:
    """api.yaml ``UTCTime``: ISO 8601 with a ``Z``."""
    moment = datetime.now(timezone.utc) + timedelta(seconds=offset_s)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Out:
    """A message for some nodes: ``to`` is a party name, or None for every node."""

    message: dict[str, Any]
    to: str | None = None
    timed: bool = True  # a TimedServerOutput (kept in history, has seq/timestamp)


@dataclass
class NodeKeys:
    """A node's Hydra party key (Ed25519, signs snapshots) and on-chain id."""

    signing: SigningKey = field(default_factory=lambda: SigningKey(secrets.token_bytes(32)))

    @property
    def vkey(self) -> str:
        return bytes(self.signing.verify_key).hex()

    @property
    def on_chain_id(self) -> str:
        return blake2b_256(bytes(self.signing.verify_key))[:28].hex()


class Head:
    """One head: status, ledgers, snapshots, pending transactions and deposits."""

    def __init__(
        self,
        parties: list[str],
        params: dict[str, Any],
        *,
        initial_utxo: dict[str, Any] | None = None,
        l1_utxo: dict[str, Any] | None = None,
        contestation_s: float = 0.1,
    ) -> None:
        self.parties = list(parties)
        self.params = params
        self.keys = {p: NodeKeys() for p in parties}
        self.initial_utxo = copy.deepcopy(initial_utxo or {})
        self.l1 = Ledger(params, l1_utxo)
        self.contestation_s = contestation_s
        self.status = "Idle"
        self.head_id: str | None = None
        self.head_seed = secrets.token_hex(16)
        self.confirmed = Ledger(params)
        self.seen = Ledger(params)
        self.pending: list[dict[str, Any]] = []
        self.number = 0
        self.version = 0
        self.last_snapshot: dict[str, Any] | None = None
        self.drafts: dict[str, dict[str, Any]] = {}
        self.deadline = ""

    # ---- client inputs ----------------------------------------------------------------

    def on_input(self, party: str, message: dict[str, Any]) -> list[Out]:
        """Handle one (schema-valid) client input from ``party``'s node."""
        tag = message["tag"]
        handler = {
            "Init": self._init,
            "NewTx": self._new_tx,
            "Close": self._close,
            "Fanout": self._fanout,
        }.get(tag)
        if handler is None:
            return [self._failed(party, message)]
        return handler(party, message)

    def _failed(self, party: str, message: dict[str, Any]) -> Out:
        body = {"tag": "CommandFailed", "clientInput": message, "state": self.head_state()}
        return Out(body, to=party, timed=False)

    def _init(self, party: str, message: dict[str, Any]) -> list[Out]:
        if self.status != "Idle":
            return [self._failed(party, message)]
        self.head_id = secrets.token_hex(16)
        self.status, self.number, self.version, self.pending = "Open", 0, 0, []
        self.confirmed = Ledger(self.params, self.initial_utxo)
        self.seen = Ledger(self.params, self.initial_utxo)
        self.last_snapshot = None
        parties = [{"vkey": self.keys[p].vkey} for p in self.parties]
        return [Out({"tag": "HeadIsOpen", "headId": self.head_id, "parties": parties})]

    def _new_tx(self, party: str, message: dict[str, Any]) -> list[Out]:
        if self.status != "Open":
            return [self._failed(party, message)]
        tx = dict(message["transaction"])
        try:
            applied = self.seen.check(bytes.fromhex(tx["cborHex"]))
        except LedgerError as exc:
            body = {
                "tag": "TxInvalid",
                "headId": self.head_id,
                "utxo": self.seen.utxo,
                "transaction": tx,
                "validationError": {"reason": exc.reason},
            }
            return [Out(body, to=party)]
        self.seen.utxo = applied.utxo
        tx["txId"] = applied.tx_id
        self.pending.append(tx)
        valid = {"tag": "TxValid", "headId": self.head_id, "transactionId": applied.tx_id}
        return [Out(valid, to=party)]

    def _close(self, party: str, message: dict[str, Any]) -> list[Out]:
        if self.status != "Open":
            return [self._failed(party, message)]
        self.status = "Closed"
        self.deadline = utc(self.contestation_s)
        body = {
            "tag": "HeadIsClosed",
            "headId": self.head_id,
            "snapshotNumber": self.number,
            "contestationDeadline": self.deadline,
        }
        return [Out(body)]

    def contestation_over(self) -> list[Out]:
        """The contestation deadline passed: ``ReadyToFanout`` everywhere."""
        if self.status != "Closed":
            return []
        self.status = "FanoutPossible"
        return [Out({"tag": "ReadyToFanout", "headId": self.head_id})]

    def _fanout(self, party: str, message: dict[str, Any]) -> list[Out]:
        if self.status != "FanoutPossible":
            return [self._failed(party, message)]
        final = copy.deepcopy(self.confirmed.utxo)
        self.l1.utxo.update(final)
        head_id, self.status, self.head_id = self.head_id, "Idle", None
        return [Out({"tag": "HeadIsFinalized", "headId": head_id, "finalizedUTxO": final})]

    # ---- snapshots ----------------------------------------------------------------------

    def snapshot(self, utxo_to_commit: dict[str, Any] | None = None) -> list[Out]:
        """Confirm the pending transactions (and a deposit) in the next snapshot."""
        if self.status != "Open" or not (self.pending or utxo_to_commit):
            return []
        if utxo_to_commit:
            for ledger in (self.confirmed, self.seen):
                ledger.utxo.update(copy.deepcopy(utxo_to_commit))
            self.version += 1
        self.number += 1
        self.confirmed.utxo = copy.deepcopy(self.seen.utxo)
        txs, self.pending = self.pending, []
        snapshot = {
            "headId": self.head_id,
            "version": self.version,
            "number": self.number,
            "confirmed": txs,
            "utxo": copy.deepcopy(self.confirmed.utxo),
            "utxoToCommit": utxo_to_commit or None,
            "utxoToDecommit": None,
        }
        digest = blake2b_256(repr((self.head_id, self.number, [t["txId"] for t in txs])).encode())
        signatures = [self.keys[p].signing.sign(digest).signature.hex() for p in self.parties]
        self.last_snapshot = {"snapshot": snapshot, "signatures": {"multiSignature": signatures}}
        return [
            Out(
                {
                    "tag": "SnapshotConfirmed",
                    "headId": self.head_id,
                    "snapshot": snapshot,
                    "signatures": {"multiSignature": signatures},
                }
            )
        ]

    # ---- deposits (POST /commit, POST /cardano-transaction) ---------------------------

    def draft_deposit(self, utxo_to_commit: dict[str, Any]) -> dict[str, Any]:
        """A deposit transaction spending ``utxo_to_commit`` on layer 1 (unsigned).

        Raises:
            LedgerError: the head is not open, or an output is not unspent on layer 1.
        """
        if self.status != "Open":
            raise LedgerError("head is not open")
        for ref, out in utxo_to_commit.items():
            if self.l1.utxo.get(ref) != out:
                raise LedgerError(f"{ref} is not an unspent layer-1 output as given")
        inputs = [
            TransactionInput.from_primitive([bytes.fromhex(r[:64]), int(r[65:])])
            for r in sorted(utxo_to_commit)
        ]
        total = sum(int(o["value"]["lovelace"]) for o in utxo_to_commit.values())
        script = Address(DEPOSIT_SCRIPT, network=Network.TESTNET)
        body = TransactionBody(inputs=inputs, outputs=[TransactionOutput(script, Value(total))])
        tx = Transaction(body, TransactionWitnessSet())
        tx_id = blake2b_256(body.to_cbor()).hex()
        self.drafts[tx_id] = copy.deepcopy(utxo_to_commit)
        return {
            "type": "Tx ConwayEra",
            "description": "Hydra deposit transaction",
            "cborHex": tx.to_cbor().hex(),
            "txId": tx_id,
        }

    def submit_l1(self, tx: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        """Apply a layer-1 transaction; returns its id and the deposit it makes, if any.

        Raises:
            LedgerError: the layer-1 ledger rejects it.
        """
        tx_id = self.l1.apply(bytes.fromhex(tx["cborHex"]))
        return tx_id, self.drafts.pop(tx_id, None)

    def deposit_steps(self, tx_id: str, utxo: dict[str, Any]) -> list[Callable[[], list[Out]]]:
        """The outputs of an observed deposit, step by step (the server spaces them in time)."""
        recorded = {
            "tag": "CommitRecorded",
            "headId": self.head_id,
            "utxoToCommit": utxo,
            "pendingDeposit": tx_id,
            "deadline": utc(60),
        }
        activated = {
            "tag": "DepositActivated",
            "headId": self.head_id,
            "depositTxId": tx_id,
            "deadline": utc(60),
            "chainTime": utc(),
        }
        approved = {"tag": "CommitApproved", "headId": self.head_id, "utxoToCommit": utxo}
        finalized = {"tag": "CommitFinalized", "headId": self.head_id, "depositTxId": tx_id}
        return [
            lambda: [Out(recorded)],
            lambda: [Out(activated)],
            lambda: self.snapshot(utxo),
            lambda: [Out(approved), Out(finalized)],
        ]

    # ---- state views --------------------------------------------------------------------

    def head_state(self) -> dict[str, Any]:
        """api.yaml ``HeadState`` for ``CommandFailed``."""
        if self.status == "Idle" or self.head_id is None:
            return {"tag": "Idle", "contents": {"chainState": {}}}
        parameters = {
            "contestationPeriod": max(1, round(self.contestation_s)),
            "depositPeriod": 60,
            "parties": [{"vkey": self.keys[p].vkey} for p in self.parties],
        }
        confirmed = self.last_snapshot and {**self.last_snapshot, "tag": "ConfirmedSnapshot"}
        confirmed = confirmed or {
            "tag": "InitialSnapshot",
            "headId": self.head_id,
            "initialUTxO": self.initial_utxo,
        }
        common = {
            "parameters": parameters,
            "chainState": {},
            "headId": self.head_id,
            "headSeed": self.head_seed,
        }
        if self.status == "Open":
            coordinated = {
                "localUTxO": self.seen.utxo,
                "localTxs": self.pending,
                "allTxs": {t["txId"]: t for t in self.pending},
                "confirmedSnapshot": confirmed,
                "seenSnapshot": {"tag": "LastSeenSnapshot", "lastSeen": self.number},
                "currentDepositTxId": None,
                "decommitTx": None,
                "version": self.version,
            }
            return {"tag": "Open", "contents": {**common, "coordinatedHeadState": coordinated}}
        closed = {
            **common,
            "confirmedSnapshot": confirmed,
            "contestationDeadline": self.deadline,
            "readyToFanoutSent": self.status == "FanoutPossible",
            "version": self.version,
        }
        return {"tag": "Closed", "contents": closed}
