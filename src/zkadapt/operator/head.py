"""Operator actions on a session's Hydra head: one code path for the CLI and the dashboard.

``zkadapt head init|close|fanout SESSION.toml`` and the dashboard's buttons (behind
``--allow-actions``) both call :func:`perform_action` on a
:class:`~zkadapt.channel.hydra.HydraChannel`, which sends the client input over the node's
WebSocket and waits for the node's answer (:class:`~zkadapt.channel.hydra.head.HeadLifecycle`).
Which actions make sense depends on the head's status (api.yaml ``HeadStatus``, hydra 2.x):

======================  ==========  =====================================================
status                  action      what happens
======================  ==========  =====================================================
``Idle`` (no head yet)  ``init``    ``Init`` -> ``HeadIsOpen`` (hydra 2.x opens at once)
``Open``                ``close``   ``Close`` -> ``HeadIsClosed``, contestation period
``FanoutPossible``      ``fanout``  ``Fanout`` -> ``HeadIsFinalized``, UTxO on layer 1
======================  ==========  =====================================================

A closed head offers nothing until ``ReadyToFanout``; a finalized head is over (its session's
channel is that head: a new head would be a new channel). Whatever a caller offers, the node
decides: an input in the wrong state comes back as the node's ``CommandFailed`` (and a layer-1
transaction it could not post as ``PostTxOnChainFailed``, an input it will not take while out
of sync as ``RejectedInputBecauseUnsynced``), raised at once as a one-line
:class:`~zkadapt.channel.hydra.wire.HydraNodeError`. How long each action waits comes from the
node's parameters (:mod:`zkadapt.channel.hydra.waits`) unless the caller gives a timeout.
Deposits are :mod:`zkadapt.operator.funding`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zkadapt.channel.hydra.view import OPEN
from zkadapt.errors import ChannelError, ConfigError

if TYPE_CHECKING:
    from zkadapt.channel.hydra import HydraChannel
    from zkadapt.channel.hydra.waits import ProgressSink
    from zkadapt.config import SessionConfig
    from zkadapt.crypto.identity import IdentityKey

#: Why a session on the local ledger has no operator actions.
NO_HEAD = "this session uses the local ledger: there is no Hydra head to operate"


@dataclass(frozen=True)
class HeadAction:
    """An operator action on a head.

    Attributes:
        name: the CLI subcommand and the dashboard's action id (``init``, ...).
        command: the hydra-node client input it sends (api.yaml ``ClientInput`` tag).
        label: a button's text (names the command, so a confirmation names it exactly).
        status: the head status in which it is offered.
        effect: what it does, in one line (shown when asking for confirmation).
    """

    name: str
    command: str
    label: str
    status: str
    effect: str


HEAD_ACTIONS: dict[str, HeadAction] = {
    a.name: a
    for a in (
        HeadAction(
            "init",
            "Init",
            "Open the head (Init)",
            "Idle",
            "opens a new Hydra head with every party of the session; the session's channel "
            "will be this head",
        ),
        HeadAction(
            "close",
            "Close",
            "Close the head (Close)",
            OPEN,
            "closes the head: nothing more can be posted; after the contestation period its "
            "UTxO can be fanned out to layer 1",
        ),
        HeadAction(
            "fanout",
            "Fanout",
            "Fan out the head (Fanout)",
            "FanoutPossible",
            "distributes the closed head's UTxO on layer 1 and finalizes the head",
        ),
    )
}


def open_head(
    config: SessionConfig,
    party: str | None = None,
    *,
    identity: IdentityKey | None = None,
    record: Path | None = None,
    via: str | None = None,
) -> HydraChannel:
    """A client of ``party``'s hydra-node (default: the first party's, as observers).

    Read-only unless ``identity`` (``party``'s key) is given: the head commands need none,
    since the node signs the head's layer-1 transactions with its own keys. With
    ``record``, what the node reports is added to the session's copy of the channel there
    (:mod:`zkadapt.channel.hydra.record`), so the close and the fanout are kept with it.
    With ``via`` (a member's node API), ``party`` is a newcomer no session file lists
    (docs/membership.md): it talks to that node and its envelopes are carried as an
    outsider's.

    Raises:
        ConfigError: the session's channel is not ``hydra``, or ``party`` is not in it.
        ChannelError: the node cannot be reached.
    """
    from zkadapt.assembly import keyring_of, outsider_policy
    from zkadapt.channel.hydra import HydraChannel

    if config.channel.backend != "hydra":
        raise ConfigError("channel.backend", NO_HEAD)
    if party is not None and party not in config.party_names and via is None:
        raise ConfigError(
            "--party", f"{party!r} is not a party of this session ({', '.join(config.party_names)})"
        )
    settings = config.channel.hydra
    return HydraChannel(
        keyring_of(config),
        api=via or settings.api_for(party or config.party_names[0]),
        identity=identity,
        head_id=settings.head_id,
        network=settings.network,
        connect_timeout_s=settings.connect_timeout_s,
        confirm_timeout_s=settings.confirm_timeout_s,
        layer1_timeout_s=settings.layer1_timeout_s,
        record=record,
        outsiders=outsider_policy(config) if via is not None else None,
        name=party if via is not None else None,
    )


def head_summary(channel: HydraChannel) -> str:
    """One line: the node, the head's status and id, and what can be done with it now."""
    offered = ", ".join(a.name for a in offered_actions(channel.head_status, channel.head_id))
    head = f"head {channel.head_id}" if channel.head_id else "no head yet"
    deadline = channel.contestation_deadline if channel.head_status == "Closed" else None
    until = f"; contestation until {deadline}" if deadline else ""
    return (
        f"node {channel.api}: {head}, status {channel.head_status}{until}; "
        f"actions: {offered or 'none'}"
    )


def head_action(name: str) -> HeadAction:
    """The action called ``name``.

    Raises:
        ValueError: no such action (the message lists the valid names).
    """
    action = HEAD_ACTIONS.get(name)
    if action is None:
        raise ValueError(f"unknown head action {name!r}; valid: {', '.join(HEAD_ACTIONS)}")
    return action


def offered_actions(status: str, head_id: str | None) -> tuple[HeadAction, ...]:
    """The actions that make sense for a head in ``status`` (``head_id``: the followed head).

    ``init`` is offered only while no head is followed: once this client's head is
    finalized, the session's channel is over.
    """
    return tuple(
        a
        for a in HEAD_ACTIONS.values()
        if a.status == status and (a.name != "init" or head_id is None)
    )


def perform_action(
    channel: HydraChannel,
    name: str,
    *,
    timeout: float | None = None,
    progress: ProgressSink | None = None,
) -> str:
    """Run action ``name`` through ``channel`` and wait for the node; returns one line.

    Args:
        channel: a client of one party's hydra-node (read-only is enough: the node signs
            the head's layer-1 transactions with its own keys).
        name: ``init``, ``close`` or ``fanout``.
        timeout: seconds to wait for each answer of the node (``fanout`` of a closed head
            also waits this long for the end of the contestation period); None derives it
            from the node's parameters and ``channel.hydra.layer1_timeout_s``.
        progress: gets the wait's progress about once a second.

    Raises:
        ValueError: ``name`` is not an action.
        HydraNodeError: the node refused or failed the action (one line, its reason).
        ChannelError: no answer in time, or the node has not said yet in which state its
            head is.
    """
    action = head_action(name)
    if channel.head_status == "Unknown":
        raise ChannelError(f"{channel.api}: the node has not reported its head status yet")
    if action.name == "init":
        head = channel.init_head(timeout, progress)
        return f"Init: head {head} is open"
    if action.name == "close":
        number = channel.close_head(timeout, progress)
        deadline = channel.contestation_deadline or "?"
        return (
            f"Close: head {_short(channel.head_id)} closed at snapshot {number}; "
            f"contestation until {deadline}, then fanout"
        )
    utxo = channel.fanout(timeout, progress)
    lovelace = sum(
        int(o.get("value", {}).get("lovelace", 0)) for o in utxo.values() if isinstance(o, dict)
    )
    return (
        f"Fanout: head {_short(channel.head_id)} finalized; {len(utxo)} outputs, "
        f"{lovelace:,} lovelace back on layer 1"
    )


def _short(head_id: str | None) -> str:
    return head_id[:12] if head_id else "?"
