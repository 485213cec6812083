"""Reading Conway-era transactions: id, inputs, outputs, fee, witnesses and metadata.

Only what the channel (and the test double's ledger) needs is decoded, straight from the
CBOR with ``cbor2`` and the raw spans of :mod:`zkadapt.channel.hydra.cbor`, so the id and the
auxiliary-data hash are computed over the bytes as sent (Conway CDDL, ``transaction_body``
keys 0 inputs, 1 outputs, 2 fee, 7 auxiliary_data_hash, 9 mint; ``transaction_witness_set``
key 0 vkeywitnesses; sets may carry tag 258). Anything that does not parse is a
:class:`MalformedTransaction`: data from a peer, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cbor2

from zkadapt.channel.base import SignedEnvelope
from zkadapt.channel.hydra.cbor import MalformedCbor, blake2b_224, blake2b_256, split_array
from zkadapt.channel.hydra.metadata import METADATA_LABEL, decode_envelope
from zkadapt.crypto.identity import PublicIdentity
from zkadapt.errors import ChannelError

_SET_TAG = 258
_ALONZO_AUX_TAG = 259


class MalformedTransaction(ChannelError):
    """Bytes that are not a decodable Cardano transaction."""


@dataclass(frozen=True)
class TxOutput:
    """One transaction output: raw address bytes (CIP-19), lovelace and native assets.

    Attributes:
        address: the address bytes (header byte + credentials).
        lovelace: the ADA amount in lovelace.
        assets: ``((policy_id, asset_name, quantity), ...)`` sorted.
        datum: whether a datum hash or inline datum is attached.
        script_ref: whether a reference script is attached.
        raw: the output's CBOR as sent (for the min-UTxO size rule).
    """

    address: bytes
    lovelace: int
    assets: tuple[tuple[bytes, bytes, int], ...]
    datum: bool
    script_ref: bool
    raw: bytes

    @property
    def payment_key_hash(self) -> bytes | None:
        """The 28-byte payment key hash if the payment credential is a key (CIP-19), else None.

        Shelley address headers 0x0_, 0x2_, 0x4_ and 0x6_ (even types 0, 2, 4, 6) carry a key
        hash as payment part; odd types carry a script hash; Byron (0x8_) has none we can use.
        """
        if not self.address:
            return None
        kind = self.address[0] >> 4
        if kind in (0, 2, 4, 6) and len(self.address) >= 29:
            return self.address[1:29]
        return None


@dataclass(frozen=True)
class VkeyWitness:
    """A verification-key witness: 32-byte Ed25519 key and its signature of the tx id."""

    vkey: bytes
    signature: bytes

    @property
    def key_hash(self) -> bytes:
        """blake2b-224 of the key: the payment credential it can unlock."""
        return blake2b_224(self.vkey)

    def verifies(self, tx_id: str) -> bool:
        """Whether the signature is valid for the 32-byte id ``tx_id`` (hex)."""
        if len(self.vkey) != 32:
            return False
        return PublicIdentity(self.vkey).verify(bytes.fromhex(tx_id), self.signature)


@dataclass(frozen=True)
class DecodedTx:
    """The parts of a transaction that the channel and the double look at."""

    tx_id: str
    size: int
    inputs: tuple[tuple[str, int], ...]
    outputs: tuple[TxOutput, ...]
    fee: int
    mint: bool
    scripts: bool
    aux_hash: bytes | None
    aux_raw: bytes | None
    metadata: dict[int, Any] | None
    witnesses: tuple[VkeyWitness, ...]
    is_valid: bool

    def envelope(self) -> SignedEnvelope | None:
        """The channel envelope in this transaction's metadata, or None if it carries none.

        Raises:
            MalformedEnvelope: the metadata under our label is not a valid envelope.
        """
        if not self.metadata or METADATA_LABEL not in self.metadata:
            return None
        return decode_envelope(self.metadata[METADATA_LABEL])

    def witnessed_by(self, key: bytes) -> bool:
        """Whether a valid witness by the 32-byte Ed25519 ``key`` signs this transaction."""
        return any(w.vkey == key and w.verifies(self.tx_id) for w in self.witnesses)


def tx_id_of(cbor: bytes) -> str:
    """The transaction id: hex blake2b-256 of the body bytes as sent.

    Raises:
        MalformedTransaction: ``cbor`` is not a transaction array.
    """
    try:
        parts = split_array(cbor)
    except MalformedCbor as exc:
        raise MalformedTransaction(f"not a transaction: {exc}") from None
    if len(parts) not in (3, 4):
        raise MalformedTransaction(f"a transaction has 3 or 4 parts, got {len(parts)}")
    return blake2b_256(parts[0]).hex()


def decode_tx(cbor: bytes) -> DecodedTx:
    """Decode what :class:`DecodedTx` holds from a serialized transaction.

    Raises:
        MalformedTransaction: not a Conway/Babbage transaction this reader understands.
    """
    try:
        parts = split_array(cbor)
        if len(parts) not in (3, 4):
            raise MalformedTransaction(f"a transaction has 3 or 4 parts, got {len(parts)}")
        body = cbor2.loads(parts[0])
        witness_set = cbor2.loads(parts[1])
        valid = cbor2.loads(parts[2]) if len(parts) == 4 else True
        aux_raw = parts[-1] if parts[-1] != b"\xf6" else None
        aux = cbor2.loads(aux_raw) if aux_raw is not None else None
        if not isinstance(body, dict) or not isinstance(witness_set, dict):
            raise MalformedTransaction("body and witness set must be maps")
        return DecodedTx(
            tx_id=blake2b_256(parts[0]).hex(),
            size=len(cbor),
            inputs=_inputs(body.get(0)),
            outputs=tuple(_output(o) for o in _plain(body.get(1, []))),
            fee=_uint(body.get(2), "fee"),
            mint=bool(body.get(9)),
            scripts=any(k != 0 for k in witness_set),
            aux_hash=_hash_or_none(body.get(7)),
            aux_raw=aux_raw,
            metadata=_metadata(aux),
            witnesses=_witnesses(witness_set.get(0, [])),
            is_valid=valid is True,
        )
    except (MalformedCbor, cbor2.CBORDecodeError, ValueError, TypeError, KeyError) as exc:
        raise MalformedTransaction(f"cannot decode transaction: {exc}") from None


def _plain(value: object) -> Any:
    """A CBOR tag-258 set as a sorted list (``cbor2`` decodes it to a set of tuples)."""
    if isinstance(value, cbor2.CBORTag) and value.tag == _SET_TAG:
        value = value.value
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return value


def _uint(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedTransaction(f"{what} must be an unsigned integer")
    return value


def _hash_or_none(value: object) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, bytes) or len(value) != 32:
        raise MalformedTransaction("auxiliary_data_hash must be 32 bytes")
    return value


def _inputs(value: object) -> tuple[tuple[str, int], ...]:
    items = _plain(value)
    if not isinstance(items, list):
        raise MalformedTransaction("inputs must be a list or a set")
    refs = []
    for item in items:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], bytes)):
            raise MalformedTransaction("an input must be [tx_id, index]")
        if len(item[0]) != 32:
            raise MalformedTransaction("an input's tx_id must be 32 bytes")
        refs.append((item[0].hex(), _uint(item[1], "input index")))
    return tuple(refs)


def _output(value: object) -> TxOutput:
    raw = cbor2.dumps(value)  # outputs are only sized for the min-UTxO rule
    if isinstance(value, list) and len(value) in (2, 3):
        address, amount, datum, script = value[0], value[1], len(value) == 3, False
    elif isinstance(value, dict) and 0 in value and 1 in value:
        address, amount, datum, script = value[0], value[1], 2 in value, 3 in value
    else:
        raise MalformedTransaction("an output must be [address, value] or {0: address, 1: value}")
    if not isinstance(address, bytes):
        raise MalformedTransaction("an output address must be bytes")
    lovelace, assets = _value(amount)
    return TxOutput(address, lovelace, assets, datum, script, raw)


def _value(amount: object) -> tuple[int, tuple[tuple[bytes, bytes, int], ...]]:
    if isinstance(amount, int) and not isinstance(amount, bool):
        return _uint(amount, "coin"), ()
    if not (isinstance(amount, list) and len(amount) == 2 and isinstance(amount[1], dict)):
        raise MalformedTransaction("a value must be coin or [coin, multiasset]")
    assets = []
    for policy, names in amount[1].items():
        if not isinstance(policy, bytes) or not isinstance(names, dict):
            raise MalformedTransaction("multiasset must map policy ids to asset maps")
        for name, quantity in names.items():
            assets.append((policy, bytes(name), _uint(quantity, "asset quantity")))
    return _uint(amount[0], "coin"), tuple(sorted(assets))


def _metadata(aux: object) -> dict[int, Any] | None:
    """Metadata from any auxiliary-data shape: Shelley map, Allegra array, Alonzo tag 259."""
    if aux is None:
        return None
    if isinstance(aux, cbor2.CBORTag) and aux.tag == _ALONZO_AUX_TAG:
        aux = aux.value.get(0) if isinstance(aux.value, dict) else None
    elif isinstance(aux, list) and aux:
        aux = aux[0]
    if aux is None:
        return None
    if not isinstance(aux, dict) or not all(isinstance(k, int) for k in aux):
        raise MalformedTransaction("metadata must map integer labels to metadata")
    return aux


def _witnesses(value: object) -> tuple[VkeyWitness, ...]:
    items = _plain(value)
    if not isinstance(items, list):
        raise MalformedTransaction("vkeywitnesses must be a list or a set")
    out = []
    for item in items:
        if not (isinstance(item, (list, tuple)) and len(item) == 2):
            raise MalformedTransaction("a vkey witness must be [vkey, signature]")
        vkey, signature = item
        if not isinstance(vkey, bytes) or not isinstance(signature, bytes):
            raise MalformedTransaction("a vkey witness holds two byte strings")
        out.append(VkeyWitness(vkey, signature))
    return tuple(out)
