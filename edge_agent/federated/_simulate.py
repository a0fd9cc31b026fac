"""In-memory FedAvg over simulated hospitals (no Kafka): for tuning defaults and checking the privacy/utility trade-off.

Each round every hospital trains from the global parameters and returns an update; the coordinator adds
``server_lr ×`` the example-weighted mean update. With ``use_codec`` the updates go through the real wire
codec of :mod:`streams.federated` (error feedback, shared random-k mask, clip, stochastic quantisation, packing,
Paillier with a ``config.key_bits`` key, homomorphic sum, decryption): each hospital encodes
``update × H × n_k / N`` so that the decoded mean of the H encoded vectors is the example-weighted mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge_agent.federated._config import FlTrainingConfig
from edge_agent.federated._data import FederatedSplit, load_federated_breast_cancer
from edge_agent.federated._local import DpSgdTrainer, NonPrivateTrainer, build_trainer
from edge_agent.federated._trainer import LocalResult

__all__ = ["RoundRecord", "SimulationResult", "simulate"]


@dataclass(frozen=True, slots=True)
class RoundRecord:
    """Global-model test metrics after a round, and the largest cumulative epsilon of any hospital."""

    round: int
    accuracy: float
    auc: float
    loss: float
    epsilon: float


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Per-round records of a simulated run, the initial model's metrics and each hospital's final epsilon."""

    initial: dict[str, float]
    rounds: tuple[RoundRecord, ...]
    client_epsilons: tuple[float, ...]
    delta: float
    final_params: NDArray[np.float64]
    split: FederatedSplit

    @property
    def final_accuracy(self) -> float:
        """Test accuracy after the last round (the initial model's when no round ran)."""
        return self.rounds[-1].accuracy if self.rounds else self.initial["accuracy"]

    @property
    def final_epsilon(self) -> float:
        """Largest cumulative epsilon over hospitals after the last round."""
        return self.rounds[-1].epsilon if self.rounds else 0.0

    def history(self) -> list[tuple[float, float]]:
        """``[(accuracy, epsilon), ...]`` per round."""
        return [(r.accuracy, r.epsilon) for r in self.rounds]


class _Codec:
    """The wire codec end to end, for all hospitals of one simulated run."""

    def __init__(self, config: FlTrainingConfig, n_clients: int, dim: int, seed: int) -> None:
        from streams.federated import EncodeSpec, ErrorFeedback, PackingSpec, QuantSpec, generate_keypair

        self._pub, self._priv = generate_keypair(config.key_bits)
        bits = config.quant_bits
        self._spec = EncodeSpec(
            clip_norm=config.update_clip,
            quant=QuantSpec(bits=bits, range=config.update_clip),
            packing=PackingSpec.maximal(bits=bits, max_clients=n_clients, key_bits=config.key_bits),
        )
        self._k = max(1, round(config.mask_fraction * dim))
        self._dim = dim
        self._n = n_clients
        self._seed = seed
        self._efs = [ErrorFeedback(dim) for _ in range(n_clients)]
        self._rngs = [np.random.default_rng(np.random.SeedSequence([seed, 0xC0DEC, k])) for k in range(n_clients)]

    def mean_update(self, results: list[LocalResult], round_id: int) -> NDArray[np.float64]:
        from streams.federated import (
            EncryptedAccumulator,
            client_encode,
            decode_aggregate,
            decrypt_aggregate,
            random_k_mask,
            scatter_masked,
        )

        if self._k == self._dim:
            mask = np.arange(self._dim, dtype=np.int64)
        else:
            mask_seed = int(np.random.SeedSequence([self._seed, 0x3A5C, round_id]).generate_state(1)[0])
            mask = random_k_mask(self._dim, self._k, mask_seed)
        total = sum(r.num_examples for r in results)
        acc: EncryptedAccumulator | None = None
        for k, r in enumerate(results):
            scaled = r.update * (self._n * r.num_examples / total)
            cts = client_encode(scaled, mask, self._efs[k], self._spec, self._pub, None, self._rngs[k])
            if acc is None:
                acc = EncryptedAccumulator(self._pub, len(cts), self._n)
            acc.add(cts)
        assert acc is not None
        sums = decrypt_aggregate(self._priv, acc.ciphertexts)
        mean = decode_aggregate(sums, self._spec, self._n, self._k) / self._n
        return scatter_masked(mean, mask, self._dim)


def _weighted_mean(results: list[LocalResult]) -> NDArray[np.float64]:
    total = sum(r.num_examples for r in results)
    mean = np.zeros_like(results[0].update)
    for r in results:
        mean += r.update * (r.num_examples / total)
    return mean


def simulate(
    n_hospitals: int,
    rounds: int,
    config: FlTrainingConfig | None = None,
    seed: int = 0,
    *,
    use_codec: bool = False,
    private: bool = True,
) -> SimulationResult:
    """FedAvg of ``n_hospitals`` DP-SGD trainers (plain SGD when not ``private``) for ``rounds`` rounds.

    The breast-cancer training rows are split across hospitals with Dirichlet(``config.dirichlet_alpha``) label
    skew; the global model is evaluated on the held-out test rows after every round. Each hospital calibrates
    its DP noise to ``config.target_epsilon`` over ``rounds`` rounds (unless ``config.noise_multiplier`` is set).
    Deterministic for a ``seed`` (Paillier randomness does not affect decrypted sums).
    """
    if n_hospitals < 1 or rounds < 0:
        raise ValueError("n_hospitals must be >= 1 and rounds >= 0")
    cfg = config if config is not None else FlTrainingConfig()
    split = load_federated_breast_cancer(
        n_hospitals,
        alpha=cfg.dirichlet_alpha,
        seed=seed,
        test_fraction=cfg.test_fraction,
        min_per_client=cfg.min_per_client,
        standardise=cfg.standardise,
        validation_fraction=cfg.validation_fraction,
    )
    test = (split.test.X, split.test.y)
    trainers: list[DpSgdTrainer | NonPrivateTrainer] = [
        build_trainer(cfg, h, test, rounds_planned=max(rounds, 1), seed=seed * 1000 + k, private=private)
        for k, h in enumerate(split.hospitals)
    ]
    rngs = [np.random.default_rng(np.random.SeedSequence([seed, 0x7EA1, k])) for k in range(n_hospitals)]
    params = trainers[0].initial_params(seed)
    initial = trainers[0].evaluate(params)
    codec = _Codec(cfg, n_hospitals, params.size, seed) if use_codec else None
    records: list[RoundRecord] = []
    epsilons = [0.0] * n_hospitals
    for r in range(rounds):
        results = [t.train(params, r, g) for t, g in zip(trainers, rngs, strict=True)]
        mean = codec.mean_update(results, r) if codec is not None else _weighted_mean(results)
        params = params + cfg.server_lr * mean
        epsilons = [res.epsilon for res in results]
        m = trainers[0].evaluate(params)
        records.append(RoundRecord(r, m["accuracy"], m["auc"], m["loss"], max(epsilons)))
    delta = cfg.delta if private else 0.0
    return SimulationResult(initial, tuple(records), tuple(epsilons), delta, params, split)
