"""The triage knowledge graph: symptoms, conditions and departments loaded (and checked) from ``data/``."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

__all__ = ["DATA_DIR", "Condition", "GraphError", "KnowledgeGraph", "load_graph", "normalize_symptom"]

DATA_DIR = Path(__file__).resolve().parent / "data"
HAS_SYMPTOM = "has_symptom"
TREATED_IN = "treated_in"
_FILES = ("departments.csv", "symptoms.csv", "conditions.csv")


class GraphError(ValueError):
    """The graph files are inconsistent; the message lists every problem found."""


def normalize_symptom(name: str) -> str:
    """Lower case, single spaces: how symptom names are compared."""
    return " ".join(name.strip().lower().split())


@dataclass(frozen=True, slots=True)
class Condition:
    name: str
    department: str
    symptoms: tuple[str, ...]
    source_title: str
    source_url: str
    routing_note: str = ""


@dataclass(frozen=True)
class KnowledgeGraph:
    """Symptoms, conditions and departments, in file order (the order defines the model's vector layouts)."""

    symptoms: tuple[str, ...]
    red_flags: frozenset[str]
    conditions: tuple[Condition, ...]
    departments: tuple[str, ...]
    body_areas: dict[str, str]
    sha256: str

    @cached_property
    def symptom_index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.symptoms)}

    @cached_property
    def department_index(self) -> dict[str, int]:
        return {d: i for i, d in enumerate(self.departments)}

    def triples(self) -> list[tuple[str, str, str]]:
        """(head, relation, tail): ``(condition, has_symptom, symptom)`` and ``(condition, treated_in, dept)``."""
        out: list[tuple[str, str, str]] = []
        for c in self.conditions:
            out.extend((c.name, HAS_SYMPTOM, s) for s in c.symptoms)
            out.append((c.name, TREATED_IN, c.department))
        return out


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(f)]


def _duplicates(names: list[str]) -> list[str]:
    seen: set[str] = set()
    return sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]


def load_graph(data_dir: Path | None = None) -> KnowledgeGraph:
    """Load and validate the graph (every problem at once): unique names, no dangling references, a citation
    per condition, at least two symptoms per condition, every non-red-flag symptom used by a condition."""
    root = Path(data_dir) if data_dir is not None else DATA_DIR
    digest = hashlib.sha256()
    for name in _FILES:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes())
    departments = [r["department"] for r in _rows(root / "departments.csv")]
    symptom_rows = _rows(root / "symptoms.csv")
    symptoms = [normalize_symptom(r["symptom"]) for r in symptom_rows]
    problems = [
        f"symptom {r['symptom']!r}: red_flag must be yes or no"
        for r in symptom_rows
        if r.get("red_flag") not in ("yes", "no")
    ]
    red_flags = frozenset(normalize_symptom(r["symptom"]) for r in symptom_rows if r.get("red_flag") == "yes")
    conditions: list[Condition] = []
    for r in _rows(root / "conditions.csv"):
        listed = [normalize_symptom(s) for s in r["symptoms"].split(";") if s.strip()]
        c = Condition(
            r["condition"],
            r["department"],
            tuple(listed),
            r["source_title"],
            r["source_url"],
            r.get("routing_note", ""),
        )
        conditions.append(c)
        if c.department not in departments:
            problems.append(f"condition {c.name!r}: unknown department {c.department!r}")
        if len(listed) < 2:
            problems.append(f"condition {c.name!r}: needs at least two symptoms")
        if len(set(listed)) != len(listed):
            problems.append(f"condition {c.name!r}: a symptom is listed twice")
        problems.extend(f"condition {c.name!r}: unknown symptom {s!r}" for s in listed if s not in symptoms)
        if not c.source_title or not c.source_url.startswith("https://"):
            problems.append(f"condition {c.name!r}: needs a source title and an https source URL")
    for label, names in (
        ("department", departments),
        ("symptom", symptoms),
        ("condition", [c.name for c in conditions]),
    ):
        problems.extend(f"duplicate {label} {n!r}" for n in _duplicates(names))
    used = {s for c in conditions for s in c.symptoms}
    problems.extend(f"symptom {s!r} belongs to no condition" for s in symptoms if s not in used and s not in red_flags)
    treated = {c.department for c in conditions}
    problems.extend(f"department {d!r} has no condition" for d in departments if d not in treated)
    if problems:
        raise GraphError("knowledge graph is inconsistent:\n  " + "\n  ".join(problems))
    return KnowledgeGraph(
        symptoms=tuple(symptoms),
        red_flags=red_flags,
        conditions=tuple(conditions),
        departments=tuple(departments),
        body_areas={normalize_symptom(r["symptom"]): r.get("body_area", "") for r in symptom_rows},
        sha256=digest.hexdigest(),
    )
