"""Shared fixtures: a real broker per session and engine (Tansu, Apache Kafka), and a real key set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams import BusSettings, Keyring, init_dev_keys
from streams.broker import LocalBroker, make_local_broker

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HOSPITALS = ["H1", "H2"]
KIOSKS = {"k1": "H1", "k2": "H2", "k3": "H1"}


ENGINES = ("tansu", "kafka")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--broker-engine",
        choices=(*ENGINES, "both"),
        default=os.environ.get("MEDKIOSK_TEST_BROKER_ENGINE", "both"),
        help="which local broker the `broker` fixture runs: tansu, kafka (Apache Kafka 4, KRaft) or both "
        "(every test using it runs once per engine; default both, or $MEDKIOSK_TEST_BROKER_ENGINE)",
    )


def selected_engines(config: pytest.Config) -> list[str]:
    choice = str(config.getoption("--broker-engine"))
    return list(ENGINES) if choice == "both" else [choice]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Session scope: pytest groups the tests by engine, so each broker (one JVM for Kafka) starts once.
    if "broker" in metafunc.fixturenames:
        engines = selected_engines(metafunc.config)
        metafunc.parametrize("broker", engines, indirect=True, scope="session")
    if "broker_engine" in metafunc.fixturenames:
        metafunc.parametrize("broker_engine", selected_engines(metafunc.config), scope="session")


@pytest.fixture(scope="session")
def broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """One broker per engine for the session (tests use their own topic names or group ids): Tansu with
    memory storage, and Apache Kafka 4 in KRaft mode."""
    engine = getattr(request, "param", "tansu")
    with make_local_broker(engine, state_dir=tmp_path_factory.mktemp(f"broker-{engine}")) as b:
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
def settings(broker: LocalBroker, keys_dir: Path, tmp_path: Path) -> BusSettings:
    return BusSettings(
        bootstrap_servers=broker.bootstrap,
        keys_dir=keys_dir,
        state_dir=tmp_path / "state",
        topic_partitions=2,
        # Apache Kafka grants idempotent producers; Tansu refuses InitProducerId.
        enable_idempotence=broker.engine == "kafka",
    )
