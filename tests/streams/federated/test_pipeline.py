"""End to end: clients encode, aggregator adds ciphertexts, keyholder decrypts, coordinator decodes."""

from __future__ import annotations

import numpy as np
import pytest

from streams.federated import (
    EncodeSpec,
    EncryptedAccumulator,
    ErrorFeedback,
    ObfuscatorPool,
    PackingOverflow,
    PackingSpec,
    PrivateKey,
    PublicKey,
    QuantSpec,
    ciphertext_bytes,
    ciphertext_from_bytes,
    ciphertext_to_bytes,
    client_encode,
    clip_by_l2,
    decode_aggregate,
    decrypt_aggregate,
    generate_keypair,
    random_k_mask,
    scatter_masked,
    top_k_mask,
)

KEY_BITS = 1024


@pytest.fixture(scope="module")
def keypair() -> tuple[PublicKey, PrivateKey]:
    return generate_keypair(KEY_BITS)


def _spec(max_clients: int, bits: int = 16) -> EncodeSpec:
    return EncodeSpec(
        clip_norm=1.0,
        quant=QuantSpec(bits=bits, range=1.0),
        packing=PackingSpec.maximal(bits=bits, max_clients=max_clients, key_bits=KEY_BITS),
    )


@pytest.mark.parametrize("mask_kind", ["random", "top"])
def test_round_trip_matches_plain_sum_within_quantisation_error(
    keypair: tuple[PublicKey, PrivateKey], mask_kind: str
) -> None:
    pub, priv = keypair
    dim, k, n_clients = 3000, 150, 5
    spec = _spec(max_clients=8)
    rng = np.random.default_rng(7)
    prev_global = rng.normal(size=dim)
    mask = random_k_mask(dim, k, seed=99) if mask_kind == "random" else top_k_mask(prev_global, k)
    num_ct = spec.packing.num_plaintexts(k)

    updates = [rng.normal(scale=0.05, size=dim) for _ in range(n_clients)]
    efs = [ErrorFeedback(dim) for _ in range(n_clients)]
    for ef in efs:  # give clients a non-zero residual from a previous round
        ef.record_sent(ef.compensate(rng.normal(scale=0.01, size=dim)), mask)
    expected = sum(clip_by_l2(ef.compensate(u)[mask], spec.clip_norm) for ef, u in zip(efs, updates, strict=True))

    pool = ObfuscatorPool(pub)
    pool.fill(num_ct * 2, threads=2)  # the rest falls back to phe
    aggregator = EncryptedAccumulator(pub, num_ct, spec.packing.max_clients)
    for i, (u, ef) in enumerate(zip(updates, efs, strict=True)):
        before = ef.compensate(u)
        cts = client_encode(u, mask, ef, spec, pub, pool, np.random.default_rng(1000 + i))
        assert len(cts) == num_ct
        np.testing.assert_array_equal(ef.residual[mask], 0.0)
        np.testing.assert_array_equal(np.delete(ef.residual, mask), np.delete(before, mask))
        wire = [ciphertext_to_bytes(pub, c) for c in cts]  # what would travel
        assert sum(map(len, wire)) == num_ct * ciphertext_bytes(pub)
        aggregator.add([ciphertext_from_bytes(pub, b) for b in wire])
    assert len(pool) == 0

    total = decode_aggregate(decrypt_aggregate(priv, aggregator.ciphertexts), spec, n_clients, k)
    # Each client's stochastic rounding moves a value by less than one step.
    assert np.all(np.abs(total - expected) < n_clients * spec.quant.step)
    full = scatter_masked(total / n_clients, mask, dim)
    assert np.count_nonzero(np.delete(full, mask)) == 0


def test_clipping_bounds_the_contribution(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pub, priv = keypair
    spec = _spec(max_clients=2)
    dim = 40
    mask = np.arange(dim)
    huge = np.full(dim, 100.0)
    cts = client_encode(huge, mask, ErrorFeedback(dim), spec, pub, None, np.random.default_rng(0))
    total = decode_aggregate(decrypt_aggregate(priv, cts), spec, 1, dim)
    np.testing.assert_allclose(total, np.full(dim, 1.0 / np.sqrt(dim)), atol=spec.quant.step)


def test_noise_share_is_added(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pub, priv = keypair
    base = _spec(max_clients=2)
    spec = EncodeSpec(clip_norm=base.clip_norm, quant=base.quant, packing=base.packing, noise_std=0.05)
    dim = 400
    cts = client_encode(np.zeros(dim), np.arange(dim), ErrorFeedback(dim), spec, pub, None, np.random.default_rng(3))
    noise = decode_aggregate(decrypt_aggregate(priv, cts), spec, 1, dim)
    assert abs(float(noise.std()) - 0.05) < 0.01  # 400 draws: the sample std is within ~0.002 of 0.05


def test_decode_refuses_more_clients_than_packing_allows(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pub, priv = keypair
    spec = _spec(max_clients=3)
    update = np.zeros(10)
    update[0] = 5.0  # clipped to 1.0 == range: quantises to the top level
    cts = client_encode(update, np.arange(10), ErrorFeedback(10), spec, pub, None, np.random.default_rng(0))
    acc = EncryptedAccumulator(pub, len(cts), 3)
    for _ in range(3):
        acc.add(cts)
    with pytest.raises(PackingOverflow):
        acc.add(cts)
    with pytest.raises(PackingOverflow):
        decode_aggregate(decrypt_aggregate(priv, acc.ciphertexts), spec, 4, 10)
    with pytest.raises(PackingOverflow):  # 3 contributions claimed as 2: slot 0 holds 3 * levels
        decode_aggregate(decrypt_aggregate(priv, acc.ciphertexts), spec, 2, 10)


def test_spec_rejects_mismatched_bits() -> None:
    with pytest.raises(ValueError):
        EncodeSpec(
            clip_norm=1.0,
            quant=QuantSpec(bits=8, range=1.0),
            packing=PackingSpec(bits=12, max_clients=2, values_per_plaintext=4, key_bits=KEY_BITS),
        )


def test_key_smaller_than_packing_is_refused(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pub, _ = keypair
    spec = EncodeSpec(
        clip_norm=1.0, quant=QuantSpec(bits=8, range=1.0), packing=PackingSpec.maximal(bits=8, max_clients=2)
    )
    with pytest.raises(ValueError):
        client_encode(np.zeros(4), np.arange(4), ErrorFeedback(4), spec, pub, None, np.random.default_rng(0))
