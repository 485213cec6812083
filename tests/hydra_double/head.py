"""The double's head: one Hydra head shared by several nodes, as a state machine (no I/O).

It follows hydra 2.x as api.yaml and the "API behavior" docs describe it: ``Init`` opens the
head directly (``HeadIsOpen``, with an offline-mode initial UTxO if one is given); ``NewTx``
is applied to the local ledger state, answered with ``TxValid`` or ``TxInvalid`` on the node it
was sent to, and the valid ones are confirmed in the next snapshot (``SnapshotConfirmed`` on
every node, transactions in arrival order); deposits go ``CommitRecorded`` ->
``DepositActivated`` -> snapshot with ``utxoToCommit`` -> ``CommitApproved`` ->
``CommitFinalized``; ``Close`` -> ``HeadIsClosed`` -> (contestation period) ``ReadyToFanout``;
``Fanout`` -> ``HeadIsFinalized``. A command in the wrong state gets ``CommandFailed``.

A deposit request may name an ``amount`` (api.yaml ``SimpleCommitRequest``): only that much
of the output is deposited, under the output's own ``TxIn`` in the head, and the rest goes
back to the owner's address as change (hydra's "commit funds to an open head" guide).

Faults (:class:`Fault`, armed with :meth:`Head.arm`) make the node answer the next matching
request with one of its error outputs, each built as api.yaml describes it.

Methods return :class:`Out` records (which nodes, which message); the server adds ``seq`` and
``timestamp``, validates them against api.yaml and sends them.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
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
#: How far behind the chain an unsynced double says it is, in seconds.
UNSYNCED_DRIFT_S = 4242.0
#: The head status in which each command makes the node post a layer-1 transaction.
POSTS = {"Init": "Idle", "Close": "Open", "Fanout": "FanoutPossible"}


class Fault(Enum):
    """An error output the double gives instead of doing the next matching thing."""

    #: The next client input gets ``RejectedInputBecauseUnsynced`` (node behind the chain).
    UNSYNCED = "RejectedInputBecauseUnsynced"
    #: The next client input gets ``InvalidInput`` (as if the node could not decode it).
    INVALID_INPUT = "InvalidInput"
    #: The next layer-1 transaction (``Init``, ``Close``, ``Fanout`` or a deposit's
    #: increment) cannot be posted: ``PostTxOnChainFailed``.
    POST_TX_FAILS = "PostTxOnChainFailed"
    #: The next deposit is recorded but expires before it is activated: ``DepositExpired``.
    DEPOSIT_EXPIRES = "DepositExpired"


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
        deposit_period_s: float = 60.0,
        layer1: Any = None,
    ) -> None:
        self.parties = list(parties)
        self.params = params
        self.keys = {p: NodeKeys() for p in parties}
        self.initial_utxo = copy.deepcopy(initial_utxo or {})
        # layer 1: this module's plain ledger, or another with ``utxo``/``apply`` (and
        # ``draft_fee``: deposits then pay a fee; ``increment``/``fanout``: the head's own
        # layer-1 transactions), e.g. tests.layer1_double.hydra.HydraLayer1
        self.l1 = layer1 if layer1 is not None else Ledger(params, l1_utxo)
        self.contestation_s = contestation_s
        self.deposit_period_s = deposit_period_s
        self.faults: list[Fault] = []
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

    def arm(self, fault: Fault) -> None:
        """Answer the next request that ``fault`` concerns with its error output."""
        self.faults.append(fault)

    def _take(self, fault: Fault) -> bool:
        if fault in self.faults:
            self.faults.remove(fault)
            return True
        return False

    def on_input(self, party: str, message: dict[str, Any]) -> list[Out]:
        """Handle one (schema-valid) client input from ``party``'s node."""
        tag = message["tag"]
        if self._take(Fault.UNSYNCED):
            body = {
                "tag": "RejectedInputBecauseUnsynced",
                "clientInput": message,
                "drift": UNSYNCED_DRIFT_S,
            }
            return [Out(body, to=party, timed=False)]
        if POSTS.get(tag) == self.status and self._take(Fault.POST_TX_FAILS):
            error = {"tag": "NotEnoughFuel", "failingTx": self._failing_tx()}
            return [self._post_failed(party, self._post_chain_tx(tag), error)]
        handler = {
            "Init": self._init,
            "NewTx": self._new_tx,
            "Close": self._close,
            "Fanout": self._fanout,
        }.get(tag)
        if handler is None:
            return [self._failed(party, message)]
        return handler(party, message)

    def _post_failed(self, party: str, posted: dict[str, Any], error: dict[str, Any]) -> Out:
        body = {"tag": "PostTxOnChainFailed", "postChainTx": posted, "postTxError": error}
        return Out(body, to=party, timed=False)

    def _post_chain_tx(self, tag: str, deposit_tx_id: str | None = None) -> dict[str, Any]:
        """api.yaml ``PostChainTx`` of the layer-1 transaction for ``tag`` (or a deposit)."""
        parameters = self.parameters()
        if tag == "Init":
            participants = [self.keys[p].on_chain_id for p in self.parties]
            return {"tag": "InitTx", "participants": participants, "headParameters": parameters}
        if tag == "Close":
            return {
                "tag": "CloseTx",
                "headId": self.head_id,
                "headParameters": parameters,
                "openVersion": self.version,
                "closingSnapshot": self.confirmed_snapshot(),
            }
        if tag == "Fanout":
            return {
                "tag": "FanoutTx",
                "utxo": self.confirmed.utxo,
                "utxoForProof": self.confirmed.utxo,
                "headSeed": self.head_seed,
                "contestationDeadline": self.deadline or utc(),
            }
        return {
            "tag": "IncrementTx",
            "headId": self.head_id,
            "headSeed": self.head_seed,
            "headParameters": parameters,
            "incrementingSnapshot": self.confirmed_snapshot(),
            "depositTxId": deposit_tx_id,
        }

    @staticmethod
    def _failing_tx() -> dict[str, Any]:
        """A transaction envelope for ``PostTxError.failingTx`` (an unbalanced empty body)."""
        body = TransactionBody(inputs=[], outputs=[])
        cbor = Transaction(body, TransactionWitnessSet()).to_cbor()
        return {
            "type": "Tx ConwayEra",
            "description": "",
            "cborHex": cbor.hex(),
            "txId": blake2b_256(body.to_cbor()).hex(),
        }

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
        close = getattr(self.l1, "close", None)
        if close is not None:  # a layer 1 with the head's output: the signed close tx
            close(party, self.head_id)
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
        fanout = getattr(self.l1, "fanout", None)
        if fanout is not None:  # a layer 1 with the head's own output: spend it, pay out
            fanout(final)
        else:
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

    def draft_deposit(
        self, utxo_to_commit: dict[str, Any], amount: int | None = None
    ) -> dict[str, Any]:
        """A deposit transaction spending ``utxo_to_commit`` on layer 1 (unsigned).

        With ``amount``, only that much lovelace is deposited (one output to commit): the
        rest is paid back to the output's address as change.

        Raises:
            LedgerError: the head is not open, an output is not unspent on layer 1, or
                ``amount`` is more than the output holds.
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
        committed = copy.deepcopy(utxo_to_commit)
        outputs = [
            TransactionOutput(Address(DEPOSIT_SCRIPT, network=Network.TESTNET), Value(total))
        ]
        if amount is not None:
            if len(utxo_to_commit) != 1 or not 0 < amount <= total:
                raise LedgerError(f"cannot deposit {amount} lovelace of {total}")
            ((ref, out),) = committed.items()
            out["value"] = {"lovelace": amount}
            outputs[0].amount = Value(amount)
            if amount < total:
                owner = Address.from_primitive(out["address"])
                outputs.append(TransactionOutput(owner, Value(total - amount)))
        body = TransactionBody(inputs=inputs, outputs=outputs)
        draft_fee = getattr(self.l1, "draft_fee", None)
        if draft_fee is not None:  # a layer 1 that charges fees: the change pays it
            body.fee = draft_fee(Transaction(body, TransactionWitnessSet()).to_cbor())
            if len(outputs) < 2 or outputs[1].amount.coin - body.fee < 1_000_000:
                raise LedgerError(f"no change left to pay the deposit fee of {body.fee}")
            outputs[1].amount = Value(outputs[1].amount.coin - body.fee)
        tx = Transaction(body, TransactionWitnessSet())
        tx_id = blake2b_256(body.to_cbor()).hex()
        self.drafts[tx_id] = committed
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
        """The outputs of an observed deposit, step by step (the server spaces them in time).

        The deposit's deadline is two deposit periods away (a deposit expires one period
        before its deadline). An armed fault ends the steps early with its error output.
        """
        deadline = utc(2 * self.deposit_period_s)
        recorded = {
            "tag": "CommitRecorded",
            "headId": self.head_id,
            "utxoToCommit": utxo,
            "pendingDeposit": tx_id,
            "deadline": deadline,
        }
        if self._take(Fault.DEPOSIT_EXPIRES):
            expired = {
                "tag": "DepositExpired",
                "headId": self.head_id,
                "depositTxId": tx_id,
                "deadline": deadline,
                "chainTime": utc(),
            }
            return [lambda: [Out(recorded)], lambda: [Out(expired)]]
        if self._take(Fault.POST_TX_FAILS):
            error = {"tag": "FailedToConstructIncrementTx", "failureReason": "fault injected"}
            posted = self._post_chain_tx("Deposit", tx_id)
            body = {"tag": "PostTxOnChainFailed", "postChainTx": posted, "postTxError": error}
            failed = Out(body, timed=False)  # every node tries to take the deposit in
            return [lambda: [Out(recorded)], lambda: [failed]]
        activated = {
            "tag": "DepositActivated",
            "headId": self.head_id,
            "depositTxId": tx_id,
            "deadline": deadline,
            "chainTime": utc(),
        }
        approved = {"tag": "CommitApproved", "headId": self.head_id, "utxoToCommit": utxo}
        finalized = {"tag": "CommitFinalized", "headId": self.head_id, "depositTxId": tx_id}
        return [
            lambda: [Out(recorded)],
            lambda: [Out(activated)],
            lambda: self._increment(tx_id, utxo),
            lambda: [Out(approved), Out(finalized)],
        ]

    def _increment(self, tx_id: str, utxo: dict[str, Any]) -> list[Out]:
        """Take deposit ``tx_id`` in: the increment on layer 1 (a layer 1 that keeps the
        head's output: tests.layer1_double.hydra.HydraLayer1), then the snapshot."""
        increment = getattr(self.l1, "increment", None)
        if increment is not None and self.status == "Open":
            increment(tx_id)
        return self.snapshot(utxo)

    # ---- state views --------------------------------------------------------------------

    def parameters(self) -> dict[str, Any]:
        """api.yaml ``HeadParameters`` (periods in whole seconds, at least 1)."""
        return {
            "contestationPeriod": max(1, round(self.contestation_s)),
            "depositPeriod": max(1, round(self.deposit_period_s)),
            "parties": [{"vkey": self.keys[p].vkey} for p in self.parties],
        }

    def confirmed_snapshot(self) -> dict[str, Any]:
        """api.yaml ``ConfirmedSnapshot``: the last one, or the initial snapshot."""
        if self.last_snapshot is not None:
            return {**self.last_snapshot, "tag": "ConfirmedSnapshot"}
        return {"tag": "InitialSnapshot", "headId": self.head_id, "initialUTxO": self.initial_utxo}

    def head_state(self) -> dict[str, Any]:
        """api.yaml ``HeadState`` for ``CommandFailed``."""
        if self.status == "Idle" or self.head_id is None:
            return {"tag": "Idle", "contents": {"chainState": {}}}
        parameters = self.parameters()
        confirmed = self.confirmed_snapshot()
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
