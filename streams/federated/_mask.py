"""Shared coordinate masks and the client-side error-feedback residual.

Per-client Top-k cannot be packed (every client would send different coordinates), so every
client in a round sends the SAME coordinates: either a seeded random-k mask or the top-k of the
previous global update, which all clients hold bit-for-bit. Coordinates a client does not send
this round are kept in an :class:`ErrorFeedback` residual and added back next round.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ErrorFeedback", "as_mask", "random_k_mask", "top_k_mask"]


def _check_k(dim: int, k: int) -> None:
    if dim < 0:
        raise ValueError(f"dim must be non-negative, got {dim}")
    if not 0 <= k <= dim:
        raise ValueError(f"k must be in [0, {dim}], got {k}")


def random_k_mask(dim: int, k: int, seed: int) -> NDArray[np.int64]:
    """Return ``k`` distinct sorted coordinate indices in ``[0, dim)`` drawn from ``seed``.

    Each coordinate gets a key from the raw output of the PCG64 bit generator (NumPy keeps
    bit-generator streams stable across releases, unlike ``Generator`` methods) and the ``k``
    smallest keys win (ties by lower index), so every client computes the identical mask from the
    round's ``mask_seed`` regardless of NumPy version.
    """
    _check_k(dim, k)
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if k == 0:
        return np.empty(0, dtype=np.int64)
    keys = np.random.PCG64(seed).random_raw(dim)
    return _smallest_k(keys, k)


def top_k_mask(prev_global_update: ArrayLike, k: int) -> NDArray[np.int64]:
    """Return the sorted indices of the ``k`` largest-magnitude entries of the previous global update.

    Ties are broken by the lower index (stable sort), so clients holding the same update agree.
    """
    values = np.asarray(prev_global_update, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"prev_global_update must be 1-D, got shape {values.shape}")
    _check_k(values.shape[0], k)
    if not np.all(np.isfinite(values)):
        raise ValueError("prev_global_update contains non-finite values")
    if k == 0:
        return np.empty(0, dtype=np.int64)
    return _smallest_k(-np.abs(values), k)


def _smallest_k(keys: NDArray[Any], k: int) -> NDArray[np.int64]:
    """Sorted indices of the ``k`` smallest keys, ties broken by lower index, in O(len(keys)).

    Same result as ``np.sort(np.argsort(keys, kind="stable")[:k])`` without the full sort, and
    defined by values alone (not by NumPy's selection algorithm), so it is version-independent.
    """
    if k == keys.shape[0]:
        return np.arange(k, dtype=np.int64)
    kth = np.partition(keys, k - 1)[k - 1]
    below = np.flatnonzero(keys < kth)
    ties = np.flatnonzero(keys == kth)[: k - below.size]
    return np.sort(np.concatenate([below, ties])).astype(np.int64, copy=False)


class ErrorFeedback:
    """Residual accumulator for the coordinates (and clipping error) a client has not yet sent.

    Use per round: ``compensated = ef.compensate(update)``; send (a function of)
    ``compensated[mask]``; then ``ef.record_sent(compensated, mask, sent)``. Mass is conserved:
    what was sent plus the new residual equals ``compensated`` exactly.
    """

    def __init__(self, dim: int) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self._residual: NDArray[np.float64] = np.zeros(dim, dtype=np.float64)

    @property
    def dim(self) -> int:
        """Length of the (full, unmasked) update vector."""
        return int(self._residual.shape[0])

    @property
    def residual(self) -> NDArray[np.float64]:
        """A copy of the current residual."""
        return self._residual.copy()

    def reset(self) -> None:
        """Forget the residual (e.g. after a model reset)."""
        self._residual[:] = 0.0

    def compensate(self, update: ArrayLike) -> NDArray[np.float64]:
        """Return ``update + residual`` (a new array; the residual is not changed)."""
        values = np.asarray(update, dtype=np.float64)
        if values.shape != self._residual.shape:
            raise ValueError(f"update shape {values.shape} != residual shape {self._residual.shape}")
        return values + self._residual

    def record_sent(
        self,
        compensated: ArrayLike,
        mask: ArrayLike,
        sent: ArrayLike | None = None,
    ) -> None:
        """Set the residual to what of ``compensated`` was not sent.

        ``sent`` are the values actually transmitted at ``mask`` (e.g. after clipping); when
        omitted, ``compensated[mask]`` is taken as sent in full. Unmasked coordinates keep their
        full compensated value, masked ones keep ``compensated[mask] - sent``.
        """
        comp = np.asarray(compensated, dtype=np.float64)
        if comp.shape != self._residual.shape:
            raise ValueError(f"compensated shape {comp.shape} != residual shape {self._residual.shape}")
        idx = as_mask(mask, self.dim)
        residual = comp.copy()
        if sent is None:
            residual[idx] = 0.0
        else:
            sent_values = np.asarray(sent, dtype=np.float64)
            if sent_values.shape != idx.shape:
                raise ValueError(f"sent shape {sent_values.shape} != mask shape {idx.shape}")
            residual[idx] = comp[idx] - sent_values
        self._residual = residual


def as_mask(mask: ArrayLike, dim: int) -> NDArray[np.int64]:
    """Validate ``mask`` as distinct in-range integer indices into a length-``dim`` vector."""
    idx = np.asarray(mask)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError("mask must be a 1-D array of integer indices")
    idx = idx.astype(np.int64, copy=False)
    if idx.size and (idx.min() < 0 or idx.max() >= dim):
        raise ValueError(f"mask indices must lie in [0, {dim})")
    if idx.size > 1 and np.any(np.diff(np.sort(idx)) == 0):
        raise ValueError("mask indices must be distinct")
    return idx
