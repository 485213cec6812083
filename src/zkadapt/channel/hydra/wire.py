"""The hydra-node client API as typed wire objects (hydra 2.x, ``api.yaml`` AsyncAPI 2.3).

Server outputs arrive as JSON objects with a ``tag`` (``components/schemas/ServerOutput``;
timed outputs also carry ``seq`` and ``timestamp``); client inputs are JSON objects with a
``tag`` (``components/schemas/ClientInput``). Only the outputs the channel acts on get a class;
every other tag parses to :class:`OtherOutput`, so a newer node does not break the client.
Transactions travel in the text-envelope form (``components/schemas/Transaction``).

The node's answers that refuse or fail what a client asked for (``CommandFailed``,
``InvalidInput``, ``RejectedInputBecauseUnsynced``, ``PostTxOnChainFailed`` and
``DepositExpired``; ``TxInvalid`` has its own class) parse to :class:`NodeFailure`
subclasses that name the input they answer and the node's reason in one line, so a waiting
client can stop at once with :class:`HydraNodeError` instead of timing out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from zkadapt.channel.hydra.txread import MalformedTransaction, tx_id_of
from zkadapt.errors import ChannelError

#: ``type`` of a witnessed Conway transaction envelope (api.yaml ``Transaction``).
TX_TYPE = "Tx ConwayEra"
_TXIN = re.compile(r"^[0-9a-f]{64}#[0-9]+$")
_HEX = re.compile(r"^[0-9a-f]*$")


#: The client input a failed layer-1 transaction was posted for (api.yaml ``PostChainTx``);
#: an ``IncrementTx`` takes a deposit into the head.
POSTED_FOR = {
    "InitTx": "Init",
    "CloseTx": "Close",
    "ContestTx": "Contest",
    "FanoutTx": "Fanout",
    "PartialFanoutTx": "Fanout",
    "FinalPartialFanoutTx": "Fanout",
    "IncrementTx": "Deposit",
    "RecoverTx": "Recover",
    "DecrementTx": "Decommit",
}
#: Longest node reason kept in an error line.
MAX_REASON = 300


class HydraProtocolError(ChannelError):
    """The hydra-node sent something that does not follow its API schema."""


class HydraNodeError(ChannelError):
    """The hydra-node refused or failed what this client asked for; one line with its reason.

    Attributes:
        tag: the node's output (``CommandFailed``, ``PostTxOnChainFailed``, ...) or, for an
            HTTP answer, the error tag of its body.
        command: what was asked (``Init``, ``NewTx``, ``Deposit``, ``POST /commit`` ...).
        reason: the node's reason, on one line.
    """

    def __init__(self, where: str, command: str, tag: str, reason: str) -> None:
        self.tag = tag
        self.command = command
        self.reason = reason
        super().__init__(f"{where}: {command} refused by the node ({tag}: {reason})")


@dataclass(frozen=True)
class TxEnvelope:
    """A transaction in text-envelope form: ``{"type", "description", "cborHex", "txId"}``."""

    cbor_hex: str
    tx_id: str | None = None
    type: str = TX_TYPE
    description: str = ""

    @classmethod
    def from_json(cls, obj: object) -> TxEnvelope:
        """Parse api.yaml ``Transaction``.

        Raises:
            HydraProtocolError: missing fields or a ``cborHex`` that is not hex.
        """
        if not isinstance(obj, dict) or not isinstance(obj.get("cborHex"), str):
            raise HydraProtocolError("a transaction must be an object with a cborHex")
        cbor_hex = obj["cborHex"].lower()
        if not _HEX.match(cbor_hex) or len(cbor_hex) % 2:
            raise HydraProtocolError("cborHex is not hexadecimal")
        tx_id = obj.get("txId")
        return cls(
            cbor_hex,
            tx_id if isinstance(tx_id, str) else None,
            str(obj.get("type", TX_TYPE)),
            str(obj.get("description", "")),
        )

    def to_json(self) -> dict[str, str]:
        """The envelope as api.yaml ``Transaction`` (with ``txId`` when known)."""
        body = {"type": self.type, "description": self.description, "cborHex": self.cbor_hex}
        if self.tx_id is not None:
            body["txId"] = self.tx_id
        return body

    @property
    def cbor(self) -> bytes:
        """The transaction's CBOR bytes."""
        return bytes.fromhex(self.cbor_hex)


@dataclass(frozen=True)
class UtxoOut:
    """One entry of an api.yaml ``UTxO`` object: ``"<txid>#<ix>": TxOut``.

    Attributes:
        ref: the ``TxIn`` key, ``"<64 hex>#<index>"``.
        address: bech32 address (CIP-5, CIP-19).
        lovelace: ADA amount.
        assets: ``((policy_hex, asset_name_hex, quantity), ...)`` sorted.
        plain: no datum and no reference script (a plain payment output).
    """

    ref: str
    address: str
    lovelace: int
    assets: tuple[tuple[str, str, int], ...]
    plain: bool

    @property
    def tx_id(self) -> str:
        return self.ref.split("#", 1)[0]

    @property
    def index(self) -> int:
        return int(self.ref.split("#", 1)[1])


def parse_utxo(obj: object) -> dict[str, UtxoOut]:
    """Parse an api.yaml ``UTxO`` object.

    Raises:
        HydraProtocolError: a key is not a ``TxIn`` or a value is not a ``TxOut``.
    """
    if not isinstance(obj, dict):
        raise HydraProtocolError("a UTxO must be a JSON object")
    out: dict[str, UtxoOut] = {}
    for ref, txout in obj.items():
        if not isinstance(ref, str) or not _TXIN.match(ref):
            raise HydraProtocolError(f"bad TxIn {ref!r}")
        if not isinstance(txout, dict) or not isinstance(txout.get("address"), str):
            raise HydraProtocolError(f"{ref}: TxOut needs an address")
        value = txout.get("value")
        if not isinstance(value, dict):
            raise HydraProtocolError(f"{ref}: TxOut needs a value")
        lovelace = value.get("lovelace", 0)
        if not isinstance(lovelace, int) or lovelace < 0:
            raise HydraProtocolError(f"{ref}: lovelace must be a natural number")
        assets = []
        for policy, names in value.items():
            if policy == "lovelace":
                continue
            if not isinstance(names, dict):
                raise HydraProtocolError(f"{ref}: asset map of {policy} must be an object")
            assets.extend((policy, name, int(q)) for name, q in names.items())
        plain = not any(
            txout.get(k)
            for k in (
                "datum",
                "datumhash",
                "inlineDatum",
                "inlineDatumRaw",
                "inlineDatumhash",
                "referenceScript",
            )
        )
        out[ref] = UtxoOut(ref, txout["address"], lovelace, tuple(sorted(assets)), plain)
    return out


@dataclass(frozen=True)
class ServerOutput:
    """Fields shared by every output: its tag, ``seq`` and ``timestamp`` (None if untimed)."""

    tag: str
    seq: int | None
    timestamp: float | None


@dataclass(frozen=True)
class NodeEnvironment:
    """The node's run options that time a head (api.yaml ``Environment``), in seconds.

    Attributes:
        contestation_period_s: how long a closed head can be contested (``Close`` to
            ``ReadyToFanout``); 43,200 s by default on a real node.
        deposit_period_s: how long a deposit stays valid (``--deposit-period``).
        deposit_activation_s: how long after it is recorded a deposit becomes active (0 on
            nodes that activate at once).
        unsynced_period_s: how far behind the chain the node may fall before refusing inputs.
    """

    contestation_period_s: float
    deposit_period_s: float
    deposit_activation_s: float
    unsynced_period_s: float | None = None

    @classmethod
    def from_json(cls, env: object) -> NodeEnvironment | None:
        """Parse ``Greetings.env``; None when it lacks the periods (an older node)."""
        if not isinstance(env, dict):
            return None
        periods = [env.get(k) for k in ("contestationPeriod", "depositPeriod")]
        if not all(_seconds(p) is not None for p in periods):
            return None
        return cls(
            _seconds(periods[0]) or 0.0,
            _seconds(periods[1]) or 0.0,
            _seconds(env.get("depositActivation")) or 0.0,
            _seconds(env.get("unsyncedPeriod")),
        )


def _seconds(value: object) -> float | None:
    """A non-negative api.yaml duration in seconds (a JSON number), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return float(value)


@dataclass(frozen=True)
class Greetings(ServerOutput):
    """Sent after the history replay on every connection (``Hydra.API.WSServer``)."""

    head_status: str
    head_id: str | None
    node_version: str
    me: str
    env: NodeEnvironment | None = None


@dataclass(frozen=True)
class HeadIsOpen(ServerOutput):
    head_id: str
    parties: tuple[str, ...]


@dataclass(frozen=True)
class TxValid(ServerOutput):
    head_id: str
    tx_id: str


@dataclass(frozen=True)
class TxInvalid(ServerOutput):
    head_id: str
    transaction: TxEnvelope
    reason: str


@dataclass(frozen=True)
class SnapshotConfirmed(ServerOutput):
    """A multi-signed snapshot: ``number`` and the transactions it confirms, in order.

    ``utxo_to_commit`` and ``utxo_to_decommit`` (api.yaml ``Snapshot``) are the outputs a
    deposit brings into the head and a decommit takes out with it (None when neither).
    """

    head_id: str
    number: int
    confirmed: tuple[TxEnvelope, ...]
    utxo_to_commit: dict[str, Any] | None = None
    utxo_to_decommit: dict[str, Any] | None = None


@dataclass(frozen=True)
class HeadIsClosed(ServerOutput):
    head_id: str
    snapshot_number: int
    contestation_deadline: str


@dataclass(frozen=True)
class ReadyToFanout(ServerOutput):
    head_id: str


@dataclass(frozen=True)
class HeadIsFinalized(ServerOutput):
    head_id: str
    utxo: dict[str, Any]


@dataclass(frozen=True)
class CommitRecorded(ServerOutput):
    """The node saw a deposit on layer 1; it must enter the head before ``deadline``."""

    head_id: str
    deposit_tx_id: str
    deadline: str


@dataclass(frozen=True)
class DepositActivated(ServerOutput):
    """The deposit is active: the next snapshot takes it into the head."""

    head_id: str
    deposit_tx_id: str


@dataclass(frozen=True)
class CommitFinalized(ServerOutput):
    head_id: str
    deposit_tx_id: str


@dataclass(frozen=True)
class NodeFailure(ServerOutput):
    """The node refused or failed something a client asked for: the answer that ends a wait.

    Attributes:
        command: what it answers: a client input tag (``Init``, ``NewTx``, ``Close``,
            ``Fanout`` ...) or ``Deposit``; None when the node could not tell (an input it
            could not decode).
        reason: the node's reason, on one line.
        tx_id: the transaction concerned (a ``NewTx``'s, a deposit's), when known.
    """

    command: str | None
    reason: str
    tx_id: str | None = None


@dataclass(frozen=True)
class CommandFailed(NodeFailure):
    """A well-formed input the node could not process in its current head state."""


@dataclass(frozen=True)
class InvalidInput(NodeFailure):
    """An input the node could not decode (sent back to that client only)."""


@dataclass(frozen=True)
class RejectedInputBecauseUnsynced(NodeFailure):
    """The node is too far behind the chain to act on an input safely."""


@dataclass(frozen=True)
class PostTxOnChainFailed(NodeFailure):
    """A layer-1 transaction the node built for an input (or a deposit) could not be posted."""


@dataclass(frozen=True)
class DepositExpired(NodeFailure):
    """A deposit's deadline passed before the head took it in (recover it with ``Recover``)."""


@dataclass(frozen=True)
class OtherOutput(ServerOutput):
    """Any other output (PeerConnected, CommitRecorded, ...); kept only by tag."""


def parse_time(text: object) -> float | None:
    """Seconds since the epoch of an api.yaml ``UTCTime`` (ISO 8601, up to ns digits)."""
    if not isinstance(text, str):
        return None
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", text)
    if match is None:
        return None
    base = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    fraction = float("0" + match.group(2)) if match.group(2) else 0.0
    return base.timestamp() + fraction


def parse_output(text: str | bytes) -> ServerOutput:
    """Parse one WebSocket text frame from the node.

    Raises:
        HydraProtocolError: not JSON, not an object, or a known tag with missing fields.
    """
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HydraProtocolError(f"server output is not JSON: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("tag"), str):
        raise HydraProtocolError("server output must be an object with a tag")
    tag = obj["tag"]
    seq = obj.get("seq") if isinstance(obj.get("seq"), int) else None
    common = (tag, seq, parse_time(obj.get("timestamp")))
    try:
        return _parse_known(obj, common)
    except (KeyError, TypeError, ValueError) as exc:
        raise HydraProtocolError(f"{tag}: malformed ({type(exc).__name__}: {exc})") from None


def _parse_known(obj: dict[str, Any], common: tuple[str, int | None, float | None]) -> ServerOutput:
    tag = common[0]
    if tag == "Greetings":
        return Greetings(
            *common,
            str(obj["headStatus"]),
            obj.get("hydraHeadId"),
            str(obj.get("hydraNodeVersion", "")),
            str(obj["me"]["vkey"]),
            NodeEnvironment.from_json(obj.get("env")),
        )
    if tag == "HeadIsOpen":
        parties = tuple(str(p["vkey"]) for p in obj.get("parties", []))
        return HeadIsOpen(*common, str(obj["headId"]), parties)
    if tag == "TxValid":
        return TxValid(*common, str(obj["headId"]), str(obj["transactionId"]))
    if tag == "TxInvalid":
        error = obj.get("validationError") or {}
        reason = error.get("reason", "") if isinstance(error, dict) else str(error)
        return TxInvalid(
            *common, str(obj["headId"]), TxEnvelope.from_json(obj["transaction"]), str(reason)
        )
    if tag == "SnapshotConfirmed":
        snapshot = obj["snapshot"]
        txs = tuple(TxEnvelope.from_json(t) for t in snapshot.get("confirmed", []))
        number = snapshot["number"]
        if not isinstance(number, int) or number < 0:
            raise ValueError("snapshot number must be a natural number")
        return SnapshotConfirmed(
            *common,
            str(obj["headId"]),
            number,
            txs,
            _utxo_or_none(snapshot.get("utxoToCommit")),
            _utxo_or_none(snapshot.get("utxoToDecommit")),
        )
    if tag == "HeadIsClosed":
        return HeadIsClosed(
            *common,
            str(obj["headId"]),
            int(obj["snapshotNumber"]),
            str(obj["contestationDeadline"]),
        )
    if tag == "ReadyToFanout":
        return ReadyToFanout(*common, str(obj["headId"]))
    if tag == "HeadIsFinalized":
        return HeadIsFinalized(*common, str(obj["headId"]), dict(obj.get("finalizedUTxO", {})))
    if tag == "CommitRecorded":
        return CommitRecorded(
            *common, str(obj["headId"]), str(obj["pendingDeposit"]), str(obj["deadline"])
        )
    if tag == "DepositActivated":
        return DepositActivated(*common, str(obj["headId"]), str(obj["depositTxId"]))
    if tag == "CommitFinalized":
        return CommitFinalized(*common, str(obj["headId"]), str(obj["depositTxId"]))
    failure = _parse_failure(obj, common)
    return failure if failure is not None else OtherOutput(*common)


def _utxo_or_none(value: object) -> dict[str, Any] | None:
    """An api.yaml ``UTxO`` object kept as given (checked by :func:`parse_utxo` on use)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("utxoToCommit/utxoToDecommit must be a UTxO object or null")
    return dict(value)


def _parse_failure(
    obj: dict[str, Any], common: tuple[str, int | None, float | None]
) -> NodeFailure | None:
    """The node's refusal or failure in ``obj``, or None if ``obj`` is not one."""
    tag = common[0]
    if tag == "CommandFailed":
        state = obj.get("state")
        state_tag = state.get("tag") if isinstance(state, dict) else None
        command, tx_id = _input_of(obj["clientInput"])
        return CommandFailed(
            *common, command, f"head is {state_tag or 'in an unknown state'}", tx_id
        )
    if tag == "RejectedInputBecauseUnsynced":
        command, tx_id = _input_of(obj["clientInput"])
        drift = _seconds(obj.get("drift"))
        behind = f" ({drift:,.0f} s behind)" if drift is not None else ""
        return RejectedInputBecauseUnsynced(
            *common, command, f"the node is out of sync with layer 1{behind}", tx_id
        )
    if tag == "InvalidInput":
        command, tx_id = _input_of(_json_or_none(obj.get("input")))
        return InvalidInput(*common, command, one_line(obj.get("reason", "")), tx_id)
    if tag == "PostTxOnChainFailed":
        posted = obj["postChainTx"]
        posted_tag = str(posted["tag"])
        deposit = posted.get("depositTxId")
        reason = f"{posted_tag}: {post_tx_reason(obj['postTxError'])}"
        return PostTxOnChainFailed(
            *common,
            POSTED_FOR.get(posted_tag, posted_tag),
            reason,
            deposit if isinstance(deposit, str) else None,
        )
    if tag == "DepositExpired":
        deposit = str(obj["depositTxId"])
        reason = (
            f"deposit {deposit} expired at {obj.get('deadline', '?')} before the head took it in"
        )
        return DepositExpired(*common, "Deposit", reason, deposit)
    return None


def _input_of(client_input: object) -> tuple[str | None, str | None]:
    """The tag of a client input a node echoes back, and its transaction's id (``NewTx``)."""
    if not isinstance(client_input, dict) or not isinstance(client_input.get("tag"), str):
        return None, None
    tx = client_input.get("transaction")
    tx_id = None
    if isinstance(tx, dict):
        tx_id = tx.get("txId") if isinstance(tx.get("txId"), str) else None
        if tx_id is None and isinstance(tx.get("cborHex"), str):
            tx_id = _tx_id_of_hex(tx["cborHex"])
    return client_input["tag"], tx_id


def _tx_id_of_hex(cbor_hex: str) -> str | None:
    try:
        return tx_id_of(bytes.fromhex(cbor_hex))
    except (MalformedTransaction, ValueError):
        return None


def _json_or_none(text: object) -> object:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        return None


def post_tx_reason(error: object) -> str:
    """One line from an api.yaml ``PostTxError``: its tag and its reason."""
    if not isinstance(error, dict):
        return one_line(error)
    tag = str(error.get("tag", "PostTxError"))
    reason = error_reason(error)
    return f"{tag}: {reason}" if reason else tag


def error_reason(error: dict[str, Any]) -> str:
    """The reason an error object of the node gives (``failureReason``, ``reason``), or its
    plain fields (``minimumValue=..., providedValue=...``); empty if it has neither."""
    for key in ("failureReason", "reason"):
        if isinstance(error.get(key), str):
            return one_line(error[key])
    plain = [
        f"{k}={v}" for k, v in error.items() if k != "tag" and isinstance(v, (int, float, str))
    ]
    return one_line(", ".join(plain))


def one_line(text: object, limit: int = MAX_REASON) -> str:
    """``text`` on one line, whitespace collapsed, cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def client_input(tag: str, **fields: Any) -> str:
    """A client input frame (api.yaml ``ClientInput``): ``{"tag": tag, **fields}`` as JSON."""
    return json.dumps({"tag": tag, **fields}, separators=(",", ":"))


def new_tx(tx: TxEnvelope) -> str:
    """The ``NewTx`` input submitting ``tx`` to the head."""
    return client_input("NewTx", transaction=tx.to_json())
