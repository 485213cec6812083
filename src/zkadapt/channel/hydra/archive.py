"""Reading a finished session's Hydra channel from persisted copies (docs/hydra.md).

:func:`open_hydra_reader` is how every reader without a key (``zkadapt audit``, the report,
the dashboard, ``zkadapt escrow status``) opens a ``hydra`` channel. It asks the node first,
following the head the copies name (or ``channel.hydra.head_id``): while the node still knows
that head, its history is the channel. When it does not (the head was fanned out and the
node's state is gone, or the node is not running any more), the channel is read from the
persisted copies (:mod:`zkadapt.channel.hydra.record`) as an :class:`ArchivedChannel`, after
:func:`~zkadapt.channel.hydra.replay.check_copy` has checked them, with the head's fanout
UTxO from the node when it still shows it.

Several copies of one head (each party's and ``zkadapt run``'s) must agree: the longest is
read, and every other must be a prefix of it, transaction by transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zkadapt.channel.base import Entry, Receipt, SignedEnvelope
from zkadapt.channel.hydra.record import ChannelCopy, CopyError, load_copy
from zkadapt.channel.hydra.replay import CopyCheck, check_copy
from zkadapt.channel.hydra.txread import MalformedTransaction, tx_id_of
from zkadapt.channel.outsiders import OutsiderPolicy
from zkadapt.crypto.identity import Keyring
from zkadapt.errors import ChannelError

#: Problems quoted in the one-line error of a copy that failed its checks.
QUOTED_PROBLEMS = 3


class ArchivedChannel:
    """A read-only :class:`~zkadapt.channel.base.Channel` over checked persisted copies.

    Args:
        copy: the copy read.
        check: its check (:func:`~zkadapt.channel.hydra.replay.check_copy`).
        problems: further problems (other copies that disagree or cannot be read).
        why: why the node was not asked (one line, for the reader's report).
    """

    def __init__(
        self, copy: ChannelCopy, check: CopyCheck, problems: Sequence[str] = (), why: str = ""
    ) -> None:
        self.copy = copy
        self.check = check
        self.problems = [*check.problems, *problems]
        self.head_id = copy.head_id
        self.head_status = "Final" if copy.finalized_utxo is not None else "Closed"
        self.provenance = (
            f"hydra head {copy.head_id} read from the persisted copy {copy.path}"
            + (f" ({why})" if why else "")
            + "; checked: "
            + "; ".join(check.checked)
        )

    def post(self, envelope: SignedEnvelope) -> Receipt:
        """Raises ChannelError: a finished session's copy takes no more messages."""
        raise ChannelError(f"{self.copy.path}: a persisted copy of a finished head is read-only")

    def history(self, since: int = 0) -> list[Entry]:
        """The copy's entries with ``seq > since``.

        Raises:
            ValueError: ``since`` is negative.
            ChannelError: the copy is not what the head confirmed (the first problems, named).
        """
        if since < 0:
            raise ValueError(f"since must be >= 0, got {since}")
        if self.problems:
            quoted = "; ".join(self.problems[:QUOTED_PROBLEMS])
            more = len(self.problems) - QUOTED_PROBLEMS
            raise ChannelError(
                f"persisted copy {self.copy.path} of head {self.copy.head_id} fails its "
                f"check: {quoted}" + (f" (and {more} more)" if more > 0 else "")
            )
        return self.check.entries[since:]

    def wait(self, since: int, timeout: float) -> list[Entry]:
        """The entries after ``since``; nothing new ever arrives, so an empty answer waits."""
        entries = self.history(since)
        if not entries:
            time.sleep(max(min(timeout, 1.0), 0.0))
        return entries

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"ArchivedChannel({str(self.copy.path)!r}, head={self.head_id!r})"


def read_copies(paths: Sequence[Path], head_id: str | None) -> tuple[list[ChannelCopy], list[str]]:
    """The copies at ``paths`` that exist (of ``head_id`` when given), and unreadable ones.

    Returns:
        The copies, longest first (ties in ``paths`` order), and one problem per file that
        exists but cannot be read.
    """
    copies, problems = [], []
    for path in paths:
        if not path.is_file():
            continue
        try:
            copy = load_copy(path)
        except CopyError as exc:
            problems.append(f"unreadable copy: {exc}")
            continue
        if head_id is None or copy.head_id == head_id:
            copies.append(copy)
    copies.sort(key=lambda c: -c.last_snapshot)  # stable: paths order among equals
    if copies and head_id is None:
        heads = {c.head_id for c in copies}
        if len(heads) > 1:
            problems.append(
                f"copies of {len(heads)} different heads ({', '.join(sorted(heads))}); "
                "set channel.hydra.head_id to the session's head"
            )
    return copies, problems


def disagreements(longest: ChannelCopy, others: Sequence[ChannelCopy]) -> list[str]:
    """One line per other copy that is not a prefix of ``longest``, transaction by id."""
    reference = {s.number: _ids(s.confirmed) for s in longest.snapshots}
    found = []
    for other in others:
        if other.head_id != longest.head_id:
            continue
        for snapshot in other.snapshots:
            if reference.get(snapshot.number) != _ids(snapshot.confirmed):
                found.append(
                    f"copies disagree at snapshot {snapshot.number}: {other.path} and "
                    f"{longest.path} hold different transactions"
                )
                break
    return found


def _ids(confirmed: Sequence[Any]) -> list[str]:
    ids = []
    for tx in confirmed:
        try:
            ids.append(tx_id_of(tx.cbor))
        except MalformedTransaction:
            ids.append("malformed")
    return ids


def head_of_copy(path: Path | None) -> str | None:
    """The head a copy at ``path`` follows, or None (no copy there, or unreadable)."""
    if path is None or not path.is_file():
        return None
    try:
        return load_copy(path).head_id
    except CopyError:
        return None


def open_hydra_reader(
    keyring: Keyring,
    copies: Sequence[Path],
    head_id: str | None,
    open_live: Callable[[str | None], Any],
    outsiders: OutsiderPolicy | None = None,
) -> Any:
    """The session's channel for a reader: the node while it knows the head, else the copies.

    Args:
        keyring: the session's parties.
        copies: where persisted copies may be (the first existing ones are read).
        head_id: ``channel.hydra.head_id``, or None to follow the head the copies name.
        open_live: opens the live :class:`~zkadapt.channel.hydra.HydraChannel` following a
            head id (or the node's head for None).
        outsiders: newcomers' envelopes in a copy are read by this policy.

    Raises:
        ChannelError: the node cannot be reached and there is no copy to read.
    """
    found, problems = read_copies(copies, head_id)
    if not found:  # nothing persisted: the node is all there is
        try:
            return open_live(head_id)
        except ChannelError as exc:
            where = f" ({', '.join(str(p) for p in copies[:1])} ...)" if copies else ""
            raise ChannelError(f"{exc}; and no persisted copy of the channel{where}") from None
    longest = found[0]
    problems += disagreements(longest, found[1:])
    try:
        live = open_live(longest.head_id)
    except ChannelError as exc:
        check = check_copy(longest, keyring, outsiders=outsiders)
        return ArchivedChannel(longest, check, problems, f"the node is not reachable: {exc}")
    if live.knows_head(at_least=longest.last_snapshot):
        return live
    fanout = live.finalized_utxo_of(longest.head_id)
    node = live.api
    live.close()
    check = check_copy(
        longest,
        keyring,
        fanout=fanout,
        fanout_source=f"the node {node} (HeadIsFinalized)",
        outsiders=outsiders,
    )
    return ArchivedChannel(longest, check, problems, f"the node {node} no longer knows the head")
