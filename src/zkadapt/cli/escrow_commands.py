"""``zkadapt escrow``: a session's deposits, kill votes and settlement (docs/escrow.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from zkadapt.cli.common import cli, errors, session_arg


@cli.group()
def escrow() -> None:
    """Escrow of a session: deposits, kill votes and settlement (docs/escrow.md)."""


#: ``--out`` of every escrow command: where a local ledger is.
_out_option = click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    help="Output directory holding a local ledger [default: SESSION_DIR].",
)


@escrow.command("status")
@click.argument("session", type=click.Path(dir_okay=False))
@_out_option
def escrow_status(session: str, out: str | None) -> None:
    """Show deposits, signals, kill votes and the settlement each party gets."""
    from zkadapt.config import load_config

    with errors():
        path = session_arg(session)
        config = load_config(path)
        from zkadapt.assembly import open_session_channel
        from zkadapt.escrow.status import status_lines
        from zkadapt.operator.escrow import terms_of

        channel = open_session_channel(config, Path(out).resolve() if out else path.parent)
        try:
            entries = channel.history(0)
        finally:
            channel.close()
        click.echo("\n".join(status_lines(entries, terms_of(config, entries))))


# --- layer 1: lock, vote, settle, refund (docs/escrow.md, "On layer 1") ---------------------

_key_option = click.option(
    "--payment-key",
    "payment_key",
    type=click.Path(dir_okay=False),
    default=None,
    help="The party's payment signing key [default: cardano.payment_keys, else "
    "SESSION_DIR/keys/PARTY.skey].",
)
_party_option = click.option("--party", "party", required=True, help="Who acts (and pays fees).")


class _Layer1:
    """What a layer-1 escrow command opens: the session, the party's key, the chain."""

    def __init__(self, session: str, party: str, payment_key: str | None) -> None:
        from zkadapt.cardano.chain import chain_context
        from zkadapt.config import load_config
        from zkadapt.errors import ConfigError
        from zkadapt.operator.escrow_layer1 import key_file_hash, layer1_terms, load_payment_key

        self.path = session_arg(session)
        self.config = load_config(self.path)
        self.terms = layer1_terms(self.config)
        self.party = party
        override = Path(payment_key).resolve() if payment_key else None
        #: A newcomer's payment key hash when ``party`` is no listed party (its key file,
        #: the identity key it joined with, names it: docs/membership.md, "Escrow").
        self.newcomers: dict[str, bytes] = {}
        if party not in self.config.party_names:
            override = override or self.path.parent / "keys" / f"{party}.skey"
            if not override.exists():
                raise ConfigError(
                    "--party",
                    f"{party!r} is not a party of this session (a newcomer passes the key it "
                    f"joined with: no {override})",
                )
            self.newcomers[party] = key_file_hash(override)
        newcomer_hash = self.newcomers.get(party)
        self.key = load_payment_key(
            self.config, party, self.path.parent, override, newcomer_hash=newcomer_hash
        )
        assert self.config.cardano is not None  # layer1_terms checked it
        self.context = chain_context(self.config.cardano, party)

    def channel(self, out: str | None, *, post: bool) -> Any:
        """The session's channel: as the party (its identity key signs) or read-only."""
        from zkadapt.assembly import load_identity, open_session_channel

        out_dir = Path(out).resolve() if out else self.path.parent
        if not post:
            return open_session_channel(self.config, out_dir)
        key_path = self.path.parent / "keys" / f"{self.party}.skey"
        identity = load_identity(self.config, self.party, key_path)
        self.identity = identity
        return open_session_channel(self.config, out_dir, party=self.party, identity=identity)

    def post(self, channel: Any, message: Any) -> None:
        from zkadapt.channel.base import SignedEnvelope

        payload = message.to_bytes()
        channel.post(SignedEnvelope(self.party, payload, self.identity.sign(payload)))


@escrow.command("lock")
@click.argument("session", type=click.Path(dir_okay=False))
@_party_option
@_key_option
@_out_option
@click.option("--no-post", is_flag=True, help="Lock only; do not post EscrowDeposit.")
def escrow_lock(
    session: str, party: str, payment_key: str | None, out: str | None, no_post: bool
) -> None:
    """Lock the party's deposit at the session's script address, then post EscrowDeposit
    with the lock's out-ref (the others check it on layer 1)."""
    with errors():
        from zkadapt.escrow.messages import EscrowDeposit
        from zkadapt.operator.escrow_layer1 import lock_deposit

        run = _Layer1(session, party, payment_key)
        ref = lock_deposit(run.config, run.context, run.key)
        click.echo(f"{party} locked {run.terms.deposit} lovelace at {ref}")
        if not no_post:
            channel = run.channel(out, post=True)
            try:
                deposit = EscrowDeposit(run.terms.session, 0, party, run.terms.deposit, ref)
                run.post(channel, deposit)
            finally:
                channel.close()
            click.echo(f"posted EscrowDeposit {ref}")


@escrow.command("check")
@click.argument("session", type=click.Path(dir_okay=False))
@_party_option
@_key_option
@_out_option
def escrow_check(session: str, party: str, payment_key: str | None, out: str | None) -> None:
    """Check every deposit posted on the channel against its lock on layer 1."""
    with errors():
        from zkadapt.escrow.rules import EscrowView
        from zkadapt.escrow.txs import LockInvalid
        from zkadapt.operator.escrow_layer1 import check_deposit

        run = _Layer1(session, party, payment_key)
        channel = run.channel(out, post=False)
        try:
            view = EscrowView.from_entries(channel.history(0), run.terms)
        finally:
            channel.close()
        bad = 0
        for owner in run.terms.parties:
            ref = view.refs.get(owner)
            if ref is None:
                click.echo(f"{owner}: no deposit posted")
                bad += 1
                continue
            try:
                check_deposit(run.config, run.context, owner, ref)
                click.echo(f"{owner}: locked at {ref}")
            except LockInvalid as exc:
                click.echo(f"{owner}: INVALID: {exc}")
                bad += 1
        if bad:
            raise SystemExit(1)


@escrow.command("vote")
@click.argument("session", type=click.Path(dir_okay=False))
@_party_option
@_key_option
@_out_option
@click.option("--kill", "target", default=None, help="Vote to slash this party.")
@click.option("--round", "round_", type=int, default=None, help="The round it missed.")
@click.option(
    "--reason",
    type=click.Choice(["silent", "closed-early"]),
    default="silent",
    show_default=True,
)
@click.option(
    "--release",
    is_flag=True,
    help="Sign release votes for every other remaining party (once the settlement is final).",
)
def escrow_vote(
    session: str,
    party: str,
    payment_key: str | None,
    out: str | None,
    target: str | None,
    round_: int | None,
    reason: str,
    release: bool,
) -> None:
    """Post a kill vote or release votes, signed with the party's payment key."""
    with errors():
        from zkadapt.errors import ConfigError
        from zkadapt.escrow.rules import settlement_of
        from zkadapt.operator.escrow_layer1 import kill_vote, release_targets, release_votes

        if (target is None) == (not release):
            raise ConfigError("--kill", "give either --kill TARGET --round R or --release")
        from zkadapt.operator.escrow_layer1 import layer1_terms

        run = _Layer1(session, party, payment_key)
        channel = run.channel(out, post=True)
        try:
            entries = channel.history(0)
            terms = layer1_terms(run.config, entries)  # newcomers too (docs/membership.md)
            hashes = terms.payment_keys
            if target is not None:
                if round_ is None:
                    raise ConfigError("--round", "a kill vote names the round the target missed")
                vote = kill_vote(run.config, run.key, target, round_, reason, hashes)
                run.post(channel, vote)
                click.echo(f"{party} votes to slash {target} (missed round {round_})")
            else:
                settlement = settlement_of(entries, terms)
                targets = release_targets(settlement, party)
                for vote in release_votes(run.config, run.key, targets, hashes):
                    run.post(channel, vote)
                click.echo(f"{party} releases {', '.join(targets) or 'nobody'}")
        finally:
            channel.close()


@escrow.command("settle")
@click.argument("session", type=click.Path(dir_okay=False))
@_party_option
@_key_option
@_out_option
def escrow_settle(session: str, party: str, payment_key: str | None, out: str | None) -> None:
    """Settle every lock as the channel's history says (Release or Slash), in one
    transaction paid by the party; payouts are what escrow status shows."""
    with errors():
        from zkadapt.operator.escrow_layer1 import settle_locks, settlement_plan

        run = _Layer1(session, party, payment_key)
        channel = run.channel(out, post=False)
        try:
            plan = settlement_plan(run.config, run.context, channel.history(0))
        finally:
            channel.close()
        for owner in plan.done:
            click.echo(f"{owner}'s lock: already spent")
        if not plan.spends:
            click.echo("nothing left to settle")
            return
        tx_ids = settle_locks(run.config, run.context, plan.spends, run.key, plan.newcomers)
        for spend in plan.spends:
            kind = "slashed" if spend.is_slash else "released"
            paid = ", ".join(f"{p} {v}" for p, v in sorted(spend.payouts.items()))
            click.echo(f"{spend.owner}'s lock {kind}: {paid}")
        click.echo(f"settled in {', '.join(tx_ids)}")


@escrow.command("refund")
@click.argument("session", type=click.Path(dir_okay=False))
@_party_option
@_key_option
@click.option("--owner", "owners", multiple=True, help="Refund only this party's lock.")
def escrow_refund(
    session: str, party: str, payment_key: str | None, owners: tuple[str, ...]
) -> None:
    """After the deadline, return every unspent lock (found at the session's address, no
    channel needed) to its owner, in one transaction paid by the party. A newcomer (a
    --party no session file lists) finds its own lock too, by the key it joined with."""
    with errors():
        from zkadapt.operator.escrow_layer1 import refund

        run = _Layer1(session, party, payment_key)
        tx_id, refunded = refund(run.config, run.context, run.key, owners, run.newcomers)
        click.echo(f"refunded {', '.join(refunded)} in {tx_id}")
