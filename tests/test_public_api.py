"""The public surface of each package is what we meant: every name in ``__all__`` exists, nothing private leaks."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "schemas",
    "streams",
    "streams.broker",
    "streams.discovery",
    "streams.federated",
    "streams.multimodal",
    "cloud_workers.trainer",
    "cloud_workers.gateway",
    "cloud_workers.hospital",
    "cloud_workers.audit",
    "cloud_workers.autoscaler",
    "edge_agent.simulator",
    "edge_agent.vision",
    "edge_agent.inference",
    "edge_agent.triage",
    "edge_agent.agent",
    "edge_agent.sensors",
    "edge_agent.fusion",
    "medkiosk",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_exported_members(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported)), "duplicates in __all__"
    for member in exported:
        assert hasattr(module, member), f"{name}.{member} is in __all__ but missing"
        assert not member.startswith("_") or member == "__version__"


def test_streams_exports_the_bus() -> None:
    import streams

    for member in ("seal", "open_envelope", "Outbox", "OutboxSender", "EnvelopeConsumer", "apply_topics", "CATALOG"):
        assert member in streams.__all__


def test_edge_and_cloud_never_import_each_other() -> None:
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1]
    pattern = {
        "edge_agent": re.compile(r"^\s*(from|import)\s+cloud_workers", re.M),
        "cloud_workers": re.compile(r"^\s*(from|import)\s+edge_agent", re.M),
    }
    for package, regex in pattern.items():
        for path in (root / package).rglob("*.py"):
            assert not regex.search(path.read_text()), f"{path} imports across the edge/cloud boundary"
