"""BatchCrypt-style packing of many quantised integers into one Paillier plaintext.

Each value occupies a slot of ``slot_bits = bits + ceil(log2(max_clients))`` bits: ``bits`` for
the value and enough zero padding that the slotwise sum of up to ``max_clients`` packed vectors
never carries into the neighbouring slot. Adding packed plaintexts (or, homomorphically, their
ciphertexts) therefore adds every slot independently, and :func:`unpack` recovers the exact
elementwise sum. Slot 0 is the least significant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "PLAINTEXT_MARGIN_BITS",
    "PackedAccumulator",
    "PackingOverflow",
    "PackingSpec",
    "max_values_per_plaintext",
    "pack",
    "unpack",
]

PLAINTEXT_MARGIN_BITS = 2
"""Bits of the modulus left unused: packed plaintexts stay below ``2**(key_bits - 2) < n``."""

_MAX_SLOT_BITS = 62  # slot sums are decoded into int64


class PackingOverflow(ValueError):
    """A packed slot could (or did) exceed its width: too many clients or an out-of-range value."""


def _slot_bits(bits: int, max_clients: int) -> int:
    return bits + (max_clients - 1).bit_length()  # (m - 1).bit_length() == ceil(log2(m)) for m >= 1


def max_values_per_plaintext(key_bits: int, bits: int, max_clients: int) -> int:
    """Most ``bits``-wide values one plaintext of a ``key_bits`` key can hold for ``max_clients``."""
    if bits < 1 or max_clients < 1:
        raise ValueError("bits and max_clients must be at least 1")
    return max(0, (key_bits - PLAINTEXT_MARGIN_BITS) // _slot_bits(bits, max_clients))


@dataclass(kw_only=True, frozen=True)
class PackingSpec:
    """How quantised values are laid out in plaintexts of a ``key_bits`` Paillier key."""

    bits: int
    max_clients: int
    values_per_plaintext: int
    key_bits: int = 2048

    def __post_init__(self) -> None:
        if self.bits < 1 or self.max_clients < 1 or self.values_per_plaintext < 1:
            raise ValueError("bits, max_clients and values_per_plaintext must be at least 1")
        if self.slot_bits > _MAX_SLOT_BITS:
            raise ValueError(f"slot_bits {self.slot_bits} exceeds {_MAX_SLOT_BITS}")
        capacity = self.key_bits - PLAINTEXT_MARGIN_BITS
        if self.plaintext_bits > capacity:
            raise ValueError(
                f"{self.values_per_plaintext} slots x {self.slot_bits} bits = {self.plaintext_bits} bits "
                f"exceeds the {capacity} usable bits of a {self.key_bits}-bit key"
            )

    @classmethod
    def maximal(cls, *, bits: int, max_clients: int, key_bits: int = 2048) -> PackingSpec:
        """The spec packing as many values per plaintext as the key allows."""
        vpp = max_values_per_plaintext(key_bits, bits, max_clients)
        return cls(bits=bits, max_clients=max_clients, values_per_plaintext=vpp, key_bits=key_bits)

    @property
    def slot_bits(self) -> int:
        """Width of one slot: value bits plus ``ceil(log2(max_clients))`` padding bits."""
        return _slot_bits(self.bits, self.max_clients)

    @property
    def plaintext_bits(self) -> int:
        """Bits used in one packed plaintext."""
        return self.values_per_plaintext * self.slot_bits

    def num_plaintexts(self, length: int) -> int:
        """How many plaintexts a vector of ``length`` values packs into."""
        if length < 0:
            raise ValueError(f"length must be non-negative, got {length}")
        return -(-length // self.values_per_plaintext)


def pack(ints: ArrayLike, spec: PackingSpec) -> list[int]:
    """Pack one client's quantised integers (each in ``[0, 2**bits)``) into big plaintext ints."""
    values = np.asarray(ints)
    if values.ndim != 1 or (values.size and not np.issubdtype(values.dtype, np.integer)):
        raise ValueError("ints must be a 1-D integer array")
    if values.size and (values.min() < 0 or values.max() >= (1 << spec.bits)):
        raise PackingOverflow(f"values must lie in [0, 2**{spec.bits}) to be packed")
    n_pt = spec.num_plaintexts(values.size)
    vpp, sb = spec.values_per_plaintext, spec.slot_bits
    padded = np.zeros(n_pt * vpp, dtype=np.uint64)
    padded[: values.size] = values
    shifts = np.arange(sb, dtype=np.uint64)
    bit_matrix = ((padded[:, None] >> shifts) & np.uint64(1)).astype(np.uint8)
    rows = np.packbits(bit_matrix.reshape(n_pt, vpp * sb), axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in rows]


def unpack(packed: Sequence[int], spec: PackingSpec, length: int) -> NDArray[np.int64]:
    """Recover ``length`` slot values (a single vector or a slotwise sum) from packed plaintexts."""
    n_pt = spec.num_plaintexts(length)
    if len(packed) != n_pt:
        raise ValueError(f"{length} values need {n_pt} plaintexts, got {len(packed)}")
    vpp, sb = spec.values_per_plaintext, spec.slot_bits
    limit = 1 << spec.plaintext_bits
    for p in packed:
        if not 0 <= p < limit:
            raise PackingOverflow(f"packed plaintext outside [0, 2**{spec.plaintext_bits}): slots overflowed")
    width = -(-spec.plaintext_bits // 8)
    raw = b"".join(int(p).to_bytes(width, "little") for p in packed)
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(n_pt, width)
    bit_matrix = np.unpackbits(rows, axis=1, bitorder="little")[:, : vpp * sb].reshape(n_pt * vpp, sb)
    weights = np.left_shift(np.int64(1), np.arange(sb, dtype=np.int64))
    slots = bit_matrix.astype(np.int64) @ weights
    if np.any(slots[length:]):
        raise ValueError("padding slots beyond length are non-zero: corrupt or mismatched packing")
    return slots[:length]


class PackedAccumulator:
    """Slotwise sum of packed plaintexts that refuses more than ``max_clients`` contributions."""

    def __init__(self, spec: PackingSpec, length: int) -> None:
        self._spec = spec
        self._length = length
        self._total = [0] * spec.num_plaintexts(length)
        self._count = 0

    @property
    def count(self) -> int:
        """Number of contributions added so far."""
        return self._count

    @property
    def total(self) -> list[int]:
        """The packed sum so far."""
        return list(self._total)

    def add(self, packed: Sequence[int]) -> None:
        """Add one client's packed vector; raises :class:`PackingOverflow` past ``max_clients``."""
        if self._count >= self._spec.max_clients:
            raise PackingOverflow(f"more than max_clients={self._spec.max_clients} contributions")
        if len(packed) != len(self._total):
            raise ValueError(f"expected {len(self._total)} plaintexts, got {len(packed)}")
        self._total = [a + b for a, b in zip(self._total, packed, strict=True)]
        self._count += 1

    def unpack(self) -> NDArray[np.int64]:
        """The exact elementwise sum of all contributions."""
        return unpack(self._total, self._spec, self._length)
