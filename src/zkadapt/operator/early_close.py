"""A party whose session's hydra head is closed before the last round is done (issue 19,
"a premature close"; docs/escrow.md, "A premature close").

A closed head takes no message, so the round protocol's next post fails with a
:class:`~zkadapt.errors.ChannelError`. Restarting cannot help (the head stays closed), so
instead of that channel error the party stops with :class:`HeadClosedEarly`: one line that
says what happened, how far the session got, and what became of the escrow, with exit
code 5 (the session ended early for this party): ``zkadapt run`` restarts nobody after it
and stops nobody either, since every party meets the closed head and settles its own part
of the escrow (stopping the others at the first such exit cut their settlement short).

Only a head that the party's own node reports closed (or fanned out) counts: a post that
fails on an open head stays the channel error it is.

With the escrow on layer 1, the closer is then attributed from the close transaction's
signatories (:mod:`zkadapt.cardano.head_close`) and slashed with votes that travel out of
band, as ballots in the store (:mod:`zkadapt.escrow.ballot`): :func:`closer_votes` keeps of a
ballot only what this party's own attribution backs, :func:`read_ballots` reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from zkadapt.channel.base import SignedEnvelope
from zkadapt.errors import ChannelError, StorageError
from zkadapt.escrow.ballot import MAX_BALLOT_BYTES, BallotInvalid, ballot_key, read_ballot
from zkadapt.escrow.messages import KillVote, MalformedEscrowMessage, ReleaseVote, read_payload

#: api.yaml ``HeadStatus`` values of a head that takes no more messages.
CLOSED_STATUSES = frozenset({"Closed", "FanoutPossible", "Final"})


class HeadClosedEarly(ChannelError):
    """The session's head was closed before its last round was done (exit code 5: a
    restart cannot reopen it, and the other parties wrap up their own escrow)."""

    exit_code = 5


def head_closed(channel: Any) -> bool:
    """Whether ``channel`` is a hydra channel whose node reports the head closed.

    A channel without a head (the local ledger) is never closed this way.
    """
    try:
        return str(getattr(channel, "head_status", "")) in CLOSED_STATUSES
    except ChannelError:  # the node cannot be asked: nothing shows the head closed
        return False


def closed_early_line(party: str, done: int, rounds: int, escrow: str = "") -> str:
    """``alice: the head was closed before round 2 of 3 was done (...)``.

    Args:
        party: this party.
        done: the last round this party applied (0: none).
        rounds: the session's rounds.
        escrow: what the escrow did about it (empty without an escrow).
    """
    line = (
        f"{party}: the session's hydra head was closed before round {done + 1} of {rounds} "
        "was done: the session stopped (a closed head takes no message; restarting cannot "
        "reopen it)"
    )
    return f"{line}; escrow: {escrow}" if escrow else line


# -- slashing the closer (docs/escrow.md, "A premature close") ----------------------------------


def closer_votes(
    envelopes: Iterable[SignedEnvelope], closer: str, round_: int, remaining: Iterable[str]
) -> list[SignedEnvelope]:
    """The votes of a ballot that this party's own attribution backs: a ``closed-early``
    kill vote against ``closer`` for ``round_`` (the round cut short) and release votes for
    the ``remaining`` parties. Anything else (another victim, another round, a silent-vote,
    a release of the closer) is dropped: a ballot cannot slash anyone the chain does not name.
    """
    wanted = set(remaining)
    kept = []
    for envelope in envelopes:
        try:
            message = read_payload(envelope.payload)
        except MalformedEscrowMessage:
            continue
        if isinstance(message, KillVote):
            ok = (message.target, message.round, message.reason) == (
                closer,
                round_,
                "closed-early",
            )
        else:
            ok = isinstance(message, ReleaseVote) and message.target in wanted
        if ok:
            kept.append(envelope)
    return kept


def read_ballots(
    store: Any,
    keyring: Any,
    session: str,
    voters: Iterable[str],
    say: Callable[[str], None],
) -> dict[str, list[SignedEnvelope]]:
    """Each voter's ballot from its fixed key in its store location (bounded reads; a
    missing one is left out, an invalid one named once and left out).

    Raises:
        StorageError: the store cannot read another party's object by key (only ``local``
            can yet).
    """
    get_key = getattr(store, "get_key", None)
    if get_key is None:
        raise StorageError(repr(store), "cannot read another party's ballot by its key")
    found: dict[str, list[SignedEnvelope]] = {}
    for voter in voters:
        uri = store.location_of(voter) + ballot_key(session, voter)
        try:
            data = get_key(uri, MAX_BALLOT_BYTES)
        except StorageError:
            continue  # not written yet
        try:
            found[voter] = read_ballot(data, keyring, session, voter)
        except BallotInvalid as exc:
            say(f"ignored {voter}'s ballot: {exc}")
            found[voter] = []
    return found
