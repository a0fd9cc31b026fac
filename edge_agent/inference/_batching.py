"""Batch plumbing shared by the worker pool and the engines: row counts, concatenation, splitting, probes."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from edge_agent.inference._base import Dim, EngineInfo, Tensor

__all__ = ["batch_rows", "batch_signature", "concat_requests", "probe_inputs", "split_outputs"]

#: What must match for two requests to share a batch: per input, (name, trailing shape, dtype).
Signature = tuple[tuple[str, tuple[int, ...], str], ...]


def batch_rows(inputs: Mapping[str, Tensor]) -> int:
    """The batch size (leading dimension) shared by every input; ``ValueError`` if they disagree or are scalars."""
    if not inputs:
        raise ValueError("no inputs")
    rows = {name: (arr.shape[0] if arr.ndim else -1) for name, arr in inputs.items()}
    sizes = set(rows.values())
    if -1 in sizes:
        shapes = {k: v.shape for k, v in inputs.items()}
        raise ValueError(f"inputs need a leading batch dimension; got shapes {shapes}")
    if len(sizes) != 1:
        raise ValueError(f"inputs disagree on the batch size: {rows}")
    return sizes.pop()


def batch_signature(inputs: Mapping[str, Tensor]) -> Signature:
    """Requests with equal signatures can be concatenated along the batch axis."""
    return tuple(sorted((name, tuple(arr.shape[1:]), arr.dtype.str) for name, arr in inputs.items()))


def concat_requests(requests: Sequence[Mapping[str, Tensor]]) -> tuple[dict[str, Tensor], list[int]]:
    """Stack requests (same signature) into one batch; also returns each request's row count for ``split_outputs``."""
    if not requests:
        raise ValueError("nothing to batch")
    sizes = [batch_rows(r) for r in requests]
    if len(requests) == 1:
        return dict(requests[0]), sizes
    sig = batch_signature(requests[0])
    if any(batch_signature(r) != sig for r in requests[1:]):
        raise ValueError("requests with different input names, shapes or dtypes cannot share a batch")
    names = list(requests[0])
    return {name: np.concatenate([r[name] for r in requests], axis=0) for name in names}, sizes


def split_outputs(outputs: Mapping[str, Tensor], sizes: Sequence[int]) -> list[dict[str, Tensor]]:
    """Undo ``concat_requests`` on the outputs: one dict per request, in order (views, not copies)."""
    total = sum(sizes)
    for name, arr in outputs.items():
        if arr.ndim == 0 or arr.shape[0] != total:
            raise ValueError(f"output {name!r} has shape {arr.shape}; expected a leading batch of {total}")
    bounds = np.cumsum([0, *sizes])
    return [{name: arr[int(lo) : int(hi)] for name, arr in outputs.items()} for lo, hi in itertools.pairwise(bounds)]


def _concrete(shape: tuple[Dim, ...], batch: int) -> tuple[int, ...]:
    dims: list[int] = []
    for i, d in enumerate(shape):
        if isinstance(d, int) and d > 0:
            dims.append(d)
        elif i == 0:
            dims.append(batch)
        else:
            raise ValueError(f"cannot build a probe for shape {shape}: dimension {i} is not fixed")
    return tuple(dims)


def probe_inputs(info: EngineInfo, *, batch: int = 2) -> dict[str, Tensor]:
    """A deterministic float32 probe for an engine with declared input shapes (values in [0, 1), no randomness)."""
    if len(info.input_shapes) != len(info.inputs):
        raise ValueError(f"{info.kind} engine does not declare its input shapes; pass an explicit probe")
    probe: dict[str, Tensor] = {}
    for name, shape in zip(info.inputs, info.input_shapes, strict=True):
        dims = _concrete(shape, batch)
        n = int(np.prod(dims))
        probe[name] = ((np.arange(n, dtype=np.float32) * 0.618034) % 1.0).reshape(dims)
    return probe
