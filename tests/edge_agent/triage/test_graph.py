"""The shipped knowledge graph is consistent, cited, and its red flags are the ones the rule relies on."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from edge_agent.triage import DATA_DIR, GraphError, load_graph, normalize_symptom

BRIEF_RED_FLAGS = {"chest pain", "severe difficulty breathing", "severe bleeding", "face drooping", "slurred speech"}


def test_graph_loads_and_every_condition_is_complete() -> None:
    graph = load_graph()
    assert 10 <= len(graph.departments) <= 15
    assert len(graph.conditions) >= 30 and len(graph.symptoms) >= 40
    for c in graph.conditions:
        assert len(c.symptoms) >= 2, c.name
        assert c.department in graph.departments, c.name
        assert c.source_title and c.source_url.startswith("https://medlineplus.gov/"), c.name
        assert all(s in graph.symptom_index for s in c.symptoms), c.name
    used = {s for c in graph.conditions for s in c.symptoms}
    assert {s for s in graph.symptoms if s not in used} <= graph.red_flags
    assert {c.department for c in graph.conditions} == set(graph.departments)
    assert graph.red_flags >= BRIEF_RED_FLAGS and "Emergency" in graph.departments
    triples = graph.triples()
    assert len(triples) == sum(len(c.symptoms) + 1 for c in graph.conditions)
    assert {r for _, r, _ in triples} == {"has_symptom", "treated_in"}


def test_data_readme_says_what_this_is() -> None:
    text = (DATA_DIR / "README.md").read_text().lower()
    assert "not a diagnosis" in text and "red flag" in text and "synthetic" in text


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def _edit_conditions(root: Path, change: dict[str, str]) -> None:
    path = root / "conditions.csv"
    rows = list(csv.DictReader(path.open()))
    rows[0].update(change)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"department": "Cardiac Surgery"}, "unknown department"),
        ({"symptoms": "chest pain;purple elbows"}, "unknown symptom 'purple elbows'"),
        ({"symptoms": "chest pain"}, "at least two symptoms"),
        ({"source_url": ""}, "source"),
        ({"condition": "stroke"}, "duplicate condition 'stroke'"),
    ],
)
def test_inconsistencies_are_reported(tmp_path: Path, change: dict[str, str], message: str) -> None:
    root = _copy(tmp_path)
    _edit_conditions(root, change)
    with pytest.raises(GraphError, match=message):
        load_graph(root)


def test_normalize_symptom() -> None:
    assert normalize_symptom("  Chest   PAIN ") == "chest pain"
