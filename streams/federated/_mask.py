"""Shared coordinate masks and the client-side error-feedback residual.

Per-client Top-k cannot be packed (every client would send different coordinates), so every
client in a round sends the SAME coordinates: a seeded random-k mask, the top-k of the previous global
update (which never moves: that update is non-zero only on the previous mask), or
:func:`ema_explore_mask` (guaranteed visits + seeded exploration + top-k of an EMA of past aggregates,
which moves and converges). Coordinates a client does not send this round, and what clipping removes from
those it sends, are kept in an :class:`ErrorFeedback` residual and added back next round.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ErrorFeedback",
    "as_mask",
    "ema_explore_mask",
    "random_k_mask",
    "round_robin_share",
    "top_k_mask",
    "update_ema",
]


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


def update_ema(
    ema: ArrayLike | None, aggregate: ArrayLike, decay: float, sent: ArrayLike | None = None
) -> NDArray[np.float64]:
    """The per-coordinate score of :func:`ema_explore_mask`: ``decay * ema + (1 - decay) * |aggregate|`` on the
    coordinates ``sent`` this round (all when None); the others keep their score, since what they would carry is
    still waiting in the clients' residuals. ``ema`` None: zeros. Computed by the coordinator and published
    with each model version."""
    agg = np.abs(np.asarray(aggregate, dtype=np.float64))
    if agg.ndim != 1 or not np.all(np.isfinite(agg)):
        raise ValueError("aggregate must be a finite 1-D vector")
    if not 0 <= decay < 1:
        raise ValueError(f"decay must be in [0, 1), got {decay}")
    prev = np.zeros_like(agg) if ema is None else np.asarray(ema, dtype=np.float64)
    if prev.shape != agg.shape:
        raise ValueError(f"ema shape {prev.shape} != aggregate shape {agg.shape}")
    out = prev.copy()
    idx = np.arange(agg.size) if sent is None else as_mask(sent, agg.size)
    out[idx] = decay * prev[idx] + (1.0 - decay) * agg[idx]
    return out


def round_robin_share(dim: int, max_gap: int) -> int:
    """Coordinates :func:`ema_explore_mask` reserves per round so that each is sent every ``max_gap`` rounds."""
    if dim < 1 or max_gap < 1:
        raise ValueError("dim and max_gap must be at least 1")
    return -(-dim // max_gap)


def ema_explore_mask(
    ema: ArrayLike,
    k: int,
    *,
    round_id: int,
    seed: int,
    explore_fraction: float,
    max_gap: int,
) -> NDArray[np.int64]:
    """The round's shared mask: a guaranteed visit, exploitation of past aggregates, and seeded exploration.

    1. *Guaranteed visits*: the coordinates ``i`` with ``i % max_gap == round_id % max_gap`` (so every coordinate
       is sent at least once every ``max_gap`` rounds; needs ``ceil(dim / max_gap) <= k``).
    2. *Exploration*: ``round(explore_fraction * k)`` further coordinates drawn from ``seed`` (random-k among
       the rest), so that mass piling up in the residual elsewhere is found between guaranteed visits.
    3. *Exploitation*: the rest of the ``k`` are the largest ``ema`` scores among the remaining coordinates
       (the EMA of past aggregates' magnitudes: where the federation's updates have been large).

    While no score is positive yet (zeros before the first aggregate) the exploitation share is drawn from
    ``seed`` as well. Everyone holding the same ``ema`` (published with the model version) computes the same
    mask, regardless of NumPy version.
    """
    scores = np.asarray(ema, dtype=np.float64)
    if scores.ndim != 1 or not np.all(np.isfinite(scores)):
        raise ValueError("ema must be a finite 1-D vector")
    dim = int(scores.shape[0])
    _check_k(dim, k)
    if not 0 <= explore_fraction <= 1:
        raise ValueError(f"explore_fraction must be in [0, 1], got {explore_fraction}")
    share = round_robin_share(dim, max_gap)
    if share > k:
        raise ValueError(f"max_gap {max_gap} needs {share} guaranteed coordinates per round, more than k = {k}")
    if round_id < 0 or seed < 0:
        raise ValueError("round_id and seed must be non-negative")
    chosen = np.zeros(dim, dtype=bool)
    chosen[np.arange(round_id % max_gap, dim, max_gap)] = True
    n_explore = min(round(explore_fraction * k), k - int(chosen.sum()))
    keys = np.random.PCG64(seed).random_raw(dim)
    if n_explore > 0:
        free_keys = np.where(chosen, np.iinfo(np.uint64).max, keys)
        chosen[_smallest_k(free_keys, n_explore)] = True
    n_top = k - int(chosen.sum())
    if n_top > 0:
        if np.any(scores[~chosen] > 0):
            top_keys = np.where(chosen, np.inf, -scores)
        else:  # nothing learnt yet: more exploration
            top_keys = np.where(chosen, np.inf, keys.astype(np.float64))
        chosen[_smallest_k(top_keys, n_top)] = True
    return np.flatnonzero(chosen).astype(np.int64)
