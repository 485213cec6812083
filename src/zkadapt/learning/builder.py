"""Build a party's :class:`~zkadapt.learning.base.Learner` from the typed session sections.

Every party loads the same dataset description and takes its own partition, chosen by a
seed all parties share, so the split is identical everywhere without any coordination.
Local test data is the matching partition of the test split; the global test set is the
whole test split, normalized with the training statistics (DESIGN.md section 3).
"""

from __future__ import annotations

from pathlib import Path

from zkadapt.config import DataConfig, ModelConfig, SessionConfig, TrainingConfig
from zkadapt.learning.base import Learner
from zkadapt.learning.data import load_dataset
from zkadapt.learning.mlp import MLPLearner, MLPSpec
from zkadapt.learning.partition import partition
from zkadapt.seeds import derive_seed


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


def learner_for(config: SessionConfig, party: str | None, *, data_root: Path) -> Learner:
    """``party``'s learner for a session (``None``: the pooled, centralized learner).

    The partition seed comes from the session id, so every party splits the data the same way.
    """
    names = config.party_names
    return build_learner(
        model=config.model,
        data=config.data,
        training=config.training,
        party_index=None if party is None else names.index(party),
        n_parties=len(names),
        partition_seed=derive_seed(config.seed_id, "partition") % 2**32,
        data_root=data_root,
    )
