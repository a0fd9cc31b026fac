"""Saving and loading the torch side of a model: a ``torch.export`` program (``.pt2``) or TorchScript (``.pt``).

Training scripts export the ONNX file plus these, with the I/O names and shapes stored inside the archive
(``medkiosk_io.json``) so every engine reports the same names. ``.pt2`` is preferred; TorchScript
(``torch.jit``) is deprecated in current torch but loads on the older torch builds found on Jetson images.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_agent.inference._base import Dim, Tensor

if TYPE_CHECKING:
    import torch

__all__ = ["IO_FILE", "TorchProgram", "export_onnx", "load_torch_program", "save_torch_program", "save_torchscript"]

IO_FILE = "medkiosk_io.json"
TORCH_SUFFIXES = (".pt2", ".pt", ".ts")


@dataclass(frozen=True, slots=True)
class TorchProgram:
    """A loaded torch model: call ``forward(*tensors)``; outputs come back as a tuple in ``outputs`` order."""

    forward: Callable[..., Any]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    input_shapes: tuple[tuple[Dim, ...], ...]
    output_shapes: tuple[tuple[Dim, ...], ...]
    format: str  # "torch.export" or "torchscript"


@contextmanager
def quiet_torchscript() -> Iterator[None]:
    """``torch.jit`` warns that it is deprecated on every call; we use it knowingly (older Jetson torch builds)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit.*")
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit.*")
        yield


def _io_meta(
    input_names: Sequence[str],
    output_names: Sequence[str],
    example: Mapping[str, Tensor],
    outputs: Sequence[torch.Tensor],
    dynamic_batch: bool,
) -> str:
    def dims(shape: Sequence[int]) -> list[Dim]:
        return ["batch" if dynamic_batch and i == 0 else int(d) for i, d in enumerate(shape)]

    return json.dumps(
        {
            "inputs": list(input_names),
            "outputs": list(output_names),
            "input_shapes": [dims(example[n].shape) for n in input_names],
            "output_shapes": [dims(tuple(o.shape)) for o in outputs],
        }
    )


def _as_tuple(out: Any) -> tuple[torch.Tensor, ...]:
    if isinstance(out, tuple | list):
        return tuple(out)
    return (out,)


def save_torch_program(
    module: torch.nn.Module,
    example: Mapping[str, Tensor],
    path: Path,
    *,
    output_names: Sequence[str],
    dynamic_batch: bool = True,
    max_batch: int = 4096,
) -> Path:
    """Export ``module`` (eval mode) with ``torch.export`` and save it with its I/O names; batch dim dynamic."""
    import torch

    module.eval()
    names = list(example)
    args = tuple(torch.from_numpy(np.ascontiguousarray(example[n])) for n in names)
    dynamic_shapes = None
    if dynamic_batch:
        batch = torch.export.Dim("batch", min=1, max=max_batch)
        dynamic_shapes = tuple({0: batch} for _ in args)
    program = torch.export.export(module, args, dynamic_shapes=dynamic_shapes)
    with torch.inference_mode():
        outs = _as_tuple(module(*args))
    meta = _io_meta(names, output_names, example, outs, dynamic_batch)
    torch.export.save(program, str(path), extra_files={IO_FILE: meta})
    return Path(path)


def save_torchscript(
    module: torch.nn.Module, example: Mapping[str, Tensor], path: Path, *, output_names: Sequence[str]
) -> Path:
    """Script ``module`` with TorchScript and save it (batch dim dynamic: scripting keeps shapes symbolic)."""
    import torch

    module.eval()
    names = list(example)
    args = tuple(torch.from_numpy(np.ascontiguousarray(example[n])) for n in names)
    with torch.inference_mode():
        outs = _as_tuple(module(*args))
    meta = _io_meta(names, output_names, example, outs, dynamic_batch=True)
    with quiet_torchscript():
        scripted = torch.jit.script(module)
        torch.jit.save(scripted, str(path), _extra_files={IO_FILE: meta})
    return Path(path)


def export_onnx(
    module: torch.nn.Module,
    example: Mapping[str, Tensor],
    path: Path,
    *,
    output_names: Sequence[str],
    dynamic_batch: bool = True,
    opset: int = 17,
) -> Path:
    """Export ``module`` to a single ONNX file; inputs are named after ``example``'s keys, batch dim dynamic.

    Uses torch's TorchScript-based exporter (``dynamo=False``): the newer exporter needs ``onnxscript``,
    which the edge install does not carry. That exporter warns that it is deprecated; the warning is
    silenced here on purpose. Callers should check the result against torch (ONNX Runtime, see tests).
    """
    import torch

    module.eval()
    names = list(example)
    args = tuple(torch.from_numpy(np.ascontiguousarray(example[n])) for n in names)
    axes = {n: {0: "batch"} for n in (*names, *output_names)} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=names,
            output_names=list(output_names),
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    return Path(path)


def _read_meta(raw: Any) -> dict[str, Any]:
    if isinstance(raw, bytes):
        raw = raw.decode()
    if not raw:
        return {}
    meta = json.loads(raw)
    return meta if isinstance(meta, dict) else {}


def _shapes(raw: Any) -> tuple[tuple[Dim, ...], ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(tuple(d if isinstance(d, int | str) else None for d in shape) for shape in raw)


def load_torch_program(
    path: Path,
    *,
    device: str = "cpu",
    dtype: torch.dtype | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> TorchProgram:
    """Load a ``.pt2`` (``torch.export``) or ``.pt``/``.ts`` (TorchScript) file onto ``device``, cast to ``dtype``."""
    import torch

    path = Path(path)
    extra: dict[str, Any] = {IO_FILE: ""}
    if path.suffix == ".pt2":
        program = torch.export.load(str(path), extra_files=extra)
        if device != "cpu":
            from torch.export.passes import move_to_device_pass

            program = move_to_device_pass(program, device)
        module: Any = program.module()
        fmt = "torch.export"
        default_inputs = tuple(program.graph_signature.user_inputs)
    elif path.suffix in (".pt", ".ts"):
        with quiet_torchscript():
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)  # type: ignore[no-untyped-call]
        module.eval()
        fmt = "torchscript"
        default_inputs = ()
    else:
        raise ValueError(f"{path.name}: expected a torch.export (.pt2) or TorchScript (.pt) file")
    if dtype is not None:
        module = module.to(dtype)
    meta = _read_meta(extra.get(IO_FILE))
    inputs = tuple(input_names or meta.get("inputs") or default_inputs)
    if not inputs:
        raise ValueError(f"{path.name} does not record its input names; pass input_names")
    outputs = tuple(output_names or meta.get("outputs") or ("output_0",))
    return TorchProgram(
        forward=module,
        inputs=inputs,
        outputs=outputs,
        input_shapes=_shapes(meta.get("input_shapes")),
        output_shapes=_shapes(meta.get("output_shapes")),
        format=fmt,
    )


def call_program(program: TorchProgram, args: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Run the program and check it produced one tensor per declared output."""
    outs = _as_tuple(program.forward(*args))
    if len(outs) != len(program.outputs):
        raise RuntimeError(f"model returned {len(outs)} outputs; its metadata names {list(program.outputs)}")
    return outs
