"""Build a party's :class:`~zkadapt.learning.base.Learner` from its typed settings sections.

It receives ``[model]``, ``[data]`` and ``[training]`` and the few facts of the session it
needs (party names, partition seed), never the session config: the composition root
(:func:`zkadapt.assembly.learner_for`) derives those.

Every party loads the same dataset description and takes its own partition, chosen by a
seed all parties share, so the split is identical everywhere without any coordination.
Local test data is the matching partition of the test split; the global test set is the
whole test split, normalized with the training statistics (DESIGN.md section 3).

A causal LM (``model.kind = "causal-lm"``) has no shared data set to partition: each party
names its own text, holds out the tail of it, and is evaluated globally on every party's
held-out text pooled (or on ``data.eval``); see :mod:`zkadapt.learning.text_data`. A
newcomer (``zkadapt join --data``) names its text outside the session file and is evaluated
globally on exactly the listed parties' set, so every party's metrics are comparable.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zkadapt.learning.base import Learner
from zkadapt.learning.data import load_dataset
from zkadapt.learning.mlp import MLPLearner, MLPSpec
from zkadapt.learning.partition import partition
from zkadapt.learning.settings import DataConfig, ModelConfig, TrainingConfig

if TYPE_CHECKING:
    from zkadapt.learning.causal_lm import CausalLMLearner
    from zkadapt.learning.text_data import OwnText

#: Key of a newcomer's own held-out piece: a party name cannot contain ":", so it collides
#: neither with a listed party's piece nor with the shared ``eval`` one.
NEWCOMER_PIECE = "newcomer:"


def build_learner(
    *,
    model: ModelConfig,
    data: DataConfig,
    training: TrainingConfig,
    party_index: int | None,
    n_parties: int,
    partition_seed: int,
    data_root: Path,
) -> Learner:
    """The learner of party ``party_index`` (0-based, in sorted-name order).

    ``party_index=None`` builds the pooled learner (all parties' training data together)
    used for the centralized baseline.
    """
    path = (data_root / data.path) if data.path else None
    splits = load_dataset(data.source, path, max_train=data.max_train, max_test=data.max_test)
    spec = MLPSpec(
        input_dim=int(splits.train.x.shape[1]),
        hidden=tuple(model.hidden),
        num_classes=splits.num_classes,
    )
    if party_index is None:
        train, test_local = splits.train, splits.test
    else:
        train_parts = partition(
            splits.train.y, n_parties, data.partition, data.alpha, partition_seed
        )
        test_parts = partition(
            splits.test.y, n_parties, data.partition, data.alpha, partition_seed + 1
        )
        train = splits.train.subset(train_parts[party_index])
        test_local = splits.test.subset(test_parts[party_index])
    return MLPLearner(
        spec,
        train,
        test_local,
        splits.test,
        epochs=training.epochs,
        batch_size=training.batch_size,
        lr=training.lr,
        momentum=training.momentum,
    )


def build_causal_lm(
    *,
    model: ModelConfig,
    data: DataConfig,
    training: TrainingConfig,
    party: str | None,
    party_names: list[str],
    freeze_a: bool,
    data_root: Path,
    own: OwnText | None = None,
) -> CausalLMLearner:
    """A QLoRA learner on ``party``'s own text (``None``: every party's text pooled).

    ``party_names`` are the session's parties in sorted order; ``freeze_a`` keeps the LoRA
    A matrices at their initial values (FFA-LoRA).

    With ``own``, ``party`` is a newcomer no session file lists (docs/membership.md): it
    trains on ``own.train`` (its FedAvg weight is that block count) and its local split is
    its own held-out, but its global split is exactly a listed party's (the listed parties'
    held-out pooled, read from ``data.parties`` as they read it, or ``data.eval``): its
    held-out never enters the pool, so the global metrics of every ``RoundDone`` are over
    the same blocks. With ``data.eval`` it reads none of the listed parties' text.

    Raises:
        ConfigError: the base model cannot be found or the device is unavailable.
        DataError: a party's text is missing, unreadable or too short.
    """
    from zkadapt.learning.base_model import (
        load_tokenizer,
        quantized_folder,
        resolve_base,
        resolve_device,
    )
    from zkadapt.learning.causal_lm import CausalLMLearner, HeldOut, LMTraining
    from zkadapt.learning.lora import LoRASpec
    from zkadapt.learning.text_data import TextSplits, load_blocks, party_splits

    base = resolve_base(model, data_root)
    device = resolve_device(model.device)
    if model.quantization == "nf4":
        quantized_folder(base, device=device)  # quantize once per machine, before any party
    tokenizer = load_tokenizer(base)

    def splits_of(train_refs: tuple[str, ...], heldout: tuple[str, ...] | None) -> TextSplits:
        return party_splits(
            train_refs,
            heldout,
            root=data_root,
            tokenizer=tokenizer,
            seq_len=data.seq_len,
            heldout_fraction=data.heldout_fraction,
            max_train=data.max_train,
            max_test=data.max_test,
        )

    heldout_refs = data.heldout or {}
    listed = party_names if own is None or not data.eval else []
    splits = {
        name: splits_of((data.parties or {})[name], heldout_refs.get(name)) for name in listed
    }
    pieces = {name: split.heldout for name, split in splits.items()}
    pooled: tuple[str, ...] = tuple(party_names)
    if data.eval:
        cap = data.max_test * len(party_names) if data.max_test else None
        pieces["eval"] = load_blocks(data.eval, data_root, tokenizer, data.seq_len)[:cap]
        pooled = ("eval",)
    if own is not None:
        mine = splits_of(own.train, own.heldout or None)
        piece = f"{NEWCOMER_PIECE}{party}"
        pieces[piece] = mine.heldout
        train = mine.train
        heldout = HeldOut(pieces, local=(piece,), global_=pooled)
    elif party is None:
        train = np.concatenate([split.train for split in splits.values()])
        heldout = HeldOut(pieces, local=pooled, global_=pooled)
    else:
        train = splits[party].train
        heldout = HeldOut(pieces, local=(party,), global_=pooled)
    return CausalLMLearner(
        base,
        LoRASpec(
            rank=model.lora_rank,
            alpha=model.lora_alpha,
            dropout=model.lora_dropout,
            target_modules=tuple(model.target_modules),
            freeze_a=freeze_a,
        ),
        train,
        heldout,
        LMTraining(
            batch_size=training.batch_size,
            lr=training.lr,
            steps=training.steps,
            epochs=training.epochs,
            optimizer=training.optimizer,
            momentum=training.momentum,
            weight_decay=training.weight_decay,
            max_grad_norm=training.max_grad_norm,
        ),
        quantization=model.quantization,
        device=device,
        save_merged=model.save_merged,
    )
