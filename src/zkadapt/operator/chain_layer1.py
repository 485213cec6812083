"""Layer 1 for head deposits through a PyCardano chain context (``[cardano]``, issue 19).

:class:`ChainLayer1` implements :class:`~zkadapt.channel.hydra.layer1.Layer1` (what a
deposit needs: a party's unspent outputs, and submission) on a chain context from
:func:`zkadapt.cardano.chain.chain_context`: Ogmios v6 or Blockfrost. It lives in the
operator layer because it joins two leaves, the channel (which knows the node's api.yaml
``UTxO`` form) and the cardano package (which knows layer 1), neither importing the other.

With it, ``zkadapt head deposit`` and ``zkadapt run``'s deposits read the party's outputs
from layer 1 itself (no cardano-cli UTxO file) and submit the signed deposit there (not
through the node's ``POST /cardano-transaction``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zkadapt.cardano.errors import LayerOneError

if TYPE_CHECKING:
    from zkadapt.cardano.settings import CardanoConfig
    from zkadapt.channel.hydra.wire import TxEnvelope


def txout_json(output: Any) -> dict[str, Any]:
    """A PyCardano output in api.yaml ``TxOut`` form (what ``POST /commit`` takes).

    Plain outputs (the only ones a deposit picks) carry nulls for datum and script; an
    output with a datum or script carries what marks it as not plain.
    """
    amount = output.amount
    coin = amount if isinstance(amount, int) else amount.coin
    value: dict[str, Any] = {"lovelace": coin}
    if not isinstance(amount, int):
        for policy, assets in (amount.multi_asset or {}).items():
            for name, quantity in assets.items():
                value.setdefault(bytes(policy.payload).hex(), {})[bytes(name.payload).hex()] = int(
                    quantity
                )
    datum_hash = bytes(output.datum_hash.payload).hex() if output.datum_hash is not None else None
    inline = None
    if output.datum is not None:
        import cbor2

        from zkadapt.escrow.tx_context import as_data

        inline = cbor2.dumps(as_data(output.datum)).hex()
    return {
        "address": output.address.encode(),
        "value": value,
        "datum": None,
        "datumhash": datum_hash,
        "inlineDatum": None,
        "inlineDatumRaw": inline,
        "referenceScript": {"scriptLanguage": "PlutusScriptLanguage"}
        if output.script is not None
        else None,
    }


class ChainLayer1:
    """:class:`~zkadapt.channel.hydra.layer1.Layer1` on a PyCardano chain context.

    Args:
        context: a chain context (``backend`` names it in messages).
    """

    def __init__(self, context: Any) -> None:
        self.context = context
        self.backend = str(getattr(context, "backend", "layer 1"))

    @classmethod
    def from_settings(cls, settings: CardanoConfig, party: str | None) -> ChainLayer1:
        """The chain context of ``[cardano]`` for ``party``."""
        from zkadapt.cardano.chain import chain_context

        return cls(chain_context(settings, party))

    def utxo_at(self, address: str) -> dict[str, Any]:
        """The unspent outputs at ``address`` (api.yaml ``UTxO``).

        Raises:
            LayerOneError: layer 1 cannot be asked (one line naming the backend).
        """
        utxos = self.context.utxos(address)
        return {f"{u.input.transaction_id}#{u.input.index}": txout_json(u.output) for u in utxos}

    def submit(self, tx: TxEnvelope) -> None:
        """Submit the signed transaction on layer 1.

        Raises:
            LayerOneError: refused (``TransactionRejected`` with the node's reason) or
                unreachable.
        """
        submitted = self.context.submit_tx_cbor(bytes.fromhex(tx.cbor_hex))
        if isinstance(submitted, str) and tx.tx_id is not None and submitted != tx.tx_id:
            raise LayerOneError(
                self.backend, f"submitted {tx.tx_id[:16]} but layer 1 answered {submitted[:16]}"
            )

    def __repr__(self) -> str:
        return f"ChainLayer1({self.backend!r})"
