"""The statistics round's maths: exact fixed-point moments, their limbs on the step-1 grid, exact decoding."""

from __future__ import annotations

import numpy as np
import pytest

from schemas import DpPolicy, MaskKind, RoundAnnouncement
from streams.federated import (
    FRACTION_BITS,
    LIMB_BITS,
    LIMBS,
    STATS_QUANT_RANGE,
    PackingSpec,
    QuantSpec,
    add_moments,
    decode_moment_sums,
    dequantize_sum,
    encode_moments,
    feature_moments,
    moment_values,
    pack,
    standardiser_from_metrics,
    standardiser_from_moments,
    standardiser_metrics,
    stats_num_params,
    stats_round_violation,
    stochastic_quantize,
    unpack,
)

GRID = QuantSpec(bits=LIMB_BITS, range=STATS_QUANT_RANGE)


def _hospitals() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    scale, shift = np.array([0.01, 2.0, 300.0]), np.array([1000.0, -5.0, 0.0])
    return [rng.normal(size=(n, 3)) * scale + shift for n in (17, 40, 9)]


def test_the_grid_has_step_one_and_gives_limbs_back_exactly() -> None:
    assert GRID.step == 1.0
    limbs = encode_moments(feature_moments(_hospitals()[0]))
    q = stochastic_quantize(moment_values(limbs), GRID, np.random.default_rng(0))
    np.testing.assert_array_equal(q, limbs)


def test_the_secure_sum_of_limbs_decodes_to_the_exact_sum_of_moments() -> None:
    parts = [feature_moments(x) for x in _hospitals()]
    limbs = [encode_moments(m) for m in parts]
    packing = PackingSpec.maximal(bits=LIMB_BITS, max_clients=4, key_bits=1024)
    summed = [sum(col) for col in zip(*(pack(v, packing) for v in limbs), strict=True)]  # plaintext slot sums
    slots = unpack(summed, packing, limbs[0].size)
    decoded = decode_moment_sums(dequantize_sum(slots, GRID, len(parts)), len(parts))
    assert decoded == add_moments(*parts)
    assert decoded[2] < 0  # a negative sum survives two's complement


def test_the_standardiser_is_the_pooled_statistics_of_the_rounded_values() -> None:
    xs = _hospitals()
    mean, std = standardiser_from_moments(add_moments(*(feature_moments(x) for x in xs)))
    pooled = np.round(np.concatenate(xs) * 2.0**FRACTION_BITS) / 2.0**FRACTION_BITS
    np.testing.assert_allclose(mean, pooled.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(std, pooled.std(axis=0), rtol=1e-9)  # two-pass numpy vs exact rationals


def test_a_constant_feature_is_only_centred() -> None:
    mean, std = standardiser_from_moments(feature_moments(np.full((5, 1), 2.5)))
    assert mean.tolist() == [2.5] and std.tolist() == [1.0]


def test_metrics_round_trip_and_broken_ones_are_refused() -> None:
    m = standardiser_metrics(np.array([1.0, 2.0]), np.array([0.5, 3.0]), rows=10, hospitals=3)
    found = standardiser_from_metrics(m)
    assert found is not None and found[0].tolist() == [1.0, 2.0] and found[1].tolist() == [0.5, 3.0]
    assert standardiser_from_metrics({"round_s": 1.0}) is None
    with pytest.raises(ValueError, match="lacks"):
        standardiser_from_metrics({k: v for k, v in m.items() if k != "standardiser.std.1"})
    with pytest.raises(ValueError, match="positive"):
        standardiser_from_metrics({**m, "standardiser.std.0": 0.0})


@pytest.mark.parametrize(
    ("bad", "why"),
    [(2.5, "not an integer"), (1 << (LIMBS * LIMB_BITS - 17), "range")],
)
def test_encode_refuses_what_does_not_fit(bad: object, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        encode_moments([3, bad])  # type: ignore[list-item]


def test_decode_refuses_values_that_are_not_limb_sums() -> None:
    with pytest.raises(ValueError, match="not a sum of limbs"):
        decode_moment_sums(np.full(LIMBS, 0.25), 1)
    with pytest.raises(ValueError, match="multiple"):
        decode_moment_sums(np.zeros(LIMBS + 1), 1)


def _stats_announcement(**overrides: object) -> RoundAnnouncement:
    k = stats_num_params(3)
    fields: dict[str, object] = {
        "model_name": "m", "round_id": 0, "num_params": k, "mask_k": k, "quant_bits": LIMB_BITS,
        "quant_range": STATS_QUANT_RANGE, "mask_kind": MaskKind.MASK_KIND_RANDOM_K,
    }  # fmt: skip
    fields.update(overrides)
    return RoundAnnouncement(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({}, None),
        ({"round_id": 1}, "not the statistics round"),
        ({"dp_policy": DpPolicy(noise_multiplier=1.0)}, "no DP policy"),
        ({"mask_k": 7}, "every coordinate"),
        ({"noise_std": 0.1}, "no noise share"),
        ({"quant_range": 10.0}, "step-1 grid"),
        ({"num_params": stats_num_params(3) + 1, "mask_k": stats_num_params(3) + 1}, "moments of"),
    ],
)
def test_only_a_well_formed_statistics_round_passes(overrides: dict[str, object], why: str | None) -> None:
    found = stats_round_violation(_stats_announcement(**overrides))
    assert found is None if why is None else (found is not None and why in found)
