"""The FL client's codec steps without transport: the same integers as ``client_encode``, error feedback,
and what a late round turns into in drop and fold mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_agent.federated._client_core import ClientCore, quantize_update
from edge_agent.federated._trainer import LocalResult
from schemas import MaskKind, ModelVersion, RoundAnnouncement, StragglerMode
from streams.federated import (
    EncodeSpec,
    ErrorFeedback,
    PackingSpec,
    PrivateKey,
    PublicKey,
    QuantSpec,
    RoundSpec,
    client_encode,
    clip_by_l2,
    decrypt_aggregate,
    dequantize,
    generate_keypair,
    pack,
    staleness_weight,
)

KEY_BITS = 1024
SECRET = bytes(range(32))
DIM = 8


class ConstantTrainer:
    """Returns the same update every round: makes folded mass visible."""

    def __init__(self, update: np.ndarray) -> None:
        self._update = update

    @property
    def num_params(self) -> int:
        return int(self._update.size)

    def initial_params(self, seed: int) -> np.ndarray:
        return np.zeros(self.num_params)

    def train(self, global_params: np.ndarray, round_id: int, rng: np.random.Generator) -> LocalResult:
        return LocalResult(self._update.copy(), 10, 0.1 * round_id, 1e-5, {})

    def evaluate(self, params: np.ndarray) -> dict[str, float]:
        return {}


@pytest.fixture(scope="module")
def keypair() -> tuple[PublicKey, PrivateKey]:
    return generate_keypair(KEY_BITS)


def _ann(round_id: int, mode: StragglerMode, pub: PublicKey, *, mask_k: int = DIM) -> RoundAnnouncement:
    from streams.federated import key_id, max_values_per_plaintext

    return RoundAnnouncement(
        model_name="m", round_id=round_id, model_version=round_id - 1, invited=["c"], min_clients=1, max_clients=4,
        clip_norm=10.0, quant_bits=16, quant_range=10.0, mask_kind=MaskKind.MASK_KIND_RANDOM_K, mask_seed=5,
        mask_k=mask_k,
        paillier_key_id=key_id(pub), values_per_plaintext=max_values_per_plaintext(KEY_BITS, 16, 4),
        num_params=DIM, num_shards=1, key_bits=KEY_BITS, straggler_mode=mode, staleness_alpha=0.5, max_staleness=2,
    )  # fmt: skip


def test_quantize_update_is_client_encode_without_the_encryption(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pub, priv = keypair
    spec = EncodeSpec(
        clip_norm=1.0,
        quant=QuantSpec(bits=12, range=1.0),
        packing=PackingSpec.maximal(bits=12, max_clients=4, key_bits=KEY_BITS),
        noise_std=0.01,
    )
    update = np.random.default_rng(1).normal(size=50)
    mask = np.arange(0, 50, 2)
    ef, ef2 = ErrorFeedback(50), ErrorFeedback(50)
    q, taken = quantize_update(update, mask, ef, spec, np.random.default_rng(9))
    cts = client_encode(update, mask, ef2, spec, pub, None, np.random.default_rng(9))
    assert decrypt_aggregate(priv, cts) == pack(q, spec.packing)
    clipped = clip_by_l2(update[mask], 1.0)
    assert np.linalg.norm(update[mask]) > 1.0  # clipping bites here
    np.testing.assert_array_equal(taken[mask], clipped)
    assert not taken[1::2].any()
    # mass is conserved: what was sent plus the residual is the update; the clipping error is not thrown away
    np.testing.assert_allclose(taken + ef.residual, update, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(ef.residual, ef2.residual)


@pytest.mark.parametrize("mode", [StragglerMode.STRAGGLER_MODE_DROP, StragglerMode.STRAGGLER_MODE_FOLD])
def test_a_late_round_is_dropped_or_folded_with_its_staleness_weight(
    keypair: tuple[PublicKey, PrivateKey], mode: StragglerMode
) -> None:
    pub, _ = keypair
    u = np.linspace(-1.0, 1.0, DIM)
    core, reference = ClientCore("c", ConstantTrainer(u), SECRET), ClientCore("c", ConstantTrainer(u), SECRET)
    for c in (core, reference):
        c.on_model(ModelVersion(model_name="m", version=0, round_id=0), np.zeros(DIM))
        assert c.ready_for(_ann(1, mode, pub))
        c.quantize(_ann(1, mode, pub))
    assert not core.ready_for(_ann(1, mode, pub))  # one update per round
    core.on_model(ModelVersion(model_name="m", version=1, round_id=1, contributors=["x", "y"]), np.zeros(DIM))
    reference.on_model(ModelVersion(model_name="m", version=1, round_id=1, contributors=["c"]), np.zeros(DIM))
    assert core.late_rounds == [1] and reference.late_rounds == []
    got = core.quantize(_ann(2, mode, pub))
    on_time = reference.quantize(_ann(2, mode, pub))
    spec = RoundSpec.from_announcement(_ann(2, mode, pub))
    extra = dequantize(got.quantized, spec.quant) - dequantize(on_time.quantized, spec.quant)
    weight = staleness_weight(1, 0.5) if mode == StragglerMode.STRAGGLER_MODE_FOLD else 0.0
    np.testing.assert_allclose(extra, weight * u, atol=2 * spec.quant.step)


def test_error_feedback_carries_what_the_mask_left_out(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pub, _ = keypair
    u = np.ones(DIM)
    core = ClientCore("c", ConstantTrainer(u), SECRET)
    core.on_model(ModelVersion(model_name="m", version=0, round_id=0), np.zeros(DIM))
    ann = _ann(1, StragglerMode.STRAGGLER_MODE_DROP, pub, mask_k=3)
    core.quantize(ann)
    mask = RoundSpec.from_announcement(ann).mask()
    assert core.ef is not None
    residual = core.ef.residual
    assert not residual[mask].any() and np.count_nonzero(residual) == DIM - 3


def test_the_client_state_survives_a_restart(keypair: tuple[PublicKey, PrivateKey], tmp_path: Path) -> None:
    from edge_agent.federated._client_state import load_client_state, save_client_state

    pub, _ = keypair
    u = np.linspace(-1.0, 1.0, DIM)
    core = ClientCore("c", ConstantTrainer(u), SECRET)
    core.on_model(ModelVersion(model_name="m", version=0, round_id=0), np.zeros(DIM))
    core.quantize(_ann(1, StragglerMode.STRAGGLER_MODE_FOLD, pub, mask_k=3))
    path = tmp_path / "state.npz"
    save_client_state(core, path)
    restored = ClientCore("c", ConstantTrainer(u), SECRET)
    assert load_client_state(restored, path) and not load_client_state(restored, tmp_path / "none.npz")
    assert restored.last_round == 1 and restored.ef is not None and core.ef is not None
    np.testing.assert_array_equal(restored.ef.residual, core.ef.residual)
    np.testing.assert_array_equal(restored.submitted[1].taken, core.submitted[1].taken)
    for c in (core, restored):  # the log then says round 1 went without this client: both fold the same
        c.on_model(ModelVersion(model_name="m", version=1, round_id=1), np.zeros(DIM))
    a = core.quantize(_ann(2, StragglerMode.STRAGGLER_MODE_FOLD, pub, mask_k=3))
    b = restored.quantize(_ann(2, StragglerMode.STRAGGLER_MODE_FOLD, pub, mask_k=3))
    np.testing.assert_array_equal(a.quantized, b.quantized)
    with pytest.raises(ValueError):
        load_client_state(ClientCore("other", ConstantTrainer(u), SECRET), path)
