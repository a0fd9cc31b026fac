"""Run the Tansu broker (Kafka wire protocol) as a child process for development and tests.

Readiness is probed with two raw Kafka requests over a plain socket (ApiVersions v0, then Metadata v0):
no event loop, no client library, a few milliseconds per probe, and it proves the listener speaks Kafka
and can reach its storage rather than merely accepting TCP connections.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from streams.broker._binary import find_tansu_binary
from streams.broker._probe import kafka_ready
from streams.broker._process import (
    _LOG_FILE,
    _PID_FILE,
    BrokerStartError,
    BrokerStatus,
    _clear_state,
    _port_free,
    _stop_popen,
    free_port,
    read_status,
    stop_from_state,
    wait_ready,
    write_state,
)
from streams.broker._s3 import BUCKET, MotoServer, s3_env, start_moto

if TYPE_CHECKING:
    from typing import Self  # 3.11+; only in annotations, so the kiosk's Python 3.10 imports this too

__all__ = [
    "BrokerStartError",
    "BrokerStatus",
    "EmbeddedBroker",
    "EmbeddedBrokerConfig",
    "StorageKind",
    "kafka_ready",
    "read_status",
    "stop_from_state",
]

StorageKind = Literal["memory", "s3"]

_MOTO_LOG_FILE = "moto.log"


@dataclass(kw_only=True)
class EmbeddedBrokerConfig:
    """How to run the embedded broker. ``port=0`` picks a free port at the first :meth:`EmbeddedBroker.start`."""

    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    storage: StorageKind = "memory"
    cluster_id: str = "medkiosk"
    ready_timeout_s: float = 15.0
    stop_timeout_s: float = 10.0
    #: Tansu exits at once and cleanly (acknowledged records and offsets kept) on SIGINT; on SIGTERM it
    #: waits 5 s for connected clients to drain, which turns every stop/restart with live clients slow.
    stop_signal: signal.Signals = signal.SIGINT


# --- the broker ------------------------------------------------------------------------------------


class EmbeddedBroker:
    """A Tansu broker child process, optionally backed by a local moto S3 server for durability.

    ``with EmbeddedBroker(EmbeddedBrokerConfig(state_dir=tmp)) as broker: use(broker.bootstrap)``
    """

    engine = "tansu"

    def __init__(self, config: EmbeddedBrokerConfig) -> None:
        self._config = config
        self._process: subprocess.Popen[bytes] | None = None
        self._moto: MotoServer | None = None
        self._port: int | None = None
        self._started_at = 0.0

    @property
    def config(self) -> EmbeddedBrokerConfig:
        return self._config

    @property
    def port(self) -> int:
        """The listening port; with ``port=0`` it is known only once :meth:`start` has run."""
        port = self._port or self._config.port
        if not port:
            raise RuntimeError("port=0: the broker's port is chosen by start()")
        return port

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients' ``bootstrap_servers``."""
        return f"{self._config.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.is_running() and self._process is not None else None

    @property
    def s3_endpoint(self) -> str | None:
        """The moto server's URL when ``storage="s3"`` and it is running."""
        return self._moto.endpoint if self._moto is not None else None

    @property
    def log_path(self) -> Path:
        return self._config.state_dir / _LOG_FILE

    def is_running(self) -> bool:
        """True while the broker process this object started is alive (not a readiness check)."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the broker (and moto for ``storage="s3"``) and block until it answers Kafka requests.

        A no-op when already running. Raises :class:`BrokerStartError` when another live broker owns the
        state dir, the port is taken, or the broker is not ready within ``ready_timeout_s``; everything
        started so far is stopped again in that case.
        """
        if self.is_running():
            return
        cfg = self._config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self._claim_state_dir()
        binary = find_tansu_binary()
        try:
            if cfg.storage == "s3" and (self._moto is None or self._moto.process.poll() is not None):
                self._moto = start_moto(
                    host=cfg.host,
                    port=free_port(cfg.host),
                    log_path=cfg.state_dir / _MOTO_LOG_FILE,
                    ready_timeout_s=cfg.ready_timeout_s,
                )
            self._launch(binary)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the broker (``stop_signal``, SIGKILL after ``stop_timeout_s``) and its moto server; idempotent."""
        if self._process is None and self._moto is None:
            return
        self._stop_broker()
        if self._moto is not None:
            self._moto.stop(self._config.stop_timeout_s)
            self._moto = None
        _clear_state(self._config.state_dir)

    def restart(self, down_s: float = 0.0) -> None:
        """Stop and start the broker on the same port, staying down ``down_s`` seconds in between (an
        outage drill); the moto server (and so S3 data) keeps running."""
        if self._port is None:
            self.start()
            return
        self._stop_broker()
        if down_s > 0:
            time.sleep(down_s)
        self._launch(find_tansu_binary())

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _claim_state_dir(self) -> None:
        status = read_status(self._config.state_dir, probe_timeout_s=0.5)
        if status is not None and status.running:
            raise BrokerStartError(
                f"a broker (pid {status.pid}, {status.bootstrap}) already runs from "
                f"{self._config.state_dir}; stop it first (`medkiosk broker stop`)"
            )
        # Leftovers of a crashed run (maybe an orphaned moto server) would otherwise linger.
        stop_from_state(
            self._config.state_dir, timeout_s=self._config.stop_timeout_s, stop_signal=self._config.stop_signal
        )

    def _launch(self, binary: Path) -> None:
        cfg = self._config
        port = self._port or cfg.port or free_port(cfg.host)
        if not _port_free(cfg.host, port):
            raise BrokerStartError(f"port {port} on {cfg.host} is already in use")
        self._port = port
        url = f"tcp://{cfg.host}:{port}"
        env = dict(os.environ)
        storage_url = "memory://tansu/"
        if cfg.storage == "s3":
            assert self._moto is not None
            env.update(s3_env(self._moto.endpoint))
            storage_url = f"s3://{BUCKET}/"
        command = [
            str(binary),
            "broker",
            "--cluster-id",
            cfg.cluster_id,
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            storage_url,
        ]
        with self.log_path.open("ab") as log:
            # A new session: Ctrl-C in the launching terminal must not reach the broker behind our back.
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        self._started_at = time.time()
        self._write_state(storage_url)
        try:
            self._wait_ready()
        except BaseException:
            self._stop_broker()
            raise

    def _wait_ready(self) -> None:
        assert self._process is not None and self._port is not None
        cfg, port = self._config, self._port
        wait_ready(
            self._process,
            engine="tansu",
            bootstrap=self.bootstrap,
            ready=lambda timeout_s: kafka_ready(cfg.host, port, timeout_s=timeout_s),
            timeout_s=cfg.ready_timeout_s,
            log_path=self.log_path,
            probe_s=(0.05, 1.0),
            poll_s=0.02,
        )

    def _stop_broker(self) -> None:
        if self._process is not None:
            _stop_popen(self._process, self._config.stop_timeout_s, self._config.stop_signal)
            self._process = None
        (self._config.state_dir / _PID_FILE).unlink(missing_ok=True)

    def _write_state(self, storage_url: str) -> None:
        assert self._process is not None and self._port is not None
        cfg = self._config
        moto = self._moto
        state = {
            "engine": self.engine,
            "pid": self._process.pid,
            "host": cfg.host,
            "port": self._port,
            "bootstrap": self.bootstrap,
            "storage": cfg.storage,
            "storage_url": storage_url,
            "cluster_id": cfg.cluster_id,
            "started_at": self._started_at,
            "log": str(self.log_path),
            "moto": None
            if moto is None
            else {"pid": moto.pid, "port": moto.port, "endpoint": moto.endpoint, "bucket": BUCKET},
        }
        write_state(cfg.state_dir, self._process.pid, state)
