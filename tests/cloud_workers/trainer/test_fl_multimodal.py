"""Federated fine-tuning of the multimodal fusion head: three hospitals, each with its own synthetic CT + report
cases, run DP-SGD (opacus) on the policy net, gate and head with frozen encoders, and the real FL roles
(coordinator, aggregator with only the Paillier public key, keyholder) on the real broker combine them through
the packed-Paillier rounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cloud_workers.federated import Coordinator
from cloud_workers.trainer import SyntheticConfig, generate_synthetic
from edge_agent.federated._multimodal import MultimodalFlTrainer, multimodal_trainer
from streams import BusMetrics
from tests.cloud_workers.federated.harness import IDS, Harness, config, make_keys, params_of, read_models, running
from tests.streams.multimodal.helpers import tiny_config

pytestmark = [pytest.mark.broker, pytest.mark.slow]

HOSPITALS = ("fl-client-a", "fl-client-b", "fl-client-c")


def _trainers(manifest: Path, tiny_bert: Path) -> dict[str, MultimodalFlTrainer]:
    network = tiny_config(tiny_bert).to_dict()
    return {
        cid: multimodal_trainer(
            manifest=str(manifest),
            hospital_index=i,
            hospitals=len(HOSPITALS),
            rounds=2,
            seed=0,
            text_encoder_dir=str(tiny_bert),
            network=network,
            noise_multiplier=2.0,
            batch_size=2,
            lr=0.05,
            max_grad_norm=1.0,
        )
        for i, cid in enumerate(HOSPITALS)
    }


def test_local_dp_sgd_round_is_keyed_and_accounted(tmp_path: Path, tiny_bert: Path) -> None:
    manifest = generate_synthetic(tmp_path / "data", SyntheticConfig(cases=6, size=(36, 36, 10), concordant=True))
    trainer = _trainers(manifest, tiny_bert)[HOSPITALS[0]]
    start = trainer.initial_params(0)
    assert start.shape == (trainer.num_params,)
    a = trainer.train_keyed(start, 1, b"k" * 32)
    b = trainer.train_keyed(start, 1, b"k" * 32)
    c = trainer.train_keyed(start, 1, b"j" * 32)
    np.testing.assert_array_equal(a.update, b.update)  # the round key fixes sampling and noise
    assert not np.array_equal(a.update, c.update)
    assert a.round_dp == (2.0, trainer.sample_rate, trainer.steps_per_round)
    assert 0 < a.epsilon < b.epsilon < c.epsilon  # every round is accounted
    assert set(trainer.evaluate(start + a.update)) == {"accuracy", "auc", "loss", "n"}
    with pytest.raises(ValueError):
        trainer.train_keyed(start[:-1], 2, b"k" * 32)


async def test_three_hospitals_fine_tune_the_fusion_head(broker: object, tmp_path: Path, tiny_bert: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    h = Harness(broker.bootstrap, keys, tmp_path / "state")  # type: ignore[attr-defined]
    manifest = generate_synthetic(tmp_path / "data", SyntheticConfig(cases=18, size=(36, 36, 10), concordant=True))
    trainers = _trainers(manifest, tiny_bert)
    init = trainers[HOSPITALS[0]].initial_params(0)
    for t in trainers.values():  # the same frozen encoders and starting head everywhere
        np.testing.assert_array_equal(t.initial_params(0), init)
    cfg = config(
        keys, h.model, rounds=2, invited=HOSPITALS, min_clients=3, mask_fraction=0.02, clip_norm=5.0,
        dp_noise_multiplier=2.0, dp_max_sample_rate=0.5, dp_max_steps_per_round=2, deadline_s=60.0,
    )  # fmt: skip
    async with running(h):
        await h.launch(h.keyholder())
        await h.launch(h.aggregator())
        coordinator = Coordinator(cfg, init, h.settings("coordinator"), h.keyring("coordinator"),
                                  BusMetrics("coordinator"), topics=h.topics, ids=IDS)  # fmt: skip
        await h.launch(coordinator)
        for cid in HOSPITALS:
            await h.launch(h.client(cid, trainers[cid], chunk_size=64 * 1024))
        models = await read_models(h, 3, timeout_s=150)
    assert [m.version for m in models] == [0, 1, 2]
    assert [sorted(m.contributors) for m in models[1:]] == [sorted(HOSPITALS)] * 2
    params = params_of(models)
    np.testing.assert_array_equal(params[0], init)
    assert all(np.isfinite(p).all() and p.shape == init.shape for p in params)
    moved = params[2] - params[0]
    assert 0 < np.count_nonzero(moved) <= 2 * round(0.02 * init.size)  # only the masked coordinates moved
    for t in trainers.values():
        assert np.isfinite(t.evaluate(params[2])["loss"])
        assert t.epsilon > 0  # each hospital accounted its two DP-SGD rounds
