"""What a deposit needs from Cardano layer 1: a party's spendable outputs, and submission.

:class:`Layer1` is the small interface a deposit uses (docs/hydra.md, "Funding the head").
The one implementation here, :class:`NodeLayer1`, needs nothing but the hydra-node:

* it submits through the node's ``POST /cardano-transaction`` (api.yaml: "Cardano
  transaction to be submitted to the L1 network"; the node passes it to its cardano-node);
* it knows a party's outputs from a UTxO file in the form ``cardano-cli query utxo
  --address ADDR --output-json`` writes (the api.yaml ``UTxO`` form, which ``POST /commit``
  takes as it is), as hydra's own "commit funds to an open head" guide does.

A backend that queries layer 1 itself (Ogmios or Blockfrost through PyCardano's chain
context) is the next step of issue 19; it will implement the same two methods.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from zkadapt.channel.hydra.tx import owned_by
from zkadapt.channel.hydra.wire import HydraProtocolError, TxEnvelope, UtxoOut, parse_utxo
from zkadapt.errors import ChannelError

if TYPE_CHECKING:
    from zkadapt.channel.hydra.feed import HydraHttp
    from zkadapt.crypto.identity import PublicIdentity


class Layer1(Protocol):
    """Cardano layer 1, as far as a deposit needs it."""

    def utxo_at(self, address: str) -> dict[str, Any]:
        """The unspent outputs at ``address`` (api.yaml ``UTxO``).

        Raises:
            ChannelError: they cannot be known.
        """
        ...

    def submit(self, tx: TxEnvelope) -> None:
        """Submit a signed transaction to layer 1.

        Raises:
            ChannelError: layer 1 (or the node relaying it) refused it; one line.
        """
        ...


class NodeLayer1:
    """Layer 1 through the hydra-node, with a party's outputs from a cardano-cli UTxO file.

    Args:
        http: the node's HTTP endpoints.
        utxo_file: a ``cardano-cli query utxo --output-json`` file holding the party's
            outputs; None when no file is known (:meth:`utxo_at` then says how to get one).
    """

    def __init__(self, http: HydraHttp, utxo_file: Path | None = None) -> None:
        self._http = http
        self.utxo_file = utxo_file

    def utxo_at(self, address: str) -> dict[str, Any]:
        """The outputs of the UTxO file that sit at ``address``.

        Raises:
            ChannelError: no file was given, or it is unreadable or not a UTxO object.
        """
        if self.utxo_file is None:
            raise ChannelError(
                f"no layer-1 UTxO known for {address}: write it with `cardano-cli query utxo "
                f"--address {address} --output-json --out-file FILE` and pass that file "
                "(--utxo-file, or channel.hydra.layer1_utxo)"
            )
        utxo = read_utxo_file(self.utxo_file)
        return {ref: out for ref, out in utxo.items() if out.get("address") == address}

    def submit(self, tx: TxEnvelope) -> None:
        """``POST /cardano-transaction`` (the node's refusal is a :class:`HydraNodeError`)."""
        self._http.post("/cardano-transaction", tx.to_json())

    def __repr__(self) -> str:
        return f"NodeLayer1({self._http.base!r}, utxo_file={self.utxo_file})"


def read_utxo_file(path: Path) -> dict[str, Any]:
    """A ``cardano-cli query utxo --output-json`` file (api.yaml ``UTxO``).

    Raises:
        ChannelError: the file is unreadable, not JSON, or not a UTxO object.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        parse_utxo(raw)  # checks every TxIn and TxOut
    except OSError as exc:
        raise ChannelError(f"{path}: cannot read the UTxO file ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ChannelError(f"{path}: not JSON (expected cardano-cli's UTxO JSON)") from None
    except HydraProtocolError as exc:
        raise ChannelError(f"{path}: not a UTxO file: {exc}") from None
    return dict(raw)


def choose_deposit(
    utxo: dict[str, Any], owner: PublicIdentity, lovelace: int
) -> tuple[str, dict[str, Any]]:
    """The output to deposit ``lovelace`` from: ``(ref, txout)`` in api.yaml form.

    Only plain outputs at ``owner``'s key address count; outputs without native assets come
    first, then the smallest that holds enough (the node returns the rest as change).

    Raises:
        ValueError: ``lovelace`` is not positive.
        ChannelError: no output holds ``lovelace``.
    """
    if lovelace <= 0:
        raise ValueError(f"lovelace must be positive, got {lovelace}")
    mine: list[UtxoOut] = owned_by(owner, parse_utxo(utxo))
    enough = [u for u in mine if u.lovelace >= lovelace]
    if not enough:
        held = sum(u.lovelace for u in mine)
        raise ChannelError(
            f"no layer-1 output of this party holds {lovelace:,} lovelace "
            f"({len(mine)} outputs, {held:,} lovelace in all)"
        )
    best = min(enough, key=lambda u: (bool(u.assets), u.lovelace, u.tx_id, u.index))
    return best.ref, utxo[best.ref]
