"""One participant: wires its keys, store, channel and learner into the round protocol.

``zkadapt party SESSION --party NAME`` and every process that ``zkadapt run`` starts go
through :func:`run_party`, so the single-machine demo and the multi-machine deployment
share one code path (DESIGN.md section 2).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from zkadapt.aggregation.strategy import Strategy, make_strategy
from zkadapt.atomic_file import write_atomic
from zkadapt.channel.builder import open_session_channel
from zkadapt.config import SessionConfig
from zkadapt.crypto.identity import IdentityKey
from zkadapt.errors import ConfigError, CryptoError
from zkadapt.keyfiles import keyring_of
from zkadapt.learning.builder import learner_for
from zkadapt.protocol.checkpoints import RoundCheckpoints
from zkadapt.protocol.round import EventSink, PartyContext, RoundOutcome, RoundProtocol
from zkadapt.protocol.schemes import PlainScheme, UpdateScheme
from zkadapt.protocol.secure_aggregation import PaillierScheme
from zkadapt.storage.builder import open_party_store

#: File name of a party's own summary, inside ``OUT/parties/<name>/``.
RESULT_FILE = "result.json"


def load_identity(config: SessionConfig, party: str, key_path: Path) -> IdentityKey:
    """Load ``party``'s private key and check it matches the session file's public key."""
    if party not in config.party_names:
        raise ConfigError(
            "--party", f"{party!r} is not a party of this session ({', '.join(config.party_names)})"
        )
    key = IdentityKey.load(key_path)
    expected = keyring_of(config)[party]
    if key.public != expected:
        raise CryptoError(
            f"{key_path} is not {party}'s key: its public key differs from the session file"
        )
    return key


def party_dir(out_dir: Path, party: str) -> Path:
    """Where a party keeps its checkpoints, log and result."""
    return out_dir / "parties" / party


def make_strategy_for(config: SessionConfig) -> Strategy:
    """The aggregation strategy named by ``aggregation.strategy``, with its parameters."""
    agg = config.aggregation
    if agg.strategy == "diloco":
        return make_strategy("diloco", outer_lr=agg.outer_lr, momentum=agg.outer_momentum)
    return make_strategy(agg.strategy)


def make_scheme(
    config: SessionConfig, strategy: Strategy, *, n_samples: int, timeout_s: float | None = None
) -> UpdateScheme:
    """The update scheme named by ``privacy.scheme`` (``timeout_s`` overrides the deadline)."""
    privacy = config.privacy
    if privacy.scheme == "none":
        return PlainScheme(strategy)
    return PaillierScheme(
        keyring=keyring_of(config),
        n_samples=n_samples,
        key_bits=privacy.key_bits,
        threshold=config.threshold,
        keygen=privacy.keygen,
        dealer=config.dealer,
        quant_bits=privacy.quant_bits,
        clip=privacy.clip,
        refresh_every=privacy.refresh_every,
        timeout_s=config.protocol.submit_timeout_s if timeout_s is None else timeout_s,
        textbook=privacy.textbook,
        workers=privacy.workers,
    )


def run_party(
    config: SessionConfig,
    party: str,
    *,
    out_dir: Path,
    key_path: Path,
    data_root: Path,
    on_event: EventSink | None = None,
    threads: int | None = 1,
) -> list[RoundOutcome]:
    """Run (or resume) ``party``'s side of the session and write its ``result.json``.

    Args:
        config: the validated session (with public keys).
        party: this party's name.
        out_dir: shared output directory; relative storage/channel paths resolve here.
        key_path: this party's identity key file.
        data_root: directory that a relative ``data.path`` resolves against.
        on_event: progress callback ``(round, phase, detail)``.
        threads: torch intra-op threads (1 keeps several local parties from oversubscribing
            the cores and keeps training bit-reproducible).
    """
    identity = load_identity(config, party, key_path)
    if threads:
        import torch

        torch.set_num_threads(threads)
    session_id = config.session_id
    names = config.party_names
    store = open_party_store(config, party, out_dir)  # storage errors before loading data
    learner = learner_for(config, party, data_root=data_root)
    strategy = make_strategy_for(config)
    channel = open_session_channel(config, out_dir, party=party, identity=identity)
    home = party_dir(out_dir, party)
    ctx = PartyContext(
        session_id=session_id,
        party=party,
        parties=tuple(names),
        rounds=config.session.rounds,
        quorum=config.quorum,
        submit_timeout_s=config.protocol.submit_timeout_s,
        poll_interval_s=config.protocol.poll_interval_s,
        seed_id=config.seed_id,
    )
    protocol = RoundProtocol(
        ctx,
        scheme=make_scheme(config, strategy, n_samples=learner.n_train),
        identity=identity,
        channel=channel,
        store=store,
        learner=learner,
        strategy=strategy,
        checkpoints=RoundCheckpoints(
            home / "checkpoints", session_id=session_id, model_type=config.model.kind
        ),
        on_event=on_event,
    )
    try:
        outcomes = protocol.run()
    finally:
        channel.close()
    _write_result(home, session_id, party, outcomes, protocol.checkpoints.latest_digest())
    export = getattr(learner, "export", None)  # adapter learners write a PEFT folder
    final = protocol.checkpoints.latest()
    if export is not None and final is not None:
        export(final.state, home)
    return outcomes


def _write_result(
    home: Path, session_id: str, party: str, outcomes: list[RoundOutcome], digest: str
) -> None:
    body = {
        "session_id": session_id,
        "party": party,
        "final_model_sha256": digest,
        "rounds_run_by_this_process": [asdict(o) for o in outcomes],
    }
    home.mkdir(parents=True, exist_ok=True)
    data = json.dumps(body, indent=2, sort_keys=True).encode("utf-8")
    write_atomic(home / RESULT_FILE, data, mode=0o644)
