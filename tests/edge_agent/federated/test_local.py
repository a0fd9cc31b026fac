"""Opacus DP-SGD and plain-SGD local trainers behind the LocalTrainer protocol."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from edge_agent.federated import (
    DpSgdTrainer,
    FlTrainingConfig,
    HospitalData,
    LocalResult,
    LocalTrainer,
    NonPrivateTrainer,
    build_trainer,
    load_federated_breast_cancer,
)
from streams.federated import RDP_ORDERS, epsilon_for

SIGMA = 1.1
DELTA = 1e-5


@pytest.fixture(autouse=True)
def deterministic_torch() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def hospital() -> tuple[HospitalData, tuple[np.ndarray, np.ndarray]]:
    fs = load_federated_breast_cancer(3, alpha=0.5, seed=0, min_per_client=40)
    return fs.hospitals[0], (fs.test.X, fs.test.y)


def _dp(hospital: tuple[HospitalData, tuple[np.ndarray, np.ndarray]], seed: int = 0) -> DpSgdTrainer:
    data, test = hospital
    return DpSgdTrainer(data, test, batch_size=8, lr=0.5, noise_multiplier=SIGMA, max_grad_norm=0.5, seed=seed)


def test_one_round_update_and_epsilon_match_opacus(
    hospital: tuple[HospitalData, tuple[np.ndarray, np.ndarray]],
) -> None:
    trainer = _dp(hospital)
    as_protocol: LocalTrainer = trainer
    start = as_protocol.initial_params(0)
    assert start.shape == (as_protocol.num_params,) == (31,)
    result = as_protocol.train(start, 0, np.random.default_rng(0))
    assert isinstance(result, LocalResult)
    assert result.update.shape == (31,) and result.update.dtype == np.float64
    assert np.all(np.isfinite(result.update)) and np.linalg.norm(result.update) > 0
    assert result.num_examples == hospital[0].n and result.delta == DELTA
    steps = trainer.steps_per_round
    assert steps == math.ceil(hospital[0].n / 8) and trainer.sample_rate == pytest.approx(1 / steps)
    assert result.epsilon > 0
    # the same number three ways: streams.federated, opacus's RDPAccountant on the trainer's history, its default
    from opacus.accountants import RDPAccountant

    assert result.epsilon == pytest.approx(epsilon_for(SIGMA, trainer.sample_rate, steps, DELTA), rel=1e-12)
    assert trainer.accountant_history() == [(SIGMA, trainer.sample_rate, steps)]
    assert result.round_dp == (SIGMA, trainer.sample_rate, steps)
    accountant = RDPAccountant()
    accountant.history = trainer.accountant_history()
    assert result.epsilon == pytest.approx(accountant.get_epsilon(DELTA, alphas=list(RDP_ORDERS)), rel=1e-12)
    assert result.epsilon == pytest.approx(accountant.get_epsilon(DELTA), rel=1e-12)  # opacus default orders
    assert set(result.metrics) == {"steps", "noise_multiplier", "sample_rate", "update_norm"}


def test_epsilon_accumulates_across_rounds(hospital: tuple[HospitalData, tuple[np.ndarray, np.ndarray]]) -> None:
    trainer = _dp(hospital)
    params = trainer.initial_params(0)
    rng = np.random.default_rng(1)
    eps = []
    for r in range(3):
        result = trainer.train(params, r, rng)
        params = params + result.update
        eps.append(result.epsilon)
    assert eps[0] < eps[1] < eps[2]
    assert trainer.steps == 3 * trainer.steps_per_round
    assert eps[2] == pytest.approx(epsilon_for(SIGMA, trainer.sample_rate, trainer.steps, DELTA), rel=1e-12)


def test_seeded_runs_reproduce_the_same_update(hospital: tuple[HospitalData, tuple[np.ndarray, np.ndarray]]) -> None:
    global_state = torch.get_rng_state()
    a, b = _dp(hospital), _dp(hospital)
    start = a.initial_params(3)
    ra = a.train(start, 4, np.random.default_rng(9))
    rb = b.train(start, 4, np.random.default_rng(9))
    np.testing.assert_array_equal(ra.update, rb.update)
    assert ra.epsilon == rb.epsilon
    rc = _dp(hospital).train(start, 4, np.random.default_rng(10))
    assert not np.array_equal(ra.update, rc.update)
    assert torch.equal(global_state, torch.get_rng_state())  # training never touched torch's global RNG


def test_noise_and_sampling_come_from_the_round_key_alone(
    hospital: tuple[HospitalData, tuple[np.ndarray, np.ndarray]],
) -> None:
    """Everything public (data, model, trainer seed, round) and only the key differs: a different update. The
    same key on a fresh trainer (a restart): the same update bit for bit."""
    start = _dp(hospital).initial_params(0)
    a = _dp(hospital, seed=0).train_keyed(start, 1, b"\x01" * 32)
    b = _dp(hospital, seed=0).train_keyed(start, 1, b"\x02" * 32)
    again = _dp(hospital, seed=0).train_keyed(start, 1, b"\x01" * 32)
    assert not np.array_equal(a.update, b.update)
    assert a.update.tobytes() == again.update.tobytes()
    restored = _dp(hospital)
    restored.restore_accountant([(SIGMA, restored.sample_rate, restored.steps_per_round)])
    assert restored.epsilon == pytest.approx(a.epsilon, rel=1e-12)  # a restart does not forget the spending


def test_target_epsilon_is_met_after_the_planned_rounds(
    hospital: tuple[HospitalData, tuple[np.ndarray, np.ndarray]],
) -> None:
    data, test = hospital
    trainer = DpSgdTrainer(data, test, batch_size=32, target_epsilon=4.0, rounds_planned=3)
    params, rng = trainer.initial_params(0), np.random.default_rng(0)
    for r in range(3):
        result = trainer.train(params, r, rng)
        params = params + result.update
    assert 3.9 <= result.epsilon <= 4.0
    with pytest.raises(ValueError, match="exactly one"):
        DpSgdTrainer(data, test, noise_multiplier=1.0, target_epsilon=4.0)


def test_training_improves_the_test_metrics(hospital: tuple[HospitalData, tuple[np.ndarray, np.ndarray]]) -> None:
    trainer = _dp(hospital)
    params = trainer.initial_params(0)
    before = trainer.evaluate(params)
    rng = np.random.default_rng(0)
    for r in range(5):
        params = params + trainer.train(params, r, rng).update
    after = trainer.evaluate(params)
    assert set(after) == {"accuracy", "auc", "loss", "n"}
    assert after["loss"] < before["loss"] and after["accuracy"] > 0.85


def test_non_private_trainer_interface(hospital: tuple[HospitalData, tuple[np.ndarray, np.ndarray]]) -> None:
    data, test = hospital
    trainer: LocalTrainer = NonPrivateTrainer(data, test, epochs=5, batch_size=16, lr=0.5)
    start = trainer.initial_params(0)
    r1 = trainer.train(start, 0, np.random.default_rng(0))
    r2 = NonPrivateTrainer(data, test, epochs=5, batch_size=16, lr=0.5).train(start, 0, np.random.default_rng(0))
    np.testing.assert_array_equal(r1.update, r2.update)
    assert r1.epsilon == math.inf and r1.delta == 0.0 and r1.num_examples == data.n
    assert {"train_loss", "train_accuracy"} <= set(r1.metrics)
    assert trainer.evaluate(start + r1.update)["accuracy"] > 0.9


def test_build_trainer_follows_the_config(hospital: tuple[HospitalData, tuple[np.ndarray, np.ndarray]]) -> None:
    data, test = hospital
    cfg = FlTrainingConfig(noise_multiplier=2.0, batch_size=16, batches_per_epoch=0)
    dp = build_trainer(cfg, data, test, rounds_planned=5, seed=1)
    assert isinstance(dp, DpSgdTrainer) and dp.noise_multiplier == 2.0
    assert dp.steps_per_round == math.ceil(data.n / 16)
    fixed = build_trainer(FlTrainingConfig(batches_per_epoch=6), data, test, rounds_planned=5, seed=1)
    assert isinstance(fixed, DpSgdTrainer) and fixed.steps_per_round == 6 and fixed.sample_rate == 1 / 6
    assert isinstance(build_trainer(cfg, data, test, rounds_planned=5, seed=1, private=False), NonPrivateTrainer)
