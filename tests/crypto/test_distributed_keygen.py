"""Tests for zkadapt.crypto.distributed_keygen: dealer-free threshold Paillier keys.

Keys are small (256-bit N) so the module stays fast; the protocol and arithmetic are the real
ones. t is the number of shares that decrypt (``privacy.threshold``), so n = 3 needs t ≤ 2 and
n = 5 needs t ≤ 3 (one BGW product of degree-(t−1) sharings).
"""

from __future__ import annotations

import itertools
from typing import Any

import gmpy2
import pytest

from zkadapt.crypto.distributed_keygen import (
    DkgParams,
    DkgParty,
    deliver,
    min_parties,
    run_in_process,
)
from zkadapt.crypto.proofs import ProofContext, decrypt_and_prove, verify_decryption_shares
from zkadapt.crypto.sharing import interpolate_at_zero
from zkadapt.crypto.threshold import KeyShare, ThresholdPublicKey, combine, deal_threshold_key
from zkadapt.errors import CryptoError

BITS = 256


def _run_recording(params: DkgParams) -> tuple[list[DkgParty], list[set[int]], tuple[int, int]]:
    """Run the parties round by round; record every integer each party's state holds."""
    parties = [DkgParty(params, i) for i in range(1, params.n + 1)]
    seen: list[set[int]] = [set() for _ in parties]
    outboxes = {p.index: p.start() for p in parties}
    p = q = 0
    while True:
        for party, ints in zip(parties, seen, strict=True):
            ints |= _integers(vars(party))
        if parties[0]._chosen[0] and not p:  # the chosen candidate: p = Σ p_i, q = Σ q_i
            p = sum(party._chosen[1] for party in parties)
            q = sum(party._chosen[2] for party in parties)
        nxt = {party.index: party.advance(deliver(outboxes, party.index)) for party in parties}
        if all(out is None for out in nxt.values()):
            return parties, seen, (p, q)
        outboxes = nxt  # type: ignore[assignment]


def _integers(value: Any) -> set[int]:
    if isinstance(value, (int, gmpy2.mpz)) and not isinstance(value, bool):
        return {abs(int(value))}
    if isinstance(value, dict):
        return set().union(*(_integers(v) for v in value.values()), set())
    if isinstance(value, (list, tuple, set)):
        return set().union(*(_integers(v) for v in value), set())
    return set()


@pytest.fixture(scope="module", params=[(3, 2), (5, 3)], ids=["n3-t2", "n5-t3"])
def run(request: pytest.FixtureRequest) -> tuple[list[DkgParty], list[set[int]], tuple[int, int]]:
    n, t = request.param
    return _run_recording(DkgParams(BITS, n, t, b"test/epoch-0"))


def test_all_parties_get_the_same_public_key(run) -> None:
    parties, _, (p, q) = run
    keys = [party.result()[0] for party in parties]
    assert len({k.to_bytes() for k in keys}) == 1
    public = keys[0]
    assert public.mode == "distributed" and public.paillier.bits == BITS
    assert p * q == public.paillier.n and gmpy2.is_prime(p) and gmpy2.is_prime(q)
    assert p % 4 == 3 and q % 4 == 3 and p != q
    assert ThresholdPublicKey.from_bytes(public.to_bytes()) == public


def test_every_t_subset_decrypts_with_the_existing_combine(run) -> None:
    parties, _, _ = run
    public = parties[0].result()[0]
    pub = public.paillier
    c = pub.add(pub.encrypt(1234567), pub.encrypt(int(pub.n) - 7, textbook=True))
    partial = {party.index: party.result()[1].decryption_share(c) for party in parties}
    for subset in itertools.combinations(partial, public.t):
        assert combine(public, {i: partial[i] for i in subset}) == 1234560
    assert combine(public, partial) == 1234560


def test_fewer_than_t_shares_cannot_decrypt(run) -> None:
    parties, _, _ = run
    public = parties[0].result()[0]
    c = public.paillier.encrypt(5)
    few = {p.index: p.result()[1].decryption_share(c) for p in parties[: public.t - 1]}
    with pytest.raises(CryptoError, match=f"need {public.t}"):
        combine(public, few)
    # nor does forcing t − 1 shares through the Lagrange formula give the plaintext
    forced = ThresholdPublicKey(
        public.paillier,
        max(public.t - 1, 1),
        public.n,
        "distributed",
        public.v,
        public.verification_keys,
        public.theta,
    )
    if public.t > 1:
        with pytest.raises(CryptoError):
            assert combine(forced, few) != 5


def test_no_party_ever_holds_p_q_phi_or_d(run) -> None:
    parties, seen, (p, q) = run
    public = parties[0].result()[0]
    n = int(public.paillier.n)
    phi = (p - 1) * (q - 1)
    shares = {party.index: int(party.result()[1]._share) for party in parties}
    delta_d = interpolate_at_zero(
        dict(itertools.islice(shares.items(), public.t)), public.delta, 1 << 10_000
    )
    d = delta_d // public.delta
    assert d % phi == 0 and d % n == public.theta  # d = φβ with θ = d mod N
    for ints in seen:
        assert not {p, q, phi, d, n - phi} & ints


def test_share_proofs_verify_against_distributed_verification_keys(run) -> None:
    parties, _, _ = run
    public = parties[0].result()[0]
    pub = public.paillier
    cts = [pub.encrypt(m) for m in (1, 2, 3)]
    share: KeyShare = parties[1].result()[1]
    ctx = ProofContext("ab" * 32, 1, "bob")
    values, proof = decrypt_and_prove(share, ctx, cts)
    verify_decryption_shares(public, share.index, ctx, cts, values, proof)
    with pytest.raises(CryptoError):
        verify_decryption_shares(public, share.index, ctx, cts, [values[0] + 1, *values[1:]], proof)


def test_too_few_parties_for_the_threshold_are_refused() -> None:
    assert min_parties(2) == 3 and min_parties(3) == 5
    with pytest.raises(ValueError, match="n ≥ 2t − 1"):
        DkgParams(BITS, 4, 3, b"x")


def test_in_process_driver_reports_rounds() -> None:
    parties, rounds = run_in_process(DkgParams(BITS, 3, 1, b"t1"))
    assert rounds >= 8  # 4 for the first batch and its checks, 4 for the key
    public = parties[0].result()[0]
    c = public.paillier.encrypt(99)
    assert combine(public, {1: parties[0].result()[1].decryption_share(c)}) == 99


def test_dealt_keys_keep_theta_one_and_their_encoding() -> None:
    public, _ = deal_threshold_key(512, 2, 3)
    assert public.theta == 1 and b"theta" not in public.to_bytes()
    with pytest.raises(CryptoError, match="θ"):
        ThresholdPublicKey(
            public.paillier, 2, 3, "dealer", public.v, public.verification_keys, theta=5
        )
