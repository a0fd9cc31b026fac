"""The vocabulary file shipped next to a triage model: names, layout, version, metrics and provenance."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TriageVocab"]


@dataclass(frozen=True)
class TriageVocab:
    """Everything a kiosk needs to encode symptoms and read department scores from a model file."""

    model_name: str
    model_version: str
    #: Input vector layout: position i is ``symptoms[i]`` (1.0 when selected).
    symptoms: tuple[str, ...]
    #: Output layout: position j is ``departments[j]``.
    departments: tuple[str, ...]
    red_flags: frozenset[str]
    emergency_department: str
    input_name: str
    output_name: str
    #: Model files relative to the vocabulary file: "onnx", "torch_export" (.pt2), "torchscript" (.pt).
    files: dict[str, str]
    body_areas: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    #: What in the training data is made up (always says so: the presentations are synthetic).
    synthetic: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        data["symptoms"] = list(self.symptoms)
        data["departments"] = list(self.departments)
        data["red_flags"] = sorted(self.red_flags)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def save(self, path: Path) -> Path:
        Path(path).write_text(self.to_json(), encoding="utf-8")
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> TriageVocab:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        data["symptoms"] = tuple(data["symptoms"])
        data["departments"] = tuple(data["departments"])
        data["red_flags"] = frozenset(data["red_flags"])
        vocab = cls(**data)
        if vocab.emergency_department not in vocab.departments:
            raise ValueError(f"{path}: emergency department {vocab.emergency_department!r} is not an output")
        unknown = vocab.red_flags - set(vocab.symptoms)
        if unknown:
            raise ValueError(f"{path}: red flags {sorted(unknown)} are not symptoms")
        return vocab
