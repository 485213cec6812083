"""Building and signing the transactions that carry channel messages, with PyCardano.

A channel message is a Conway-era transaction that spends one of the sender's outputs in
the head and pays it back, whole, to the same address, carrying the envelope in its
metadata (:mod:`zkadapt.channel.hydra.metadata`). Heads usually run with zero fees
(``txFeeFixed = txFeePerByte = 0`` in hydra-cluster's protocol parameters); when they are
not zero the linear fee ``a + b * size`` (Shelley ledger spec, ``minfee``) comes out of the
output. The only witness is the sender's: its identity key *is* the payment key (CIP-19
enterprise address of the key hash), so the Ed25519 key that signs the envelope also signs
the transaction id.
"""

from __future__ import annotations

from dataclasses import dataclass

from pycardano import (
    Address,
    AlonzoMetadata,
    AuxiliaryData,
    Metadata,
    MultiAsset,
    Network,
    PaymentVerificationKey,
    Transaction,
    TransactionBody,
    TransactionInput,
    TransactionOutput,
    TransactionWitnessSet,
    Value,
    VerificationKeyWitness,
)

from zkadapt.channel.base import SignedEnvelope
from zkadapt.channel.hydra.cbor import blake2b_224, blake2b_256, encode_array, split_array
from zkadapt.channel.hydra.metadata import encode_envelope
from zkadapt.channel.hydra.wire import TxEnvelope, UtxoOut
from zkadapt.crypto.identity import IdentityKey, PublicIdentity
from zkadapt.errors import ChannelError

NETWORKS = {"testnet": Network.TESTNET, "mainnet": Network.MAINNET}
_FEE_ROUNDS = 4


@dataclass(frozen=True)
class FeeRule:
    """The ledger's linear fee: ``fee >= fixed + per_byte * tx_size`` (protocol parameters)."""

    fixed: int = 0
    per_byte: int = 0
    max_tx_size: int = 16384

    @classmethod
    def from_protocol_parameters(cls, params: dict[str, object]) -> FeeRule:
        """Read ``txFeeFixed``, ``txFeePerByte`` and ``maxTxSize`` (api.yaml ProtocolParameters).

        Raises:
            ChannelError: a field is missing or not a natural number.
        """
        values = []
        for key in ("txFeeFixed", "txFeePerByte", "maxTxSize"):
            value = params.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ChannelError(f"protocol parameters: {key} must be a natural number")
            values.append(value)
        return cls(*values)

    def fee_for(self, size: int) -> int:
        return self.fixed + self.per_byte * size


def address_of(identity: PublicIdentity, network: str = "testnet") -> str:
    """The bech32 enterprise address (CIP-19 type 6) of ``identity`` as a payment key."""
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {sorted(NETWORKS)}, got {network!r}")
    vkey = PaymentVerificationKey(identity.raw)
    return Address(vkey.hash(), network=NETWORKS[network]).encode()


def key_hash_of(address: str) -> bytes | None:
    """The payment key hash of a bech32 address, or None for script or Byron addresses."""
    try:
        parsed = Address.from_primitive(address)
    except Exception:  # PyCardano raises several types for a malformed address
        return None
    part = parsed.payment_part
    if part is None or type(part).__name__ != "VerificationKeyHash":
        return None
    return bytes(part.payload)


def owned_by(identity: PublicIdentity, utxo: dict[str, UtxoOut]) -> list[UtxoOut]:
    """Plain outputs whose payment credential is ``identity``'s key, in ``TxIn`` order."""
    mine = blake2b_224(identity.raw)
    return sorted(
        (u for u in utxo.values() if u.plain and key_hash_of(u.address) == mine),
        key=lambda u: (u.tx_id, u.index),
    )


def build_message_tx(
    identity: IdentityKey, spend: UtxoOut, envelope: SignedEnvelope, fees: FeeRule
) -> TxEnvelope:
    """The signed transaction that posts ``envelope`` by spending ``spend`` back to itself.

    Raises:
        ChannelError: ``spend`` cannot pay the fee, or the transaction exceeds ``maxTxSize``.
    """
    aux = AuxiliaryData(AlonzoMetadata(metadata=Metadata(encode_envelope(envelope))))
    fee = 0
    for _ in range(_FEE_ROUNDS):
        body = _body(spend, aux, fee)
        cbor = _signed(identity, body, aux)
        needed = fees.fee_for(len(cbor))
        if needed <= fee:
            break
        fee = needed
    else:  # pragma: no cover - the fee converges in two rounds for a linear rule
        raise ChannelError("transaction fee did not converge")
    if len(cbor) > fees.max_tx_size:
        raise ChannelError(
            f"message transaction is {len(cbor)} bytes, over maxTxSize {fees.max_tx_size}; "
            "the payload is too large for the head"
        )
    return TxEnvelope(cbor.hex(), blake2b_256(body.to_cbor()).hex())


def _body(spend: UtxoOut, aux: AuxiliaryData, fee: int) -> TransactionBody:
    if spend.lovelace < fee:
        raise ChannelError(f"{spend.ref} holds {spend.lovelace} lovelace, the fee is {fee}")
    assets: dict[bytes, dict[bytes, int]] = {}
    for policy, name, quantity in spend.assets:
        assets.setdefault(bytes.fromhex(policy), {})[bytes.fromhex(name)] = quantity
    value = Value(spend.lovelace - fee, MultiAsset.from_primitive(assets) if assets else None)
    if value.multi_asset is None:
        value = Value(spend.lovelace - fee)
    output = TransactionOutput(Address.from_primitive(spend.address), value)
    txin = TransactionInput.from_primitive([bytes.fromhex(spend.tx_id), spend.index])
    return TransactionBody(inputs=[txin], outputs=[output], fee=fee, auxiliary_data_hash=aux.hash())


def _signed(identity: IdentityKey, body: TransactionBody, aux: AuxiliaryData | None) -> bytes:
    tx_id = blake2b_256(body.to_cbor())
    witness = VerificationKeyWitness(
        PaymentVerificationKey(identity.public.raw), identity.sign(tx_id)
    )
    return Transaction(body, TransactionWitnessSet(vkey_witnesses=[witness]), True, aux).to_cbor()


def add_witness(cbor: bytes, identity: IdentityKey) -> bytes:
    """``cbor`` with ``identity``'s vkey witness added; body and metadata kept byte for byte.

    Used to sign a deposit transaction drafted by the node (``POST /commit``).

    Raises:
        ChannelError: ``cbor`` is not a transaction.
    """
    import cbor2

    parts = split_array(cbor)
    if len(parts) not in (3, 4):
        raise ChannelError("not a transaction: expected 3 or 4 parts")
    tx_id = blake2b_256(parts[0])
    witnesses = cbor2.loads(parts[1])
    if not isinstance(witnesses, dict):
        raise ChannelError("not a transaction: the witness set is not a map")
    existing = witnesses.get(0, [])
    if isinstance(existing, cbor2.CBORTag):
        existing = existing.value
    existing = [w for w in existing if w[0] != identity.public.raw]
    witnesses[0] = [*existing, [identity.public.raw, identity.sign(tx_id)]]
    parts[1] = cbor2.dumps(witnesses)
    return encode_array(parts)
