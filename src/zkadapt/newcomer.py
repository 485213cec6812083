"""What a newcomer and a member ask of the channel about membership (docs/membership.md).

``zkadapt join`` asks, before it posts anything, what the membership rules would say to its
request if it were the next entry of the channel, so that a name already taken, a session
whose membership is fixed or full, or a round too late to join is one line and exit 2
instead of a refusal recorded on the channel. ``zkadapt admit`` lists the pending requests
and posts a member's ``Admit`` vote. Both read the channel as every party's machine reads
it (:class:`~zkadapt.protocol.history.SessionHistory` with ``config.channel_rules()``): the
round machine decides membership, these functions only read its decisions and post.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zkadapt import assembly
from zkadapt.config import SessionConfig
from zkadapt.crypto.identity import IdentityKey
from zkadapt.errors import ConfigError, CryptoError, JoinRefused, UsageError
from zkadapt.learning.text_data import OwnText, resolve_path
from zkadapt.protocol import membership
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.membership import Request, Roster
from zkadapt.protocol.messages import Admit, sign
from zkadapt.storage import STORE_BACKENDS


def read_roster(config: SessionConfig, out_dir: Path) -> SessionHistory:
    """The session's channel read by the parties' rules (read-only; its roster)."""
    channel = assembly.open_session_channel(config, out_dir)
    try:
        history = SessionHistory(config.session_id, config.party_names, config.channel_rules())
        history.extend(channel.history(0))
    finally:
        channel.close()
    return history


def check_joinable(config: SessionConfig, name: str) -> None:
    """What the session file alone says about a newcomer ``name`` (before any I/O).

    Raises:
        ConfigError: membership is fixed, the session's model cannot take a newcomer yet,
            or its bucket storage gives ``name`` no place of its own.
        UsageError: ``name`` is a listed party's.
    """
    section = config.membership
    if section is None or section.admission == "fixed":
        raise ConfigError(
            "membership.admission",
            'membership is fixed (no [membership] admission = "open" or "vote"): nobody '
            "can join this session",
        )
    if name in config.party_names:
        raise UsageError(f"the name {name} is taken: it is a party of the session file")
    if not config.has_keys:
        raise ConfigError("parties", "every listed party needs a public_key to be joined")
    scheme = STORE_BACKENDS.get(config.storage.backend).uri_scheme
    if scheme is not None:
        _check_place(config, name, scheme)


def _check_place(config: SessionConfig, name: str, scheme: str) -> None:
    """A bucket store gives newcomer ``name`` a place of its own: the storage templates
    filled with its name, overlapping no listed party's (every reader derives the same)."""
    from zkadapt.storage import bucket_locations, newcomer_location

    try:
        newcomer_location(config.storage, name, scheme)
    except ValueError as exc:
        raise ConfigError("storage.bucket", f"no place for newcomer {name}: {exc}") from None
    if name not in bucket_locations(config.storage, config.parties, scheme):
        raise ConfigError(
            "storage.bucket",
            f"no place for newcomer {name}: its bucket and prefix would overlap a listed "
            "party's (choose another name)",
        )


def own_text(
    config: SessionConfig, data: tuple[str, ...], heldout: tuple[str, ...], root: Path
) -> OwnText | None:
    """A newcomer's own text from ``zkadapt join --data/--heldout`` (before any I/O but
    ``exists``): required for a causal LM, whose parties' text the session file names in
    ``data.parties`` (which cannot name a newcomer), refused for the other model kinds
    (their newcomer trains on its part of ``data.source``). Paths resolve against ``root``
    (``--data-root``) as ``data.parties`` entries do.

    Raises:
        UsageError: ``--data`` is missing for a causal LM, given for another kind, or names
            a path that does not exist.
    """
    if config.model.kind != "causal-lm":
        if data or heldout:
            raise UsageError(
                f'--data and --heldout are for model.kind = "causal-lm"; with '
                f"{config.model.kind!r} a newcomer trains on its part of data.source"
            )
        return None
    if not data:
        raise UsageError(
            'model.kind = "causal-lm": a newcomer brings its own text, pass --data PATH (a text '
            "file, folder or .jsonl, as in data.parties; the session file cannot name it)"
        )
    for option, refs in (("--data", data), ("--heldout", heldout)):
        for ref in refs:
            path = resolve_path(ref, root)
            if not path.exists():
                raise UsageError(f"{option} {ref}: no such file or folder ({path})")
    return OwnText(train=data, heldout=heldout)


def standing(
    config: SessionConfig, history: SessionHistory, name: str, key: str, deposit: int
) -> str:
    """A newcomer's standing on the channel now: ``"new"`` (its request would be accepted
    as the next entry), ``"pending"`` or ``"admitted"`` (a rerun resumes).

    Raises:
        JoinRefused: its own request was refused, or one posted now would be, with the
            reason every party would record.
    """
    roster, rules = history.roster, config.membership_rules
    if roster is None or rules is None:
        raise JoinRefused('membership is fixed (membership.admission = "fixed")')
    found = membership.status(roster, name, key)
    if found is not None and found[0] == "refused":
        raise JoinRefused(f"join request refused: {found[1]}", party=name)
    if found is not None:
        return str(found[0])
    # With a layer-1 escrow the lock is made after this check (a refused request locks
    # nothing), so the check stands in a placeholder for the out-ref the request will name.
    lock = "to be locked" if rules.lock_required else ""
    why = membership.would_refuse(
        rules,
        roster,
        config.party_names,
        config.session.rounds,
        Request(name, key, 1, deposit, lock),
    )
    if why is not None:
        raise JoinRefused(f"cannot join session {config.session_id[:12]}: {why}", party=name)
    return "new"


@dataclass(frozen=True)
class PendingRequest:
    """One pending ``JoinRequest`` as ``zkadapt admit --list`` shows it."""

    name: str
    key: str
    n_samples: int
    deposit: int
    approvals: tuple[str, ...]
    approved: bool
    lock: str = ""

    def line(self, votes: int) -> str:
        state = "approved" if self.approved else f"{len(self.approvals)} of {votes} votes"
        by = f" ({', '.join(self.approvals)})" if self.approvals else ""
        lock = f"  lock {self.lock[:16]}…#{self.lock.partition('#')[2]}" if self.lock else ""
        return (
            f"{self.name}  key {self.key[:16]}…  n_samples {self.n_samples}  "
            f"deposit {self.deposit}{lock}  {state}{by}"
        )


def pending(roster: Roster) -> list[PendingRequest]:
    """The pending requests of ``roster``, in channel order."""
    return [
        PendingRequest(q.name, q.key, q.n_samples, q.deposit, q.approvals, q.approved, q.lock)
        for q in roster.pending
    ]


def admit(
    config: SessionConfig, member: str, candidate: str, *, key_path: Path, out_dir: Path
) -> int:
    """Post ``member``'s ``Admit`` for ``candidate``'s pending request; returns its seq.

    With the escrow on layer 1, ``member`` first checks the candidate's lock from the
    out-ref its request names (:func:`check_newcomer_lock`): the members' votes are the
    channel's record that the lock was there (docs/membership.md, "Escrow").

    Raises:
        ConfigError: the session does not admit by vote, or the key is not ``member``'s.
        UsageError: ``candidate`` has no pending request, it is approved already,
            ``member`` voted for it already, ``member`` is no member of the round in
            progress (its vote would not count), or its layer-1 lock is not the agreed one.
    """
    section = config.membership
    if section is None or section.admission != "vote":
        raise ConfigError(
            "membership.admission",
            'members vote only with admission = "vote" (an "open" session admits every '
            "valid request at the next boundary; a fixed one none)",
        )
    history = read_roster(config, out_dir)
    roster = history.roster or membership.NO_ROSTER
    identity = _member_identity(config, roster, member, key_path)
    found = next((q for q in roster.pending if q.name == candidate), None)
    if found is None:
        raise UsageError(f"{candidate} has no pending join request (see `zkadapt admit --list`)")
    if found.approved:
        raise UsageError(f"{candidate}'s request is approved already")
    if member in found.approvals:
        raise UsageError(f"{member} voted for {candidate} already")
    r = roster.in_progress
    if member not in membership.members(config.party_names, roster, r):
        raise UsageError(f"{member} is no member of round {r}: its vote would not count")
    check_newcomer_lock(config, member, found)
    channel = assembly.open_session_channel(config, out_dir, party=member, identity=identity)
    try:
        receipt = channel.post(
            sign(Admit(config.session_id, r, member, candidate), member, identity)
        )
    finally:
        channel.close()
    return receipt.seq


def check_newcomer_lock(
    config: SessionConfig, member: str, request: Request, context: Any = None
) -> None:
    """With the escrow on layer 1: ``request``'s deposit is the agreed one and its lock is
    unspent at the session's address with exactly the datum a newcomer's lock has (the
    session file's parties and the newcomer, whose key hash is that of its request's key).
    Without a layer-1 escrow there is nothing to check. ``context``: the chain context
    (default: ``[cardano]`` as ``member`` reaches it).

    Raises:
        UsageError: the deposit or the lock is not the agreed one (the vote is not posted).
        LayerOneError: layer 1 cannot be asked.
    """
    from zkadapt.operator.escrow import key_hash, on_layer1

    if not on_layer1(config):
        return
    from zkadapt.cardano.chain import chain_context
    from zkadapt.escrow.txs import LockInvalid
    from zkadapt.operator.escrow_layer1 import check_deposit

    refuse = f"not voting to admit {request.name}"
    agreed = config.escrow.deposit_lovelace
    if request.deposit != agreed:
        raise UsageError(
            f"{refuse}: it declares a deposit of {request.deposit} lovelace, the escrow takes "
            f"exactly {agreed}"
        )
    assert config.cardano is not None  # on_layer1
    context = context if context is not None else chain_context(config.cardano, member)
    try:
        check_deposit(
            config, context, request.name, request.lock, {request.name: key_hash(request.key)}
        )
    except LockInvalid as exc:
        raise UsageError(f"{refuse}: {exc}") from None


def _member_identity(
    config: SessionConfig, roster: Roster, member: str, key_path: Path
) -> IdentityKey:
    """``member``'s key: a listed party's (checked against the session file) or an
    admitted newcomer's (checked against the key it was admitted with)."""
    if member in config.party_names:
        return assembly.load_identity(config, member, key_path)
    newcomer = roster.newcomer(member)
    if newcomer is None:
        raise UsageError(f"{member} is no party of this session and was not admitted")
    key = IdentityKey.load(key_path)
    if key.public.hex != newcomer.key:
        raise CryptoError(f"{key_path} is not {member}'s key: {member} was admitted with another")
    return key
