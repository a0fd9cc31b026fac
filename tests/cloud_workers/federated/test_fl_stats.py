"""The statistics round (round 0) on the real broker, every role running:

1. every hospital ends up with the same standardiser, equal (to the 2**-24 rounding of each value) to the mean
   and standard deviation of all hospitals' rows pooled, though only the secure sum was ever decrypted; the round is
   not counted as training (neither in the hospitals' accountants nor in the published epsilon);
2. the keyholder refuses to decrypt a statistics round with fewer contributors than its own minimum, so nothing
   is published.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from edge_agent.federated._trainer import FederationStandardised, LocalResult
from schemas import RejectReason
from streams.broker import EmbeddedBroker
from streams.federated import feature_moments, standardiser_from_metrics
from tests.cloud_workers.federated.harness import (
    CLIENTS,
    DIM,
    Harness,
    LinearTrainer,
    config,
    dead_letters,
    make_keys,
    read_models,
    running,
)

pytestmark = [pytest.mark.broker]

A, B, C, D = sorted(CLIENTS)


class RawTrainer(LinearTrainer):
    """:class:`LinearTrainer` on raw features of very different scales (around 1000 with spread 0.01, around
    0.05 with spread 0.5, ...) that trains only once the federation's standardiser is set."""

    def __init__(self, index: int) -> None:
        super().__init__(index, n=30 + 7 * index)
        scale = np.array([0.01, 0.5, 3.0, 40.0, 1.0, 0.2])[:DIM]
        shift = np.array([1000.0, 0.05, -7.0, 2500.0, 0.0, 1e-3])[:DIM]
        self.raw = self._x * scale + shift
        self.standardiser: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None

    @property
    def awaits_standardiser(self) -> bool:
        return True

    @property
    def standardised(self) -> bool:
        return self.standardiser is not None

    def feature_moments(self) -> list[int]:
        return feature_moments(self.raw)

    def set_standardiser(self, mean: NDArray[np.float64], std: NDArray[np.float64]) -> None:
        self.standardiser = (mean, std)
        self._x = (self.raw - mean) / std

    def train(self, global_params: NDArray[np.float64], round_id: int, rng: np.random.Generator) -> LocalResult:
        assert self.standardiser is not None, "trained before the statistics round"
        return super().train(global_params, round_id, rng)


async def test_secure_sum_standardisation_gives_every_hospital_the_pooled_statistics(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    keys = make_keys(tmp_path / "keys")
    h = Harness(broker.bootstrap, keys, tmp_path / "state")
    cfg = config(keys, h.model, rounds=1, stats_features=DIM)
    tr = {cid: RawTrainer(i) for i, cid in enumerate(sorted(CLIENTS))}
    assert all(isinstance(t, FederationStandardised) for t in tr.values())
    clients = {}
    async with running(h):
        await h.launch(h.keyholder())  # its default policy: at least 3 hospitals, DP required for training
        await h.launch(h.aggregator())
        for cid in sorted(CLIENTS):
            clients[cid] = h.client(cid, tr[cid])
            await h.launch(clients[cid])
        await h.launch(h.coordinator(cfg))
        models = await read_models(h, 2)
    assert [m.version for m in models] == [0, 1]
    v0, v1 = models
    assert sorted(v0.contributors) == sorted(CLIENTS) and v0.round_id == 0
    pooled = np.concatenate([t.raw for t in tr.values()])
    assert v0.metrics["standardiser.rows"] == pooled.shape[0]
    published = standardiser_from_metrics(v0.metrics)
    assert published is not None
    for t in tr.values():  # every hospital took the very same standardiser
        assert t.standardiser is not None
        np.testing.assert_array_equal(t.standardiser[0], published[0])
        np.testing.assert_array_equal(t.standardiser[1], published[1])
    mean, std = published
    # the pooled rows' own statistics, to the 2**-24 rounding of each value (spread 0.01 around 1000 included)
    np.testing.assert_allclose(mean, pooled.mean(axis=0), rtol=1e-12, atol=2**-24)
    np.testing.assert_allclose(std, pooled.std(axis=0), rtol=1e-6)
    # round 0 trains nothing: one training round in every accountant and in the published epsilon
    assert all(c.core.rounds_trained == 1 and len(c.core.history) == 1 for c in clients.values())
    assert sorted(p.client_id for p in v1.privacy.clients) == sorted(CLIENTS)
    assert all(p.rounds == 1 for p in v1.privacy.clients)


async def test_the_keyholder_refuses_a_statistics_round_below_its_minimum(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    keys = make_keys(tmp_path / "keys")
    h = Harness(broker.bootstrap, keys, tmp_path / "state")
    cfg = config(keys, h.model, rounds=1, stats_features=DIM, min_clients=2, deadline_s=1.0)
    async with running(h):
        await h.launch(h.keyholder())  # its own minimum: 3
        await h.launch(h.aggregator())
        for i, cid in enumerate((A, B)):
            await h.launch(h.client(cid, RawTrainer(i)))
        await h.launch(h.coordinator(cfg))
        letters = await dead_letters(h.bootstrap, [h.topics.sums], want=1, timeout_s=40.0)
        models = await read_models(h, 1, timeout_s=3.0)
    assert [d.reason for d in letters] == [RejectReason.REJECT_REASON_TOO_FEW_CONTRIBUTORS]
    assert models == []  # the two hospitals' moments were never decrypted: no standardiser, no version 0
