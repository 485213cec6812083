"""The threshold-Paillier scheme's own operations, as pure functions over explicit inputs.

Seal, open, sum, share, check a share and combine (CRYPTO.md sections 3-6). None of them
reads the channel or the store, holds a key epoch or remembers a round: the caller passes
the key material, the packing spec and the ciphertexts, and gets bytes, ciphertexts or a
mean delta back. The key epochs live in :mod:`zkadapt.protocol.key_epochs`; storing and
fetching in :mod:`zkadapt.protocol.publishing`; *when* each runs is the round machine's
decision (:mod:`zkadapt.protocol.machine`).

Every honest party calls these with the same inputs in the same (party-name, channel)
order, so they all get bit-identical sums and mean deltas (DESIGN.md section 3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from zkadapt.crypto.packing import PackingSpec
from zkadapt.crypto.paillier import Ciphertext, encrypt_many
from zkadapt.crypto.proofs import (
    PlaintextProof,
    ProofContext,
    ShareProof,
    prove_decryption_shares,
    prove_plaintext_knowledge,
    verify_decryption_shares,
    verify_plaintext_knowledge,
)
from zkadapt.crypto.threshold import KeyShare, ThresholdPublicKey, combine, decryption_shares_many
from zkadapt.errors import CryptoError
from zkadapt.protocol.ciphertexts import EncryptedUpdate, ShareBundle
from zkadapt.protocol.publishing import OBJECT_SLACK_BYTES
from zkadapt.protocol.update import UpdateRejected


def packing_doc(spec: PackingSpec) -> dict[str, Any]:
    """The packing parameters an encrypted update declares in its header."""
    return {"k": spec.k, "clip": spec.clip, "n": spec.n_parties}


def seal_update(
    public: ThresholdPublicKey,
    spec: PackingSpec,
    ctx: ProofContext,
    delta: np.ndarray,
    *,
    weight: float,
    n_samples: int,
    workers: int | None = None,
    textbook: bool = False,
) -> bytes:
    """Weight, clip, quantize, pack, DJN-encrypt and prove one party's delta.

    CRYPTO.md section 3 (packing with weight ``weight`` = ω_i), section 2 (encryption) and
    section 5 (batched proof of plaintext knowledge bound to ``ctx``: session, round, party).

    Args:
        n_samples: the party's declared training-set size (bound into the header).
    """
    plaintexts = spec.pack(np.asarray(delta, dtype=np.float64), weight)
    cts, randomness = encrypt_many(public.paillier, plaintexts, workers, textbook=textbook)
    proof = prove_plaintext_knowledge(public.paillier, ctx, cts, plaintexts, randomness)
    update = EncryptedUpdate(
        ctx.session,
        ctx.round,
        ctx.party,
        public.key_id,
        packing_doc(spec),
        int(delta.size),
        n_samples,
        tuple(c.value for c in cts),
        proof.to_bytes(),
    )
    return update.to_bytes(public.paillier.ciphertext_bytes)


def open_update(
    public: ThresholdPublicKey,
    spec: PackingSpec,
    ctx: ProofContext,
    data: bytes,
    *,
    declared: int | None,
    claimed_samples: int,
    length: int,
) -> list[Ciphertext]:
    """Check an encrypted update's binding, parameters, ranges and proof; its ciphertexts.

    Args:
        ctx: what the object must be bound to: this session, this round, its submitter.
        declared: the submitter's ``Joined`` size before the key (None: did not join in time).
        claimed_samples: the ``n_samples`` of its ``Submitted`` message.
        length: the flat trainable vector's length.

    Raises:
        UpdateRejected: the first check that fails, with the reason posted in ``Rejected``.
    """
    update = EncryptedUpdate.from_bytes(data)
    if update.session != ctx.session:
        raise UpdateRejected("wrong session")
    if update.round != ctx.round:
        raise UpdateRejected(f"replay: object is for round {update.round}")
    if update.party != ctx.party:
        raise UpdateRejected(f"copied object: it belongs to {update.party}")
    if update.key_id != public.key_id:
        raise UpdateRejected("key id mismatch")
    if declared is None:
        raise UpdateRejected("party did not join before the key was dealt")
    if update.n_samples != declared or claimed_samples != update.n_samples:
        raise UpdateRejected("malformed object: n_samples differs from the declared count")
    if update.packing != packing_doc(spec) or update.length != length:
        raise UpdateRejected("malformed object: packing parameters or length differ")
    if len(update.ciphertexts) != spec.num_plaintexts(update.length):
        raise UpdateRejected("malformed object: wrong number of ciphertexts")
    try:
        cts = [public.paillier.ciphertext(v) for v in update.ciphertexts]
        proof = PlaintextProof.from_bytes(update.proof)
        verify_plaintext_knowledge(public.paillier, ctx, cts, proof)
    except (CryptoError, ValueError) as exc:
        raise UpdateRejected(f"proof failed: {exc}") from None
    return cts


def sum_updates(
    public: ThresholdPublicKey, accepted: Mapping[str, Sequence[Ciphertext]]
) -> list[Ciphertext]:
    """Multiply the accepted ciphertexts slot by slot, in party-name order (section 2)."""
    names = sorted(accepted)
    return [
        public.paillier.sum(accepted[n][j] for n in names) for j in range(len(accepted[names[0]]))
    ]


def share_bundle(
    public: ThresholdPublicKey,
    share: KeyShare,
    ctx: ProofContext,
    total: Sequence[Ciphertext],
    *,
    workers: int | None = None,
) -> bytes:
    """This key holder's decryption shares of ``total`` with a batched proof (sections 4, 6)."""
    values = decryption_shares_many(share, list(total), workers)
    proof = prove_decryption_shares(share, ctx, list(total), values)
    bundle = ShareBundle(
        ctx.session,
        ctx.round,
        ctx.party,
        public.key_id,
        share.index,
        tuple(values),
        proof.to_bytes(),
    )
    return bundle.to_bytes(public.paillier.ciphertext_bytes)


def max_bundle_bytes(public: ThresholdPublicKey, total: Sequence[Ciphertext]) -> int:
    """An upper bound on an honest share bundle's size: fixed-width shares, header, proof."""
    return len(total) * public.paillier.ciphertext_bytes + OBJECT_SLACK_BYTES


def check_bundle(
    public: ThresholdPublicKey,
    ctx: ProofContext,
    index: int,
    total: Sequence[Ciphertext],
    data: bytes,
) -> list[int]:
    """Parse one party's share bundle and verify its proof against its verification key.

    Args:
        ctx: this session and round, and the party that posted the bundle.
        index: that party's Shamir index (1..n).

    Raises:
        UpdateRejected: bound elsewhere, malformed, or the proof fails (section 6).
    """
    bundle = ShareBundle.from_bytes(data)
    binding = (bundle.session, bundle.round, bundle.party, bundle.key_id, bundle.index)
    if binding != (ctx.session, ctx.round, ctx.party, public.key_id, index):
        raise UpdateRejected("share object is bound to another session, round, party or key")
    if len(bundle.shares) != len(total):
        raise UpdateRejected("malformed object: wrong number of shares")
    try:
        proof = ShareProof.from_bytes(bundle.proof)
        verify_decryption_shares(public, index, ctx, list(total), list(bundle.shares), proof)
    except (CryptoError, ValueError) as exc:
        raise UpdateRejected(f"proof failed: {exc}") from None
    return list(bundle.shares)


def combine_mean(
    public: ThresholdPublicKey,
    spec: PackingSpec,
    shares: Mapping[int, Sequence[int]],
    *,
    n_accepted: int,
    weight: float,
    length: int,
) -> np.ndarray:
    """Combine t parties' shares (Shamir index -> shares), unpack, divide by the weights.

    Section 4 gives the packed sum; section 3 subtracts ``n_accepted`` offsets per slot and
    divides by ``weight`` = Σ ω_i of the accepted parties (the weighted mean).
    """
    count = len(next(iter(shares.values())))
    plaintexts = [combine(public, {i: s[j] for i, s in shares.items()}) for j in range(count)]
    return spec.unpack(plaintexts, n_accepted, weight, length).astype(np.float32)
