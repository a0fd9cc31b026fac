"""Paillier layer: pooled encryption, phe compatibility, keys and wire format."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import pytest
from phe.paillier import EncryptedNumber

from streams.federated import (
    ObfuscatorPool,
    PackingOverflow,
    PrivateKey,
    PublicKey,
    add_ciphertexts,
    ciphertext_bytes,
    ciphertext_from_bytes,
    ciphertext_to_bytes,
    decrypt_raw,
    encrypt_packed,
    encrypt_with_obfuscator,
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    obfuscator,
    private_key_to_json,
    public_key_from_json,
    public_key_to_json,
    save_private_key,
    save_public_key,
)

KEY_BITS = 1024


@pytest.fixture(scope="module")
def keypair() -> tuple[PublicKey, PrivateKey]:
    return generate_keypair(KEY_BITS)


def test_pooled_encryption_equals_phe_raw_encrypt(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pub, _ = keypair
    for m in (0, 1, 12345, pub.n // 2, pub.n - 1):
        r = secrets.randbelow(pub.n - 1) + 1
        assert encrypt_with_obfuscator(pub, m, obfuscator(pub, r)) == pub.raw_encrypt(m, r_value=r)


def test_pool_encryptions_decrypt_and_add_like_phe(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pub, priv = keypair
    pool = ObfuscatorPool(pub)
    pool.fill(12, threads=3)
    assert len(pool) == 12
    values = [secrets.randbelow(1 << 40) for _ in range(12)]
    cts = [encrypt_packed(pub, m, pool) for m in values]
    assert len(pool) == 0
    assert len(set(cts)) == len(cts)
    for m, c in zip(values, cts, strict=True):
        assert decrypt_raw(priv, c) == m
        assert priv.decrypt(EncryptedNumber(pub, c, 0)) == m  # phe's own decryption and decoding
    total = sum((EncryptedNumber(pub, c, 0) for c in cts[1:]), EncryptedNumber(pub, cts[0], 0))
    assert priv.decrypt(total) == sum(values)
    assert decrypt_raw(priv, add_ciphertexts(pub, cts)) == sum(values)


def test_empty_pool_falls_back_to_phe(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pub, priv = keypair
    pool = ObfuscatorPool(pub)
    a, b = encrypt_packed(pub, 42, pool), encrypt_packed(pub, 42, pool)
    assert a != b  # fresh randomness each time
    assert decrypt_raw(priv, a) == decrypt_raw(priv, b) == 42


def test_background_fill(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pub, priv = keypair
    pool = ObfuscatorPool(pub)
    pool.fill_in_background(6, threads=2).join(timeout=30)
    assert len(pool) == 6
    taken = [pool.take() for _ in range(6)]
    assert len({int(t) for t in taken if t is not None}) == 6
    assert pool.take() is None
    assert decrypt_raw(priv, encrypt_with_obfuscator(pub, 7, taken[0])) == 7


def test_pool_for_another_key_is_refused(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pub, _ = keypair
    other, _ = generate_keypair(KEY_BITS)
    with pytest.raises(ValueError):
        encrypt_packed(pub, 1, ObfuscatorPool(other))


def test_plaintext_and_ciphertext_ranges_are_checked(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pub, priv = keypair
    for bad in (-1, pub.n):
        with pytest.raises(ValueError):
            encrypt_packed(pub, bad)
    for bad in (0, pub.nsquare):
        with pytest.raises(ValueError):
            decrypt_raw(priv, bad)


def test_add_ciphertexts_max_terms(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pub, priv = keypair
    cts = [encrypt_packed(pub, 3) for _ in range(4)]
    assert decrypt_raw(priv, add_ciphertexts(pub, cts, max_terms=4)) == 12
    with pytest.raises(PackingOverflow):
        add_ciphertexts(pub, cts, max_terms=3)


def test_ciphertext_bytes_round_trip(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pub, priv = keypair
    assert ciphertext_bytes(pub) == 2 * KEY_BITS // 8
    ct = encrypt_packed(pub, 99)
    data = ciphertext_to_bytes(pub, ct)
    assert len(data) == ciphertext_bytes(pub)
    assert ciphertext_from_bytes(pub, data) == ct
    small = encrypt_with_obfuscator(pub, 0, 1)  # == 1: leading zero bytes must survive
    assert ciphertext_from_bytes(pub, ciphertext_to_bytes(pub, small)) == small == 1
    with pytest.raises(ValueError):
        ciphertext_from_bytes(pub, data[1:])
    assert decrypt_raw(priv, ciphertext_from_bytes(pub, data)) == 99


def test_key_files_round_trip(keypair: tuple[PublicKey, PrivateKey], tmp_path: Path) -> None:
    pub, priv = keypair
    save_public_key(pub, tmp_path / "pub.json")
    save_private_key(priv, tmp_path / "priv.json")
    assert stat.S_IMODE(os.stat(tmp_path / "priv.json").st_mode) == 0o600
    pub2, priv2 = load_public_key(tmp_path / "pub.json"), load_private_key(tmp_path / "priv.json")
    assert pub2 == pub
    assert priv2 == priv
    assert key_id(pub2) == key_id(priv2.public_key) == key_id(pub)
    assert len(key_id(pub)) == 16
    assert "p" not in public_key_to_json(pub).replace("paillier", "").replace("public", "")
    assert decrypt_raw(priv2, encrypt_packed(pub2, 5)) == 5
    assert key_id(priv.public_key) in private_key_to_json(priv)


def test_tampered_key_id_is_rejected(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pub, _ = keypair
    text = public_key_to_json(pub).replace(key_id(pub), "0" * 16)
    with pytest.raises(ValueError):
        public_key_from_json(text)
