"""A hospital's secret, reproducible randomness: HMAC-derived keys driving a ChaCha20 keystream.

Every random choice a client makes in a round (DP-SGD noise, Poisson batch sampling, stochastic rounding, the
distributed-noise share) comes from ``HMAC-SHA256(secret, purpose, round, step)``. The secret never leaves the
hospital (``fl keys export --role client`` makes it in the client's keys directory only), so:

* a restarted client recomputes its own round bit for bit (same secret, same round, same model);
* nobody else can, even knowing the code, the trainer seed, the hospital index and the round: the noise and
  the sampling stay unpredictable, which is what the DP guarantee and its subsampling amplification assume.

Noise and sampling draw from the ChaCha20 keystream itself (a CSPRNG; ``cryptography``), never from a
Mersenne Twister or PCG seeded with public values. Gaussian noise is the average of four Box-Muller draws
scaled to the same variance, as opacus's secure mode does against floating-point attacks on the noise.
"""

from __future__ import annotations

import hashlib
import hmac
import math

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from numpy.typing import NDArray

__all__ = ["KeyedStream", "derive_key", "keyed_generator"]

_LABEL = b"medkiosk.fl.v1\x00"
_NONCE = bytes(16)
_TWO_PI = 2.0 * math.pi


def derive_key(secret: bytes, purpose: str, round_id: int, step: int = 0) -> bytes:
    """``HMAC-SHA256(secret, label | purpose | round | step)``: one 256-bit key per use."""
    if len(secret) < 16:
        raise ValueError("a client secret needs at least 128 bits")
    if round_id < 0 or step < 0:
        raise ValueError("round_id and step must be non-negative")
    msg = _LABEL + purpose.encode() + b"\x00" + round_id.to_bytes(8, "big") + step.to_bytes(8, "big")
    return hmac.new(secret, msg, hashlib.sha256).digest()


class KeyedStream:
    """Uniform and Gaussian draws from the ChaCha20 keystream of ``key`` (deterministic, unpredictable)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a ChaCha20 key has 32 bytes")
        self._enc = Cipher(algorithms.ChaCha20(key, _NONCE), mode=None).encryptor()

    def uint64(self, n: int) -> NDArray[np.uint64]:
        """``n`` uniformly random 64-bit integers."""
        return np.frombuffer(self._enc.update(bytes(8 * n)), dtype="<u8").astype(np.uint64)

    def uniform(self, n: int) -> NDArray[np.float64]:
        """``n`` floats uniform in the open interval (0, 1) (53-bit resolution)."""
        return ((self.uint64(n) >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53

    def normal(self, n: int) -> NDArray[np.float64]:
        """``n`` standard normal draws, each the mean of four Box-Muller normals times 2 (variance 1)."""
        if n == 0:
            return np.empty(0, dtype=np.float64)
        u1, u2 = self.uniform(4 * n), self.uniform(4 * n)
        z = np.sqrt(-2.0 * np.log(u1)) * np.cos(_TWO_PI * u2)
        return np.asarray(z.reshape(4, n).sum(axis=0) / 2.0, dtype=np.float64)

    def bernoulli(self, n: int, p: float) -> NDArray[np.bool_]:
        """``n`` independent coin flips with probability ``p`` (Poisson sampling of a batch)."""
        return np.asarray(self.uniform(n) < p)


def keyed_generator(key: bytes) -> np.random.Generator:
    """A NumPy generator seeded with 256 bits from ``key``'s keystream, for randomness that is not a privacy
    mechanism (stochastic rounding; a trainer's own shuffling) but must still be secret and reproducible."""
    words = KeyedStream(key).uint64(4)
    return np.random.default_rng(np.random.SeedSequence([int(w) for w in words]))
