"""The hydra-node client API as typed wire objects (hydra 2.x, ``api.yaml`` AsyncAPI 2.3).

Server outputs arrive as JSON objects with a ``tag`` (``components/schemas/ServerOutput``;
timed outputs also carry ``seq`` and ``timestamp``); client inputs are JSON objects with a
``tag`` (``components/schemas/ClientInput``). Only the outputs the channel acts on get a class;
every other tag parses to :class:`OtherOutput`, so a newer node does not break the client.
Transactions travel in the text-envelope form (``components/schemas/Transaction``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from zkadapt.errors import ChannelError

#: ``type`` of a witnessed Conway transaction envelope (api.yaml ``Transaction``).
TX_TYPE = "Tx ConwayEra"
_TXIN = re.compile(r"^[0-9a-f]{64}#[0-9]+$")
_HEX = re.compile(r"^[0-9a-f]*$")


class HydraProtocolError(ChannelError):
    """The hydra-node sent something that does not follow its API schema."""


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
class Greetings(ServerOutput):
    """Sent after the history replay on every connection (``Hydra.API.WSServer``)."""

    head_status: str
    head_id: str | None
    node_version: str
    me: str


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
    """A multi-signed snapshot: ``number`` and the transactions it confirms, in order."""

    head_id: str
    number: int
    confirmed: tuple[TxEnvelope, ...]


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
class CommitFinalized(ServerOutput):
    head_id: str
    deposit_tx_id: str


@dataclass(frozen=True)
class CommandFailed(ServerOutput):
    """A well-formed input the node could not process in its current head state."""

    input_tag: str
    state_tag: str


@dataclass(frozen=True)
class InvalidInput(ServerOutput):
    reason: str


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
        return SnapshotConfirmed(*common, str(obj["headId"]), number, txs)
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
    if tag == "CommitFinalized":
        return CommitFinalized(*common, str(obj["headId"]), str(obj["depositTxId"]))
    if tag == "CommandFailed":
        state = obj.get("state") or {}
        return CommandFailed(
            *common,
            str(obj["clientInput"]["tag"]),
            str(state.get("tag", "")) if isinstance(state, dict) else "",
        )
    if tag == "InvalidInput":
        return InvalidInput(*common, str(obj.get("reason", "")))
    return OtherOutput(*common)


def client_input(tag: str, **fields: Any) -> str:
    """A client input frame (api.yaml ``ClientInput``): ``{"tag": tag, **fields}`` as JSON."""
    return json.dumps({"tag": tag, **fields}, separators=(",", ":"))


def new_tx(tx: TxEnvelope) -> str:
    """The ``NewTx`` input submitting ``tx`` to the head."""
    return client_input("NewTx", transaction=tx.to_json())
