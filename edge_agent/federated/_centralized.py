"""The non-private, non-federated reference: the same model trained on the pooled training data."""

from __future__ import annotations

import numpy as np

from edge_agent.federated._config import FlTrainingConfig
from edge_agent.federated._data import load_breast_cancer_split
from edge_agent.federated._local import NonPrivateTrainer

__all__ = ["centralized_baseline", "centralized_metrics"]


def centralized_metrics(seed: int = 0, config: FlTrainingConfig | None = None) -> dict[str, float]:
    """Test metrics (``accuracy``, ``auc``, ``loss``, ``n``) of the config's model trained WITHOUT privacy on all
    training rows of the ``seed`` split for ``config.centralized_epochs`` epochs of plain SGD (same lr and batch
    size as the hospitals). The test rows are those :func:`~edge_agent.federated.simulate` uses for that seed."""
    cfg = config if config is not None else FlTrainingConfig()
    train, test = load_breast_cancer_split(seed, cfg.test_fraction)
    trainer = NonPrivateTrainer(
        train,
        (test.X, test.y),
        epochs=cfg.centralized_epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        hidden=cfg.hidden,
        seed=seed,
    )
    start = trainer.initial_params(seed)
    result = trainer.train(start, 0, np.random.default_rng(np.random.SeedSequence([seed, 0xCE])))
    return trainer.evaluate(start + result.update)


def centralized_baseline(seed: int = 0, config: FlTrainingConfig | None = None) -> float:
    """Test accuracy of the centralized, non-private baseline (see :func:`centralized_metrics`)."""
    return centralized_metrics(seed, config)["accuracy"]
