"""Funding a session's Hydra head: ``zkadapt head deposit`` and ``zkadapt run``'s deposits.

A hydra 2.x head opens empty; a party can post only once it holds an output in the head
(docs/hydra.md). A deposit asks the party's node to draft the deposit transaction
(``POST /commit``), signs it with the party's payment key (its identity key), submits it on
layer 1 and waits for the node's ``CommitFinalized``
(:meth:`~zkadapt.channel.hydra.HydraChannel.fund`), reporting progress.

Layer 1 is, by :func:`layer1_for`: with a ``[cardano]`` section, the session's chain context
(:class:`~zkadapt.operator.chain_layer1.ChainLayer1`: Ogmios or Blockfrost read the party's
outputs and take the submission); without it, the node
(:class:`~zkadapt.channel.hydra.layer1.NodeLayer1`: a ``cardano-cli query utxo
--output-json`` file, ``--utxo-file`` or ``channel.hydra.layer1_utxo``, and the node's
``POST /cardano-transaction``).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from zkadapt.channel.hydra.view import OPEN
from zkadapt.errors import ChannelError, ConfigError, UsageError
from zkadapt.operator.head import open_head

if TYPE_CHECKING:
    from zkadapt.channel.hydra import HydraChannel
    from zkadapt.channel.hydra.layer1 import Layer1
    from zkadapt.channel.hydra.waits import ProgressSink
    from zkadapt.config import SessionConfig
    from zkadapt.crypto.identity import IdentityKey

#: A progress sink for each party's deposit (``zkadapt.progress.wait_progress``).
SinkFor = Callable[[str], "ProgressSink | None"]


def deposit_funds(
    config: SessionConfig,
    party: str,
    identity: IdentityKey,
    *,
    lovelace: int,
    utxo_file: Path | None,
    timeout: float | None = None,
    progress: ProgressSink | None = None,
) -> str:
    """Deposit ``lovelace`` of ``party``'s layer-1 funds into the session's open head.

    Args:
        config: a session whose channel is ``hydra``.
        party: whose node to ask and whose funds to move.
        identity: ``party``'s key (its payment key: it signs the deposit).
        lovelace: how much to deposit (the node returns the rest of the output as change).
        utxo_file: ``party``'s layer-1 outputs (cardano-cli's UTxO JSON); None: the
            session's ``channel.hydra.layer1_utxo``. Not used with ``[cardano]``.
        timeout: seconds to wait for ``CommitFinalized``; None derives it from the deposit's
            deadline (docs/hydra.md).
        progress: gets the wait's progress about once a second.

    Returns:
        One line: the deposit and what ``party`` now holds in the head.

    Raises:
        ConfigError: not a hydra session, or ``party`` is not in it.
        UsageError: ``utxo_file`` given for a session with ``[cardano]``.
        HydraNodeError: the node refused the draft, the submission or the deposit.
        ChannelError: the head is not open, no output holds ``lovelace``, or no answer in
            time.
        LayerOneError: ``[cardano]``'s chain context cannot be reached or refused the
            deposit (one line naming the backend and the reason).
    """
    if config.cardano is not None and utxo_file is not None:
        raise UsageError("--utxo-file is not used: the session's [cardano] section reads layer 1")
    with open_head(config, party, identity=identity) as channel:
        _require_open(channel)
        layer1 = layer1_for(config, party, channel, utxo_file)
        tx_id = channel.fund(lovelace, layer1, timeout=timeout, progress=progress)
        held = channel.funds_in_head()
    return (
        f"Deposit: {lovelace:,} lovelace of {party} are in the head (deposit {tx_id}); "
        f"{party} holds {held:,} lovelace there"
    )


def fund_parties(
    config: SessionConfig,
    identities: dict[str, IdentityKey],
    *,
    sink_for: SinkFor | None = None,
) -> list[str]:
    """Deposit ``channel.hydra.deposit_lovelace`` for every party with nothing in the head.

    What ``zkadapt run`` does before it starts the parties. Nothing happens for a session
    on another channel, with ``deposit_lovelace = 0``, or whose head is not open (the
    parties then say so themselves). The deposits run side by side, one per party.

    Args:
        config: the session.
        identities: every party's key.
        sink_for: a progress sink for a party's deposit, by party name.

    Returns:
        One line per deposit made.

    Raises:
        ConfigError: a party must deposit but neither ``[cardano]`` nor
            ``channel.hydra.layer1_utxo`` says where its layer-1 outputs are.
        ChannelError: a deposit failed (the first failure, by party order).
    """
    settings = config.channel.hydra
    if config.channel.backend != "hydra" or settings.deposit_lovelace == 0:
        return []
    with ExitStack() as stack:
        channels = {
            name: stack.enter_context(open_head(config, name, identity=identities[name]))
            for name in config.party_names
        }
        if next(iter(channels.values())).head_status != OPEN:
            return []
        needy = [name for name, channel in channels.items() if channel.funds_in_head() == 0]
        if not needy:
            return []
        unknown = [name for name in needy if settings.utxo_file_for(name) is None]
        if unknown and config.cardano is None:
            raise ConfigError(
                "channel.hydra.layer1_utxo",
                f"no funds in the head to post with ({', '.join(unknown)}) and no layer-1 "
                "outputs to deposit from: add a [cardano] section (docs/hydra.md), or set it "
                "to each party's `cardano-cli query utxo --output-json` file ({party} in the "
                "path), or deposit first with `zkadapt head deposit SESSION --party NAME "
                "--lovelace N`",
            )
        return _deposit_all(channels, needy, settings.deposit_lovelace, config, sink_for)


def fund_newcomer(
    config: SessionConfig,
    name: str,
    identity: IdentityKey,
    api: str,
    *,
    progress: ProgressSink | None = None,
) -> str | None:
    """A newcomer's funds in the head (``zkadapt join`` on Hydra, docs/membership.md): it
    is no head party, so it posts through a member's node (``api``) from an output of its
    own in the head; with nothing there it deposits ``channel.hydra.deposit_lovelace`` of
    its layer-1 funds through that node, as ``zkadapt run`` does for the parties.

    Returns:
        One line about the deposit made, or None when it already holds funds in the head.

    Raises:
        ConfigError: it holds nothing in the head and the session deposits nothing
            (``deposit_lovelace = 0``) or says nothing of where its layer-1 outputs are.
        ChannelError, HydraNodeError, LayerOneError: the head is not open or the deposit
            failed (one line).
    """
    with open_head(config, name, identity=identity, via=api) as channel:
        _require_open(channel)
        if channel.funds_in_head() > 0:
            return None
        lovelace = config.channel.hydra.deposit_lovelace
        if lovelace == 0 or (config.cardano is None and not config.channel.hydra.layer1_utxo):
            raise ConfigError(
                "channel.hydra.deposit_lovelace",
                f"{name} holds nothing in the head to post with, and the session deposits "
                "nothing for it: set channel.hydra.deposit_lovelace and [cardano], or have a "
                "member pay it an output in the head",
            )
        layer1 = layer1_for(config, name, channel, None)
        tx_id = channel.fund(lovelace, layer1, progress=progress)
    return f"{name}: deposited {lovelace:,} lovelace into the head (deposit {tx_id[:12]})"


def _deposit_all(
    channels: dict[str, HydraChannel],
    needy: list[str],
    lovelace: int,
    config: SessionConfig,
    sink_for: SinkFor | None,
) -> list[str]:
    """One deposit per party in ``needy``, side by side; the first failure is raised."""

    def deposit(name: str) -> str:
        channel = channels[name]
        layer1 = layer1_for(config, name, channel, None)
        progress = sink_for(name) if sink_for is not None else None
        tx_id = channel.fund(lovelace, layer1, progress=progress)
        return f"{name}: deposited {lovelace:,} lovelace into the head (deposit {tx_id[:12]})"

    with ThreadPoolExecutor(len(needy), thread_name_prefix="deposit") as pool:
        futures = {name: pool.submit(deposit, name) for name in needy}
    lines = []
    for name in needy:
        lines.append(futures[name].result())  # raises the deposit's own error
    return lines


def layer1_for(
    config: SessionConfig, party: str, channel: HydraChannel, utxo_file: Path | None
) -> Layer1:
    """Layer 1 for ``party``'s deposit: the ``[cardano]`` chain context when the session has
    one, else the node with a cardano-cli UTxO file (``utxo_file``, or
    ``channel.hydra.layer1_utxo``)."""
    if config.cardano is not None:
        from zkadapt.operator.chain_layer1 import ChainLayer1

        return ChainLayer1.from_settings(config.cardano, party)
    if utxo_file is None:
        configured = config.channel.hydra.utxo_file_for(party)
        utxo_file = Path(configured) if configured else None
    return channel.node_layer1(utxo_file)


def _require_open(channel: HydraChannel) -> None:
    if channel.head_status != OPEN:
        raise ChannelError(
            f"{channel.api}: the head is {channel.head_status}, not Open; a deposit goes into "
            "an open head (`zkadapt head init` opens one)"
        )
