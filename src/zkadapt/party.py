"""One participant: runs the round protocol on the parts the composition root builds.

``zkadapt party SESSION --party NAME`` and every process that ``zkadapt run`` starts go
through :func:`run_party`, so the single-machine demo and the multi-machine deployment
share one code path (DESIGN.md section 2).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zkadapt import assembly
from zkadapt.atomic_file import write_atomic
from zkadapt.config import SessionConfig
from zkadapt.crypto.identity import IdentityKey
from zkadapt.errors import ChannelError, JoinRefused, ProtocolError, ZkAdaptError
from zkadapt.locks import PARTY_LOCK, ExclusiveLock
from zkadapt.operator.early_close import HeadClosedEarly, closed_early_line, head_closed
from zkadapt.out_dirs import party_dir
from zkadapt.protocol import membership
from zkadapt.protocol.checkpoints import RoundCheckpoints
from zkadapt.protocol.membership import Candidacy
from zkadapt.protocol.phases import Phase
from zkadapt.protocol.round import EventSink, PartyContext, RoundOutcome, RoundProtocol
from zkadapt.round_failures import RoundFailureNotes
from zkadapt.writable import local_write_failure

if TYPE_CHECKING:
    from zkadapt.learning.text_data import OwnText
    from zkadapt.operator.party_escrow import PartyEscrow


@dataclass(frozen=True)
class NewcomerPlan:
    """What a party no session file lists joins with (``zkadapt join``, docs/membership.md).

    Attributes:
        deposit: the escrow deposit its request declares (lovelace; 0 without an escrow).
        node: the hydra-node it posts through (a member's: no session file names one for
            it); None on the local ledger.
        own_text: a causal-LM newcomer's own text (``--data``; the session file's
            ``data.parties`` cannot name it); None for the other model kinds.
    """

    deposit: int = 0
    node: str | None = None
    own_text: OwnText | None = None


#: File name of a party's own summary, inside ``OUT/parties/<name>/``.
RESULT_FILE = "result.json"


def run_party(
    config: SessionConfig,
    party: str,
    *,
    out_dir: Path,
    key_path: Path,
    data_root: Path,
    on_event: EventSink | None = None,
    on_round_failed: Callable[[str], None] | None = None,
    threads: int | None = 1,
    payment_key_path: Path | None = None,
    newcomer: NewcomerPlan | None = None,
) -> list[RoundOutcome]:
    """Run (or resume) ``party``'s side of the session and write its ``result.json``.

    When the escrow is on layer 1 (``escrow.deadline`` and ``[cardano]``), the party also
    takes the escrow's steps around the rounds (:mod:`zkadapt.operator.party_escrow`): it
    locks its deposit and checks the others' before round 1, votes against silent parties
    between rounds, and releases and settles after the last one.

    With ``newcomer`` (``zkadapt join``), ``party`` is a newcomer that no session file lists
    (docs/membership.md): its key is read from (or created at) ``key_path``, it posts a
    ``JoinRequest`` signed with it declaring its deposit, follows every round before its
    admission by recomputing G(r) from the channel and checking every ``RoundDone``
    digest (no party sends it a model), and takes part from its first round as a member.

    The party holds ``OUT/parties/<name>/party.lock`` for the whole run: a second process
    acting as the same party would overwrite its update objects and checkpoints (issue 17),
    so it is refused at once with :class:`~zkadapt.locks.LockHeld` naming the holder.

    Args:
        config: the validated session (with public keys).
        party: this party's name.
        out_dir: shared output directory; relative storage/channel paths resolve here.
        key_path: this party's identity key file.
        data_root: directory that a relative ``data.path`` resolves against.
        on_event: progress callback ``(round, phase, detail)``.
        on_round_failed: gets one line per failed round, with the rejections' reasons
            (:mod:`zkadapt.round_failures`), when the party stops, whether or not it failed.
        threads: torch intra-op threads (1 keeps several local parties from oversubscribing
            the cores and keeps training bit-reproducible).
        payment_key_path: this party's payment signing key for a layer-1 escrow (default:
            its identity key, the same cardano-cli envelope).
        newcomer: what a newcomer joins with (:class:`NewcomerPlan`); None for a listed
            party.

    A head closed before the last round is done stops the party with
    :class:`~zkadapt.operator.early_close.HeadClosedEarly` (one line, exit code 5), after its
    ``result.json`` (with the escrow's account) is written.

    Raises:
        HeadClosedEarly: the session's hydra head was closed mid-session.
        LockHeld: another process already runs ``party`` with this ``out_dir``.
        JoinRefused: a newcomer whose request the channel refused (the reason every
            party records).
        OutputError: the party cannot write its own files (lock, checkpoints, local store);
            retrying cannot help, so it stops at once with the path and the reason.
    """
    if newcomer is None:
        identity = assembly.load_identity(config, party, key_path)
    else:
        identity = assembly.newcomer_identity(config, party, key_path)
    what = f"party {party} of session {config.session_id[:12]}"
    try:
        with ExclusiveLock(party_dir(out_dir, party) / PARTY_LOCK, what):
            return _run_locked(
                config,
                party,
                identity,
                out_dir,
                data_root,
                on_event,
                on_round_failed,
                threads,
                payment_key_path or key_path,
                newcomer,
            )
    except (OSError, ZkAdaptError) as exc:
        failure = local_write_failure(exc)
        if failure is None:
            raise
        raise failure from None


def _run_locked(
    config: SessionConfig,
    party: str,
    identity: IdentityKey,
    out_dir: Path,
    data_root: Path,
    on_event: EventSink | None,
    on_round_failed: Callable[[str], None] | None,
    threads: int | None,
    payment_key_path: Path,
    newcomer: NewcomerPlan | None,
) -> list[RoundOutcome]:
    """:func:`run_party`'s body, run while the party lock is held."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    session_id = config.session_id
    names = config.party_names
    store = assembly.open_party_store(config, party, out_dir)  # storage errors first
    if newcomer is None:
        learner = assembly.learner_for(config, party, data_root=data_root)
        candidacy = None
    else:
        learner = assembly.newcomer_learner(
            config, party, data_root=data_root, own=newcomer.own_text
        )
        candidacy = Candidacy(identity.public.hex, learner.n_train, newcomer.deposit)
    strategy = assembly.make_strategy_for(config)
    channel = assembly.open_session_channel(
        config, out_dir, party=party, identity=identity, api=newcomer and newcomer.node
    )
    home = party_dir(out_dir, party)
    escrow = _escrow_steps(
        config, party, identity, channel, payment_key_path, on_event, store, candidacy
    )
    if escrow is not None and candidacy is not None:  # lock first: the request names it
        candidacy = replace(candidacy, lock=escrow.lock_as_newcomer())
    ctx = PartyContext(
        session_id=session_id,
        party=party,
        parties=tuple(names),
        rounds=config.session.rounds,
        quorum=config.quorum,
        submit_timeout_s=config.protocol.submit_timeout_s,
        poll_interval_s=config.protocol.poll_interval_s,
        seed_id=config.seed_id,
        close_votes=config.close_votes,
        min_accepted=config.min_accepted,
        membership=config.membership_rules,
        candidacy=candidacy,
    )
    protocol = RoundProtocol(
        ctx,
        scheme=assembly.make_scheme(config, strategy, n_samples=learner.n_train),
        identity=identity,
        channel=channel,
        store=store,
        learner=learner,
        strategy=strategy,
        checkpoints=RoundCheckpoints(
            home / "checkpoints", session_id=session_id, model_type=config.model.kind
        ),
        on_event=on_event,
        between_rounds=escrow.after_round if escrow is not None else None,
    )
    outcomes: list[RoundOutcome] = []
    closed_early: HeadClosedEarly | None = None
    try:
        if escrow is not None:
            escrow.start()
        try:
            outcomes = protocol.run()
        except ChannelError:
            if not head_closed(channel):
                raise
            closed_early = _closed_early(config, party, protocol, escrow)
        else:
            if escrow is not None:
                escrow.finish()
    except ProtocolError:
        refused = _refusal(protocol, candidacy)
        if refused is not None:
            raise JoinRefused(f"join request refused: {refused}", party=party) from None
        raise
    finally:
        channel.close()
        notes = RoundFailureNotes(config.close_votes)
        lines = notes.add_all(protocol.history.admitted)
        lines += [notes.decided(o.round, o.failure) or "" for o in outcomes if o.failure]
        for line in filter(None, lines):
            if on_round_failed is not None:
                on_round_failed(line)
    escrow_json = escrow.outcome.to_json() if escrow is not None else None
    _write_result(
        home, session_id, party, outcomes, protocol.checkpoints.latest_digest(), escrow_json
    )
    if closed_early is not None:
        raise closed_early
    export = getattr(learner, "export", None)  # adapter learners write a PEFT folder
    final = protocol.checkpoints.latest()
    if export is not None and final is not None:
        export(final.state, home)
    return outcomes


def _closed_early(
    config: SessionConfig, party: str, protocol: RoundProtocol, escrow: PartyEscrow | None
) -> HeadClosedEarly:
    """The head was closed mid-session: the escrow's account of it, and the one-line stop."""
    done = max(protocol.checkpoints.rounds(), default=0)
    note = escrow.closed_early() if escrow is not None else ""
    return HeadClosedEarly(closed_early_line(party, done, config.session.rounds, note))


def _escrow_steps(
    config: SessionConfig,
    party: str,
    identity: IdentityKey,
    channel: Any,
    payment_key_path: Path,
    on_event: EventSink | None,
    store: Any = None,
    candidacy: Candidacy | None = None,
) -> PartyEscrow | None:
    """The party's escrow steps when the escrow is on layer 1, else None (a newcomer's,
    with ``candidacy``, pay from its identity key, the payment key its lock names).

    Raises:
        ConfigError: the payment key file is missing or is not the party's.
    """
    from zkadapt.operator.escrow import key_hash, on_layer1

    if not on_layer1(config):
        return None
    from zkadapt.cardano.chain import chain_context
    from zkadapt.operator.escrow_layer1 import load_payment_key
    from zkadapt.operator.party_escrow import PartyEscrow

    assert config.cardano is not None  # on_layer1
    newcomer_hash = key_hash(candidacy.public_key) if candidacy is not None else None
    key = load_payment_key(
        config, party, payment_key_path.parent, payment_key_path, newcomer_hash=newcomer_hash
    )
    sink = on_event or (lambda r, phase, detail: None)
    return PartyEscrow(
        config,
        party,
        channel=channel,
        identity=identity,
        context=chain_context(config.cardano, party),
        key=key,
        say=lambda line: sink(0, Phase.ESCROW, line),
        store=store,
        newcomer_hash=newcomer_hash,
    )


def _refusal(protocol: RoundProtocol, candidacy: Candidacy | None) -> str | None:
    """Why the channel refused our own ``JoinRequest``, if it did (a newcomer)."""
    roster = protocol.history.roster
    if candidacy is None or roster is None:
        return None
    standing = membership.status(roster, protocol.ctx.party, candidacy.public_key)
    return str(standing[1]) if standing is not None and standing[0] == "refused" else None


def _write_result(
    home: Path,
    session_id: str,
    party: str,
    outcomes: list[RoundOutcome],
    digest: str,
    escrow: dict[str, Any] | None = None,
) -> None:
    body: dict[str, Any] = {
        "session_id": session_id,
        "party": party,
        "final_model_sha256": digest,
        "rounds_run_by_this_process": [asdict(o) for o in outcomes],
    }
    if escrow is not None:  # a layer-1 escrow: the lock and what the settlement did
        body["escrow"] = escrow
    home.mkdir(parents=True, exist_ok=True)
    data = json.dumps(body, indent=2, sort_keys=True).encode("utf-8")
    write_atomic(home / RESULT_FILE, data, mode=0o644)
