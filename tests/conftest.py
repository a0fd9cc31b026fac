"""Shared fixtures: a real embedded Kafka-protocol broker per session, and a real key set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams import BusSettings, Keyring, init_dev_keys
from streams.broker import EmbeddedBroker, EmbeddedBrokerConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HOSPITALS = ["H1", "H2"]
KIOSKS = {"k1": "H1", "k2": "H2", "k3": "H1"}


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One memory-storage broker for the session (tests use their own topic names or group ids)."""
    with EmbeddedBroker(EmbeddedBrokerConfig(state_dir=tmp_path_factory.mktemp("broker"))) as b:
        yield b


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("keys")
    init_dev_keys(
        root,
        hospitals=HOSPITALS,
        kiosks=KIOSKS,
        services=["gateway-1", "gateway-2", "autoscaler-1", "rogue-service", "coordinator-1"],
    )
    return root


@pytest.fixture(scope="session")
def keyring(keys_dir: Path) -> Keyring:
    return Keyring.load(keys_dir)


@pytest.fixture
def settings(broker: EmbeddedBroker, keys_dir: Path, tmp_path: Path) -> BusSettings:
    return BusSettings(
        bootstrap_servers=broker.bootstrap, keys_dir=keys_dir, state_dir=tmp_path / "state", topic_partitions=2
    )
