"""The gateway tests write kiosk and audit topics with their own keys; a broker of their own (same engine as the
session's) keeps those records out of the shared log that end-to-end tests audit from the beginning."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streams.broker import LocalBroker, make_local_broker


@pytest.fixture(scope="module")
def own_broker(broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    with make_local_broker(broker.engine, state_dir=tmp_path_factory.mktemp(f"gw-broker-{broker.engine}")) as b:  # type: ignore[arg-type]
        yield b
