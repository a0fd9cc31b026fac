"""Thin raw-integer layer over ``phe`` (backed by gmpy2) for packed, non-negative plaintexts.

Ciphertexts are plain ints ``c = (1 + n*m) * r**n mod n**2`` (``g = n + 1``). Computing
``r**n mod n**2`` is the whole cost of an encryption, so an :class:`ObfuscatorPool` precomputes
those values ahead of time (gmpy2 releases the GIL while doing it, so filling can run in
background threads) and :func:`encrypt_packed` then costs one modular multiplication. Each
pooled obfuscator is handed out exactly once. No exponent / float encoding is involved.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import gmpy2
from phe import paillier
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from streams.federated._packing import PackingOverflow

__all__ = [
    "EncryptedAccumulator",
    "ObfuscatorPool",
    "PrivateKey",
    "PublicKey",
    "add_ciphertexts",
    "ciphertext_bytes",
    "ciphertext_from_bytes",
    "ciphertext_to_bytes",
    "decrypt_raw",
    "encrypt_packed",
    "encrypt_with_obfuscator",
    "generate_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "obfuscator",
    "private_key_from_json",
    "private_key_to_json",
    "public_key_from_json",
    "public_key_to_json",
    "save_private_key",
    "save_public_key",
]

PublicKey: TypeAlias = PaillierPublicKey
"""``phe.paillier.PaillierPublicKey``."""
PrivateKey: TypeAlias = PaillierPrivateKey
"""``phe.paillier.PaillierPrivateKey``."""

_PUBLIC_KIND = "medkiosk.paillier.public/v1"
_PRIVATE_KIND = "medkiosk.paillier.private/v1"


def generate_keypair(bits: int = 2048) -> tuple[PublicKey, PrivateKey]:
    """Generate a Paillier key pair with an ``bits``-bit modulus (phe uses ``os.urandom``)."""
    if bits < 512 or bits % 8:
        raise ValueError(f"bits must be a multiple of 8 and at least 512, got {bits}")
    pub, priv = paillier.generate_paillier_keypair(n_length=bits)
    return pub, priv


def key_id(pub: PublicKey) -> str:
    """Stable short identifier of a public key: the first 16 hex digits of SHA-256(n)."""
    n = int(pub.n)
    return hashlib.sha256(n.to_bytes((n.bit_length() + 7) // 8, "big")).hexdigest()[:16]


# --- serialisation ---------------------------------------------------------------------------


def public_key_to_json(pub: PublicKey) -> str:
    """Serialise a public key (modulus and key id) as JSON."""
    return json.dumps({"kind": _PUBLIC_KIND, "key_id": key_id(pub), "n": format(int(pub.n), "x")})


def _load(text: str, kind: str) -> dict[str, Any]:
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("kind") != kind:
        raise ValueError(f"not a {kind} document")
    return doc


def public_key_from_json(text: str) -> PublicKey:
    """Parse :func:`public_key_to_json` output, checking the recorded key id."""
    doc = _load(text, _PUBLIC_KIND)
    pub = PaillierPublicKey(int(doc["n"], 16))
    if key_id(pub) != doc.get("key_id"):
        raise ValueError("key_id does not match the modulus")
    return pub


def private_key_to_json(priv: PrivateKey) -> str:
    """Serialise a private key (the factors of n) as JSON. Keep the result secret."""
    pub = priv.public_key
    return json.dumps(
        {
            "kind": _PRIVATE_KIND,
            "key_id": key_id(pub),
            "n": format(int(pub.n), "x"),
            "p": format(int(priv.p), "x"),
            "q": format(int(priv.q), "x"),
        }
    )


def private_key_from_json(text: str) -> PrivateKey:
    """Parse :func:`private_key_to_json` output; phe checks that ``p * q == n``."""
    doc = _load(text, _PRIVATE_KIND)
    pub = PaillierPublicKey(int(doc["n"], 16))
    if key_id(pub) != doc.get("key_id"):
        raise ValueError("key_id does not match the modulus")
    return PaillierPrivateKey(pub, int(doc["p"], 16), int(doc["q"], 16))


def save_public_key(pub: PublicKey, path: str | os.PathLike[str]) -> None:
    """Write the public key as JSON."""
    Path(path).write_text(public_key_to_json(pub), encoding="utf-8")


def load_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """Read a public key written by :func:`save_public_key`."""
    return public_key_from_json(Path(path).read_text(encoding="utf-8"))


def save_private_key(priv: PrivateKey, path: str | os.PathLike[str]) -> None:
    """Write the private key as JSON, readable by the owner only (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(private_key_to_json(priv))


def load_private_key(path: str | os.PathLike[str]) -> PrivateKey:
    """Read a private key written by :func:`save_private_key`."""
    return private_key_from_json(Path(path).read_text(encoding="utf-8"))


# --- encryption ------------------------------------------------------------------------------


def _random_unit(n: int) -> int:
    """Uniform ``r`` in ``[1, n)`` with ``gcd(r, n) == 1`` from the OS CSPRNG."""
    while True:
        r = secrets.randbelow(n - 1) + 1
        if gmpy2.gcd(r, n) == 1:
            return r


def obfuscator(pub: PublicKey, r: int) -> int:
    """``r**n mod n**2`` for a given ``r`` (exposed so tests can compare with phe)."""
    return int(gmpy2.powmod(r, pub.n, pub.nsquare))


class ObfuscatorPool:
    """Precomputed, single-use obfuscators ``r**n mod n**2`` for one public key. Thread-safe."""

    def __init__(self, pub: PublicKey) -> None:
        self._pub = pub
        self._items: deque[Any] = deque()
        self._fill_lock = threading.Lock()

    @property
    def public_key(self) -> PublicKey:
        """The key the obfuscators belong to."""
        return self._pub

    def __len__(self) -> int:
        return len(self._items)

    def fill(self, count: int, *, threads: int = 1) -> None:
        """Compute ``count`` fresh obfuscators (``threads`` GIL-free gmpy2 workers) and add them."""
        if count < 0 or threads < 1:
            raise ValueError("count must be non-negative and threads at least 1")
        n, n2 = gmpy2.mpz(self._pub.n), gmpy2.mpz(self._pub.nsquare)
        bases = [gmpy2.mpz(_random_unit(self._pub.n)) for _ in range(count)]
        chunks = [bases[i::threads] for i in range(threads) if bases[i::threads]]
        results: list[list[Any]] = [[] for _ in chunks]

        def work(i: int) -> None:
            results[i] = gmpy2.powmod_base_list(chunks[i], n, n2)

        workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(1, len(chunks))]
        for w in workers:
            w.start()
        if chunks:
            work(0)
        for w in workers:
            w.join()
        with self._fill_lock:
            for chunk in results:
                self._items.extend(chunk)

    def fill_in_background(self, count: int, *, threads: int = 1) -> threading.Thread:
        """Start :meth:`fill` in a daemon thread and return it (``join()`` to wait)."""
        thread = threading.Thread(target=self.fill, args=(count,), kwargs={"threads": threads}, daemon=True)
        thread.start()
        return thread

    def take(self) -> Any | None:
        """Remove and return one obfuscator (a gmpy2 ``mpz``), or ``None`` when the pool is empty."""
        try:
            return self._items.popleft()
        except IndexError:
            return None


def _check_plaintext(pub: PublicKey, plaintext: int) -> None:
    if not 0 <= plaintext < pub.n:
        raise ValueError("plaintext must lie in [0, n)")


def encrypt_with_obfuscator(pub: PublicKey, plaintext: int, r_pow_n: Any) -> int:
    """``(1 + n*m) * r_pow_n mod n**2``: encryption of ``m`` given a precomputed obfuscator."""
    _check_plaintext(pub, plaintext)
    n2 = gmpy2.mpz(pub.nsquare)
    return int(gmpy2.mul(gmpy2.mpz(pub.n) * plaintext + 1, r_pow_n) % n2)


def encrypt_packed(pub: PublicKey, plaintext_int: int, pool: ObfuscatorPool | None = None) -> int:
    """Encrypt a non-negative packed plaintext; uses ``pool`` when it has an obfuscator left."""
    _check_plaintext(pub, plaintext_int)
    r_pow_n = None
    if pool is not None:
        if pool.public_key != pub:
            raise ValueError("obfuscator pool belongs to a different public key")
        r_pow_n = pool.take()
    if r_pow_n is None:
        return int(pub.raw_encrypt(int(plaintext_int)))
    return encrypt_with_obfuscator(pub, plaintext_int, r_pow_n)


def _check_ciphertext(pub: PublicKey, ct: int) -> None:
    if not 0 < ct < pub.nsquare:
        raise ValueError("ciphertext must lie in (0, n**2)")


def add_ciphertexts(pub: PublicKey, cts: Iterable[int], *, max_terms: int | None = None) -> int:
    """Homomorphic sum of ciphertexts (their product mod ``n**2``); at most ``max_terms`` terms."""
    n2 = gmpy2.mpz(pub.nsquare)
    acc: Any = None
    for terms, ct in enumerate(cts, start=1):
        _check_ciphertext(pub, ct)
        if max_terms is not None and terms > max_terms:
            raise PackingOverflow(f"more than max_terms={max_terms} ciphertexts added")
        acc = gmpy2.mpz(ct) if acc is None else gmpy2.mul(acc, ct) % n2
    if acc is None:
        raise ValueError("nothing to add")
    return int(acc)


class EncryptedAccumulator:
    """Aggregator-side slotwise sum of ciphertext vectors, refusing more than ``max_clients``."""

    def __init__(self, pub: PublicKey, num_ciphertexts: int, max_clients: int) -> None:
        if num_ciphertexts < 1 or max_clients < 1:
            raise ValueError("num_ciphertexts and max_clients must be at least 1")
        self._pub = pub
        self._n2 = gmpy2.mpz(pub.nsquare)
        self._max = max_clients
        self._acc: list[Any] = [gmpy2.mpz(1)] * num_ciphertexts  # 1 == Enc(0) with r = 1
        self._count = 0

    @property
    def count(self) -> int:
        """Number of client vectors added."""
        return self._count

    @property
    def ciphertexts(self) -> list[int]:
        """The encrypted slotwise sum so far."""
        return [int(c) for c in self._acc]

    def add(self, cts: Sequence[int]) -> None:
        """Add one client's ciphertexts; raises :class:`PackingOverflow` past ``max_clients``."""
        if self._count >= self._max:
            raise PackingOverflow(f"more than max_clients={self._max} contributions")
        if len(cts) != len(self._acc):
            raise ValueError(f"expected {len(self._acc)} ciphertexts, got {len(cts)}")
        for ct in cts:
            _check_ciphertext(self._pub, ct)
        self._acc = [gmpy2.mul(a, c) % self._n2 for a, c in zip(self._acc, cts, strict=True)]
        self._count += 1


def decrypt_raw(priv: PrivateKey, ct: int) -> int:
    """Decrypt a raw ciphertext to its plaintext integer in ``[0, n)``."""
    _check_ciphertext(priv.public_key, ct)
    return int(priv.raw_decrypt(int(ct)))


# --- wire format -----------------------------------------------------------------------------


def ciphertext_bytes(pub: PublicKey) -> int:
    """Fixed width of a serialised ciphertext: twice the key's byte length."""
    return 2 * ((int(pub.n).bit_length() + 7) // 8)


def ciphertext_to_bytes(pub: PublicKey, ct: int) -> bytes:
    """Big-endian, fixed-width (:func:`ciphertext_bytes`) encoding of a ciphertext."""
    _check_ciphertext(pub, ct)
    return int(ct).to_bytes(ciphertext_bytes(pub), "big")


def ciphertext_from_bytes(pub: PublicKey, data: bytes) -> int:
    """Inverse of :func:`ciphertext_to_bytes`, validating width and range."""
    if len(data) != ciphertext_bytes(pub):
        raise ValueError(f"ciphertext must be {ciphertext_bytes(pub)} bytes, got {len(data)}")
    ct = int.from_bytes(data, "big")
    _check_ciphertext(pub, ct)
    return ct
