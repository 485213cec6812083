"""Who closed a hydra head, from public layer-1 data (issue 19; docs/escrow.md, "A premature
close").

``HeadIsClosed`` names nobody; the only public record of the closer is the close
transaction's vkey witness: hydra signs its layer-1 transactions with the node's
``--cardano-signing-key``. **Requirement**: each party's hydra-node runs with the party's
payment key as that Cardano key, so that the key hashes the session file already names (every
lock's datum holds them) name the closer. A node run with another key closes unattributed.

The close is found by Ogmios chain-sync from a point before it (:meth:`OgmiosContext.follow
<zkadapt.cardano.ogmios.OgmiosContext.follow>`, from the tip a party read before the session
started): the first transaction with an output whose inline datum is hydra's ``Closed`` head
state (constructor 2 of ``Hydra.Contract.HeadState.State``: ``Initial``, ``Open``,
``Closed``, ``Final``) and that belongs to this head: it holds a token of the head id's
policy (on a real chain, the head's state thread token, which only the head's minting policy
mints) or its datum names the head id as a byte string (the hydra double's close; it mints no
tokens). A later ``Contest`` also outputs ``Closed``, which is why the first one counts.

Everything read is hostile: the scan is bounded in blocks and seconds, the datum in size
(:data:`~zkadapt.cardano.chain_sync_wire.MAX_DATUM_HEX`) and depth, and a transaction whose
signatories name no party, or several, attributes nobody.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from zkadapt.cardano.chain_sync_wire import ChainOutput, ChainTx
from zkadapt.cardano.errors import LayerOneError

#: Constructor index of hydra's ``Closed`` head state.
CLOSED = 2
#: Default bounds of one scan.
MAX_BLOCKS = 20_000
BUDGET_S = 120.0
#: How deep into a datum a head id is looked for.
_DEPTH = 3


class CloseNotFound(LayerOneError):
    """No close of the head within the scan's bounds."""


@dataclass(frozen=True)
class HeadClose:
    """The head's close transaction and who signed it.

    Attributes:
        tx_id: the close transaction.
        slot: the slot of its block.
        signers: the blake2b-224 hashes of its vkey witnesses' keys.
        closer: the one party whose payment key hash is among ``signers`` (None: no party's,
            or several: not attributed).
    """

    tx_id: str
    slot: int
    signers: tuple[bytes, ...]
    closer: str | None


def _constr(data: Any) -> tuple[int, list[Any]] | None:
    """(constructor, fields) of a decoded Plutus ``Constr``; None for anything else."""
    from cbor2 import CBORTag

    if not isinstance(data, CBORTag) or not isinstance(data.value, list):
        return None
    if 121 <= data.tag <= 127:
        return data.tag - 121, data.value
    if 1280 <= data.tag <= 1400:
        return data.tag - 1280 + 7, data.value
    if data.tag == 102 and len(data.value) == 2 and isinstance(data.value[0], int):
        fields = data.value[1]
        return (data.value[0], fields) if isinstance(fields, list) else None
    return None


def _names(data: Any, wanted: bytes, depth: int) -> bool:
    """Whether ``wanted`` is a byte string in ``data`` within ``depth`` levels."""
    if isinstance(data, bytes):
        return data == wanted
    if depth <= 0:
        return False
    found = _constr(data)
    items = found[1] if found is not None else data if isinstance(data, list) else []
    return any(_names(item, wanted, depth - 1) for item in items[:64])


def closes_head(output: ChainOutput, head_id: str) -> bool:
    """Whether ``output`` is head ``head_id``'s ``Closed`` state (see the module docstring)."""
    import cbor2

    if output.datum is None:
        return False
    try:
        data = cbor2.loads(output.datum)
    except Exception:  # hostile CBOR: cbor2 raises many kinds (decode, recursion, value)
        return False
    found = _constr(data)
    if found is None or found[0] != CLOSED:
        return False
    if head_id in output.policies:
        return True
    try:
        wanted = bytes.fromhex(head_id)
    except ValueError:
        return False
    return bool(wanted) and _names(data, wanted, _DEPTH)


def key_hash(vkey: bytes) -> bytes:
    """A verification key's hash (blake2b-224), as a payment credential names it."""
    return hashlib.blake2b(vkey, digest_size=28).digest()


def attribute(tx: ChainTx, parties: Mapping[str, bytes]) -> tuple[tuple[bytes, ...], str | None]:
    """(signers' key hashes, the one party among them or None)."""
    signers = tuple(key_hash(k) for k in tx.signatories)
    named = sorted({p for p, h in parties.items() if h in signers})
    return signers, named[0] if len(named) == 1 else None


def close_in(blocks: Iterable[Any], head_id: str, parties: Mapping[str, bytes]) -> HeadClose:
    """The first close of ``head_id`` in ``blocks`` (:class:`ChainBlock`, oldest first).

    Raises:
        CloseNotFound: none there.
    """
    for block in blocks:
        for tx in block.transactions:
            if any(closes_head(o, head_id) for o in tx.outputs):
                signers, closer = attribute(tx, parties)
                return HeadClose(tx.id, block.slot, signers, closer)
    raise CloseNotFound("layer 1", f"no close of head {head_id[:16]} in the blocks read")


def find_close(
    chain: Any,
    since: dict[str, Any] | str,
    head_id: str,
    parties: Mapping[str, bytes],
    *,
    max_blocks: int = MAX_BLOCKS,
    budget_s: float = BUDGET_S,
) -> HeadClose:
    """The close of ``head_id`` after ``since`` on ``chain`` (an Ogmios context), attributed
    by ``parties`` (name -> payment key hash).

    Raises:
        CloseNotFound: no close between ``since`` and the tip within the bounds, or the
            chain context has no chain-sync (Blockfrost).
        LayerOneError: the chain cannot be read.
    """
    follow = getattr(chain, "follow", None)
    if follow is None:
        raise CloseNotFound(
            getattr(chain, "backend", "layer 1"), "this chain access has no chain-sync"
        )
    return close_in(follow(since, max_blocks=max_blocks, budget_s=budget_s), head_id, parties)
