"""The public surface of the FL packages, and the edge/cloud boundary."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("name", ["cloud_workers.federated", "streams.federated", "edge_agent.federated"])
def test_exported_members(name: str) -> None:
    module = importlib.import_module(name)
    assert len(module.__all__) == len(set(module.__all__))
    for member in module.__all__:
        assert getattr(module, member) is not None and not member.startswith("_")


def test_the_fl_client_and_the_cloud_roles_meet_only_on_topics() -> None:
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[3]
    for path in [
        *(root / "cloud_workers" / "federated").rglob("*.py"),
        *(root / "edge_agent" / "federated").rglob("*.py"),
    ]:
        text = path.read_text()
        other = "edge_agent" if "cloud_workers" in path.parts else "cloud_workers"
        assert f"import {other}" not in text and f"from {other}" not in text, path
