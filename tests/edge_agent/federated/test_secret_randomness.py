"""A hospital's round is a function of its secret: with everything else public, another secret gives another
update; the same secret after a restart (state and accountant read back from the outbox) gives the same bits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_agent.federated._client_core import ClientCore, DpPolicyViolation
from edge_agent.federated._client_state import load_outbox_state, put_with_state
from edge_agent.federated._data import load_federated_breast_cancer
from edge_agent.federated._local import DpSgdTrainer
from edge_agent.federated._randomness import KeyedStream, derive_key
from schemas import DpPolicy, MaskKind, ModelVersion, RoundAnnouncement, StragglerMode
from streams import Outbox
from streams.federated import create_client_secret, load_client_secret, max_values_per_plaintext

KEY_BITS = 1024
SIGMA = 1.0


def _trainer() -> DpSgdTrainer:
    split = load_federated_breast_cancer(5, alpha=0.5, seed=0, min_per_client=20)
    return DpSgdTrainer(split.hospitals[1], batch_size=8, noise_multiplier=SIGMA, max_grad_norm=0.5, seed=0)


def _ann(round_id: int, trainer: DpSgdTrainer, **policy: float) -> RoundAnnouncement:
    dp = {"noise_multiplier": SIGMA, "max_sample_rate": trainer.sample_rate, "max_grad_norm": 0.5, "delta": 1e-5}
    dp.update(policy)
    return RoundAnnouncement(
        model_name="m", round_id=round_id, model_version=0, invited=["c"], min_clients=3, max_clients=4,
        clip_norm=10.0, quant_bits=16, quant_range=10.0, mask_kind=MaskKind.MASK_KIND_RANDOM_K, mask_seed=5,
        mask_k=10, paillier_key_id="k", values_per_plaintext=max_values_per_plaintext(KEY_BITS, 16, 4),
        num_params=trainer.num_params, num_shards=1, key_bits=KEY_BITS,
        straggler_mode=StragglerMode.STRAGGLER_MODE_DROP, noise_std=0.05,
        dp_policy=DpPolicy(max_steps_per_round=trainer.steps_per_round, **dp),
    )  # fmt: skip


def _core(secret: bytes) -> ClientCore:
    trainer = _trainer()
    core = ClientCore("c", trainer, secret)
    core.on_model(ModelVersion(model_name="m", version=0, round_id=0), trainer.initial_params(0))
    return core


def test_the_secret_is_made_in_the_clients_directory_only(tmp_path: Path) -> None:
    assert create_client_secret(tmp_path / "a") and not create_client_secret(tmp_path / "a")
    assert create_client_secret(tmp_path / "b")
    a, b = load_client_secret(tmp_path / "a"), load_client_secret(tmp_path / "b")
    assert len(a) == 32 and a != b
    assert ((tmp_path / "a" / "fl" / "client_secret.json").stat().st_mode & 0o777) == 0o600


def test_keyed_streams_are_reproducible_and_key_dependent() -> None:
    k1, k2 = derive_key(b"s" * 32, "noise", 1, 0), derive_key(b"s" * 32, "noise", 1, 1)
    assert k1 != k2 and k1 != derive_key(b"t" * 32, "noise", 1, 0)
    z = KeyedStream(k1).normal(20000)
    assert np.array_equal(z, KeyedStream(k1).normal(20000))
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1.0) < 0.05  # standard normal (seeded, not flaky)
    u = KeyedStream(k2).uniform(10000)
    assert u.min() > 0 and u.max() < 1


def test_another_secret_gives_another_update_with_everything_else_public() -> None:
    a, b = _core(b"\x01" * 32), _core(b"\x02" * 32)
    qa, qb = a.quantize(_ann(1, a.trainer)), b.quantize(_ann(1, b.trainer))  # type: ignore[arg-type]
    assert not np.array_equal(qa.result.update, qb.result.update)  # DP-SGD noise and sampling differ
    assert not np.array_equal(qa.quantized, qb.quantized)


def test_a_restart_with_the_secret_reproduces_the_round_bit_for_bit(tmp_path: Path) -> None:
    secret = b"\x07" * 32
    first = _core(secret)
    trainer = first.trainer
    assert isinstance(trainer, DpSgdTrainer)
    q1 = first.quantize(_ann(1, trainer))
    outbox = Outbox(tmp_path / "outbox.db")
    put_with_state(outbox, first, [])
    q2 = first.quantize(_ann(2, trainer))
    outbox.close()

    restarted = _core(secret)  # a fresh process: state and accountant come back from the outbox database
    reopened = Outbox(tmp_path / "outbox.db")
    assert load_outbox_state(restarted, reopened)
    reopened.close()
    assert restarted.last_round == 1 and restarted.rounds_trained == 1
    assert restarted.history == first.history[:1]
    r2 = restarted.quantize(_ann(2, restarted.trainer))  # type: ignore[arg-type]
    assert r2.quantized.tobytes() == q2.quantized.tobytes()
    assert r2.result.update.tobytes() == q2.result.update.tobytes()
    assert restarted.history == first.history and len(first.history) == 2
    assert restarted.epsilon() == pytest.approx(first.epsilon(), rel=1e-12)
    assert restarted.epsilon() > q1.result.epsilon > 0  # the spending of round 1 was not forgotten


def test_a_round_below_the_announced_policy_is_refused() -> None:
    core = _core(b"\x03" * 32)
    trainer = core.trainer
    assert isinstance(trainer, DpSgdTrainer)
    with pytest.raises(DpPolicyViolation, match="noise multiplier"):
        core.quantize(_ann(1, trainer, noise_multiplier=2 * SIGMA))
    with pytest.raises(DpPolicyViolation, match="sample rate"):
        core.quantize(_ann(1, trainer, max_sample_rate=trainer.sample_rate / 2))
    assert core.last_round == 0 and core.history == []  # nothing recorded as sent
