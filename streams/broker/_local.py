"""One interface over the two local brokers, so tests, drills and ``medkiosk up`` pick an engine by name."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Protocol

from streams.broker._embedded import EmbeddedBroker, EmbeddedBrokerConfig, StorageKind
from streams.broker._kafka import KafkaBroker, KafkaBrokerConfig, KafkaSecurity

if TYPE_CHECKING:
    from typing import Self  # 3.11+; only in annotations, so the kiosk's Python 3.10 imports this too

__all__ = ["BrokerEngine", "LocalBroker", "make_local_broker"]

BrokerEngine = Literal["tansu", "kafka"]


class LocalBroker(Protocol):
    """What :class:`EmbeddedBroker` (Tansu) and :class:`KafkaBroker` (Apache Kafka) both offer."""

    engine: str

    @property
    def bootstrap(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def pid(self) -> int | None: ...

    @property
    def log_path(self) -> Path: ...

    def is_running(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def restart(self, down_s: float = 0.0) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def make_local_broker(
    engine: BrokerEngine,
    *,
    state_dir: Path,
    port: int = 0,
    storage: StorageKind = "memory",
    security: KafkaSecurity | None = None,
) -> LocalBroker:
    """A not-yet-started local broker of *engine*. ``storage`` applies to Tansu (Kafka always keeps its
    log dir on disk, so it is durable across restarts); ``security`` to Kafka only."""
    if engine == "kafka":
        return KafkaBroker(KafkaBrokerConfig(state_dir=state_dir, port=port, security=security))
    if security is not None:
        raise ValueError("the Tansu engine has no SASL or ACLs: secured mode needs engine='kafka'")
    return EmbeddedBroker(EmbeddedBrokerConfig(state_dir=state_dir, port=port, storage=storage))
