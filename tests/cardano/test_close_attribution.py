"""Who closed a hydra head, from public layer-1 data (issue 19; docs/escrow.md, "A premature
close"): Ogmios chain-sync over the Ogmios double (every message checked against the v6
schema), read by :mod:`zkadapt.cardano.chain_sync_wire`, judged by
:mod:`zkadapt.cardano.head_close`."""

from __future__ import annotations

import cbor2
import pytest
from pycardano import PaymentSigningKey

from tests.hydra_double.head import Head
from tests.layer1_double.hydra import HydraLayer1
from tests.layer1_double.ledger import Ledger
from tests.ogmios_double.chain_sync import GENESIS
from tests.ogmios_double.server import OgmiosDouble
from zkadapt.cardano.chain_sync_wire import ChainOutput, block
from zkadapt.cardano.errors import ChainRefused
from zkadapt.cardano.head_close import CloseNotFound, closes_head, find_close, key_hash
from zkadapt.cardano.ogmios import OgmiosContext
from zkadapt.cardano.ogmios_wire import WireError

NAMES = ("alice", "bob", "carol")


def _hashes(keys: dict[str, PaymentSigningKey]) -> dict[str, bytes]:
    return {n: key_hash(bytes(k.to_verification_key().payload)) for n, k in keys.items()}


def _setup(ledger: Ledger) -> tuple[HydraLayer1, Head, dict[str, PaymentSigningKey]]:
    keys = {n: PaymentSigningKey.generate() for n in NAMES}
    layer1 = HydraLayer1(ledger, node_keys=keys)
    head = Head(list(NAMES), {}, layer1=layer1)
    head.on_input("alice", {"tag": "Init"})
    layer1.head_output = ledger.fund(layer1.head_address, 15_000_000)
    return layer1, head, keys


def test_the_close_is_found_by_chain_sync_and_names_the_closing_party() -> None:
    ledger = Ledger("preprod")
    since = dict(ledger.tip())  # what a party reads before the session: before the close
    layer1, head, keys = _setup(ledger)
    # a decoy first: another head on the same (shared) script address, closed by alice
    other = HydraLayer1(ledger, node_keys={"alice": keys["alice"]})
    other.head_output = ledger.fund(other.head_address, 2_000_000)
    other.close("alice", "ab" * 16)
    head.on_input("carol", {"tag": "Close"})
    assert head.head_id is not None
    with OgmiosDouble(ledger) as ogmios:
        chain = OgmiosContext(ogmios.url, timeout_s=10)
        close = find_close(chain, since, head.head_id, _hashes(keys), max_blocks=100)
        # bounded: one block read is the decoy only
        with pytest.raises(CloseNotFound, match="no close of head"):
            find_close(chain, since, head.head_id, _hashes(keys), max_blocks=1)
        # from the tip after the close there is nothing more to read
        with pytest.raises(CloseNotFound):
            find_close(chain, dict(ledger.tip()), head.head_id, _hashes(keys))
        # a point that is not on the chain is refused, one line
        with pytest.raises(ChainRefused, match="findIntersection refused"):
            find_close(chain, {"slot": 1, "id": "cd" * 32}, head.head_id, _hashes(keys))
        assert ogmios.violations == []
        assert {"findIntersection", "nextBlock"} <= set(ogmios.requests)

    assert close.tx_id == layer1.closes[0] and close.closer == "carol"
    assert close.signers == (_hashes(keys)["carol"],)
    assert since["id"] == GENESIS


def test_a_node_key_that_is_no_partys_payment_key_attributes_nobody() -> None:
    ledger = Ledger("preprod")
    since = dict(ledger.tip())
    layer1, head, keys = _setup(ledger)
    layer1.node_keys["bob"] = PaymentSigningKey.generate()  # bob's node runs another key
    head.on_input("bob", {"tag": "Close"})
    with OgmiosDouble(ledger) as ogmios:
        close = find_close(OgmiosContext(ogmios.url), since, str(head.head_id), _hashes(keys))
        assert ogmios.violations == []
    assert close.tx_id == layer1.closes[0] and close.closer is None and len(close.signers) == 1


def test_hostile_blocks_and_datums_are_refused_or_ignored() -> None:
    with pytest.raises(WireError):
        block({"id": "00" * 32, "height": 1, "type": "praos", "transactions": "x"})
    with pytest.raises(WireError):
        block({"id": "zz", "height": 1})
    bad_signatory = {"id": "00" * 32, "spends": "inputs", "inputs": [], "signatories": [{}]}
    with pytest.raises(WireError):
        block({"id": "00" * 32, "height": 1, "type": "praos", "transactions": [bad_signatory]})
    head_id = "ab" * 16
    closed = cbor2.dumps(cbor2.CBORTag(123, [cbor2.CBORTag(121, [bytes.fromhex(head_id)])]))
    opened = cbor2.dumps(cbor2.CBORTag(122, [cbor2.CBORTag(121, [bytes.fromhex(head_id)])]))
    assert closes_head(ChainOutput("addr", closed, frozenset()), head_id)
    assert not closes_head(ChainOutput("addr", opened, frozenset()), head_id)
    assert not closes_head(ChainOutput("addr", closed, frozenset()), "cd" * 16)
    assert not closes_head(ChainOutput("addr", b"\xff\xff", frozenset()), head_id)
    deep = b"\x81" * 10_000 + b"\x00"  # a list nested 10000 deep
    assert not closes_head(ChainOutput("addr", deep, frozenset()), head_id)
    token = cbor2.dumps(cbor2.CBORTag(123, []))  # a real head: its state token's policy
    assert closes_head(ChainOutput("addr", token, frozenset({"ef" * 28})), "ef" * 28)
