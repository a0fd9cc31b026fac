"""Packing: slotwise sums of up to max_clients packed (and encrypted) vectors are exact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.federated import (
    PLAINTEXT_MARGIN_BITS,
    EncryptedAccumulator,
    PackedAccumulator,
    PackingOverflow,
    PackingSpec,
    PrivateKey,
    PublicKey,
    decrypt_raw,
    encrypt_packed,
    generate_keypair,
    max_values_per_plaintext,
    pack,
    unpack,
)

KEY_BITS = 1024


@pytest.fixture(scope="module")
def keypair() -> tuple[PublicKey, PrivateKey]:
    return generate_keypair(KEY_BITS)


@st.composite
def packing_cases(
    draw: st.DrawFn, max_clients_cap: int, length_min: int, length_cap: int
) -> tuple[PackingSpec, int, int, int]:
    bits = draw(st.integers(1, 32))
    max_clients = draw(st.integers(1, max_clients_cap))
    most = max_values_per_plaintext(KEY_BITS, bits, max_clients)
    vpp = draw(st.one_of(st.just(most), st.integers(1, most)))
    spec = PackingSpec(bits=bits, max_clients=max_clients, values_per_plaintext=vpp, key_bits=KEY_BITS)
    n_clients = draw(st.one_of(st.just(max_clients), st.integers(1, max_clients)))
    length = draw(st.integers(length_min, length_cap))
    seed = draw(st.integers(0, 2**32 - 1))
    return spec, n_clients, length, seed


def _client_vectors(spec: PackingSpec, n_clients: int, length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = (1 << spec.bits) - 1
    qs = rng.integers(0, top + 1, size=(n_clients, length), dtype=np.int64)
    qs[0, : length // 2] = top  # worst case for carries: full-scale values
    if n_clients > 1:
        qs[1:, : length // 2] = top
    return qs


@settings(derandomize=True, max_examples=150, deadline=None)
@given(case=packing_cases(max_clients_cap=5000, length_min=0, length_cap=400))
def test_plaintext_sum_unpacks_to_elementwise_sum(case: tuple[PackingSpec, int, int, int]) -> None:
    spec, n_clients, length, seed = case
    n_clients = min(n_clients, 60)  # keep it fast; the padding bound is exercised in the all-max test below
    qs = _client_vectors(spec, n_clients, length, seed)
    acc = PackedAccumulator(spec, length)
    for q in qs:
        packed = pack(q, spec)
        assert len(packed) == spec.num_plaintexts(length)
        assert all(0 <= p < 1 << spec.plaintext_bits for p in packed)
        np.testing.assert_array_equal(unpack(packed, spec, length), q)
        acc.add(packed)
    np.testing.assert_array_equal(acc.unpack(), qs.sum(axis=0))
    # Worst case at the full client budget: max_clients copies of an all-max vector.
    top = (1 << spec.bits) - 1
    full = [p * spec.max_clients for p in pack(np.full(length, top), spec)]
    assert unpack(full, spec, length).tolist() == [spec.max_clients * top] * length


@settings(derandomize=True, max_examples=25, deadline=None)
@given(case=packing_cases(max_clients_cap=8, length_min=1, length_cap=250))
def test_decrypted_sum_of_encrypted_packings_is_exact(
    keypair: tuple[PublicKey, PrivateKey], case: tuple[PackingSpec, int, int, int]
) -> None:
    pub, priv = keypair
    spec, n_clients, length, seed = case
    qs = _client_vectors(spec, n_clients, length, seed)
    acc = EncryptedAccumulator(pub, spec.num_plaintexts(length), spec.max_clients)
    for q in qs:
        acc.add([encrypt_packed(pub, p) for p in pack(q, spec)])
    decrypted = [decrypt_raw(priv, c) for c in acc.ciphertexts]
    np.testing.assert_array_equal(unpack(decrypted, spec, length), qs.sum(axis=0))


@pytest.mark.parametrize(("bits", "max_clients"), [(1, 1), (8, 2), (16, 10), (16, 16), (20, 17), (32, 3)])
def test_all_max_values_from_max_clients_fill_slots_without_carry(
    keypair: tuple[PublicKey, PrivateKey], bits: int, max_clients: int
) -> None:
    pub, priv = keypair
    spec = PackingSpec.maximal(bits=bits, max_clients=max_clients, key_bits=KEY_BITS)
    assert spec.plaintext_bits <= KEY_BITS - PLAINTEXT_MARGIN_BITS < spec.plaintext_bits + spec.slot_bits
    top = (1 << bits) - 1
    length = spec.values_per_plaintext + 3  # one full plaintext and a partial one
    ct = [encrypt_packed(pub, p) for p in pack(np.full(length, top), spec)]
    acc = EncryptedAccumulator(pub, len(ct), max_clients)
    for _ in range(max_clients):
        acc.add(ct)
    sums = unpack([decrypt_raw(priv, c) for c in acc.ciphertexts], spec, length)
    assert sums.tolist() == [max_clients * top] * length
    with pytest.raises(PackingOverflow):
        acc.add(ct)


def test_one_client_too_many_would_carry_and_is_refused() -> None:
    spec = PackingSpec(bits=8, max_clients=4, values_per_plaintext=3, key_bits=KEY_BITS)
    full = pack(np.full(3, 255), spec)
    acc = PackedAccumulator(spec, 3)
    for _ in range(4):
        acc.add(full)
    with pytest.raises(PackingOverflow):
        acc.add(full)
    # Summing a fifth client anyway really would corrupt the slots (the padding is tight).
    raw = [a + b for a, b in zip(acc.total, full, strict=True)]
    with pytest.raises(PackingOverflow):
        unpack(raw, spec, 3)


def test_pack_refuses_values_wider_than_bits() -> None:
    spec = PackingSpec(bits=4, max_clients=2, values_per_plaintext=10, key_bits=KEY_BITS)
    for bad in ([16], [-1]):
        with pytest.raises(PackingOverflow):
            pack(np.array(bad), spec)


def test_spec_refuses_more_slots_than_the_key_holds() -> None:
    most = max_values_per_plaintext(KEY_BITS, 16, 10)
    assert PackingSpec(bits=16, max_clients=10, values_per_plaintext=most, key_bits=KEY_BITS).slot_bits == 20
    with pytest.raises(ValueError):
        PackingSpec(bits=16, max_clients=10, values_per_plaintext=most + 1, key_bits=KEY_BITS)


def test_slot_bits_is_bits_plus_ceil_log2_max_clients() -> None:
    for max_clients, pad in [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (1024, 10), (1025, 11)]:
        assert PackingSpec(bits=7, max_clients=max_clients, values_per_plaintext=1).slot_bits == 7 + pad


def test_unpack_rejects_non_zero_padding_and_wrong_count() -> None:
    spec = PackingSpec(bits=4, max_clients=2, values_per_plaintext=4, key_bits=KEY_BITS)
    packed = pack(np.array([1, 2, 3, 4, 5]), spec)
    with pytest.raises(ValueError):
        unpack(packed, spec, 4)  # 4 values need one plaintext, not two
    with pytest.raises(ValueError):
        unpack([packed[0], packed[1] | (1 << spec.slot_bits)], spec, 5)
