"""Run Apache Kafka 4 (KRaft, one combined broker + controller node) as a child process.

The same shape as the Tansu launcher (:class:`~streams.broker.EmbeddedBroker`): a state dir with
``broker.pid``, ``broker.log`` and ``broker.json``, readiness by a Kafka request rather than an open port,
``start``/``stop``/``restart`` and ``with``. The log dir is formatted once (``kafka-storage format``),
so data, committed offsets and SCRAM users survive restarts, as on a real cluster.

Secured mode (:class:`KafkaSecurity`): the client listener is ``SASL_PLAINTEXT`` with SCRAM-SHA-512,
users are created at format time, ``StandardAuthorizer`` denies whatever no ACL allows, and only the
admin user is a super user. The controller listener (broker-to-controller only) uses SASL/PLAIN with
the admin's static credentials, because SCRAM is not available on KRaft controller listeners.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from streams.broker._kafka_libs import find_java, find_kafka_libs
from streams.broker._probe import kafka_ready
from streams.broker._process import (
    _LOG_FILE,
    _PID_FILE,
    BrokerStartError,
    _atomic_write,
    _clear_state,
    _log_tail,
    _port_free,
    _stop_popen,
    free_port,
    read_status,
    stop_from_state,
    wait_ready,
    write_state,
)

if TYPE_CHECKING:
    from typing import Self  # 3.11+; only in annotations, so the kiosk's Python 3.10 imports this too

__all__ = ["KAFKA_MAIN_CLASS", "KafkaBroker", "KafkaBrokerConfig", "KafkaSecurity"]

KAFKA_MAIN_CLASS = "kafka.Kafka"
_STORAGE_TOOL = "kafka.tools.StorageTool"
_SCRAM = "SCRAM-SHA-512"
_LOG4J = """status = error
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""


@dataclass(frozen=True, kw_only=True)
class KafkaSecurity:
    """Secured mode: SASL/SCRAM-SHA-512 users (name -> password) created at format time; *admin* is super."""

    users: Mapping[str, str] = field(default_factory=dict)
    admin_user: str = "admin"
    admin_password: str

    def all_users(self) -> dict[str, str]:
        return {**self.users, self.admin_user: self.admin_password}


@dataclass(kw_only=True)
class KafkaBrokerConfig:
    """How to run the local Kafka node. ``port=0`` picks a free port at the first :meth:`KafkaBroker.start`."""

    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    controller_port: int = 0
    #: Maximum JVM heap; 512 MiB carries the test suite and the demo.
    heap: str = "512m"
    #: C1 only (``TieredStopAtLevel=1``): a local node's start time matters more than its peak throughput,
    #: and on a busy 2-core machine the full JIT doubles the time to ready. Production brokers use defaults.
    jvm_options: tuple[str, ...] = (
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Xss512k",
        "-Djava.awt.headless=true",
    )
    libs_dir: Path | None = None
    partitions: int = 1
    security: KafkaSecurity | None = None
    #: Extra ``server.properties`` lines (they win over the defaults).
    properties: Mapping[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 90.0
    stop_timeout_s: float = 20.0
    stop_signal: signal.Signals = signal.SIGTERM


def _cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _jaas_scram(user: str, password: str) -> str:
    return f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" password="{password}";'


def _quote_scram(value: str) -> str:
    if any(c in value for c in ',[]="'):
        raise ValueError(f"SCRAM user names and passwords may not contain , [ ] = or quotes: {value!r}")
    return value


class KafkaBroker:
    """An Apache Kafka 4 KRaft node on 127.0.0.1 for development, tests and drills.

    ``with KafkaBroker(KafkaBrokerConfig(state_dir=tmp)) as broker: use(broker.bootstrap)``
    """

    engine = "kafka"

    def __init__(self, config: KafkaBrokerConfig) -> None:
        self._config = config
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._controller_port: int | None = None
        self._started_at = 0.0
        self._startup_s = 0.0

    @property
    def config(self) -> KafkaBrokerConfig:
        return self._config

    @property
    def port(self) -> int:
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
    def log_path(self) -> Path:
        return self._config.state_dir / _LOG_FILE

    @property
    def data_dir(self) -> Path:
        return self._config.state_dir / "data"

    @property
    def startup_s(self) -> float:
        """Seconds the last start took from ``exec`` to ready (format excluded)."""
        return self._startup_s

    @property
    def security(self) -> KafkaSecurity | None:
        return self._config.security

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Format the log dir when new, start the JVM and block until the node serves Kafka requests.

        A no-op when already running; raises :class:`BrokerStartError` on a busy state dir or port, or
        when the node is not ready within ``ready_timeout_s`` (it is stopped again then).
        """
        if self.is_running():
            return
        cfg = self._config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        status = read_status(cfg.state_dir, probe_timeout_s=0.5)
        if status is not None and status.running:
            raise BrokerStartError(
                f"a broker (pid {status.pid}, {status.bootstrap}) already runs from {cfg.state_dir}; stop it first"
            )
        stop_from_state(cfg.state_dir, timeout_s=cfg.stop_timeout_s, stop_signal=cfg.stop_signal)
        try:
            self._launch()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the node (SIGTERM: a controlled shutdown that flushes the logs; SIGKILL after
        ``stop_timeout_s``); idempotent. The log dir is kept."""
        if self._process is None and self._port is None:
            return
        self._stop_process()
        _clear_state(self._config.state_dir)

    def kill(self) -> None:
        """SIGKILL the node (a crash: no controlled shutdown, no flush); :meth:`start` recovers the log dir."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def restart(self, down_s: float = 0.0) -> None:
        """Stop and start the node on the same ports, ``down_s`` seconds down in between (an outage drill)."""
        if self._port is None:
            self.start()
            return
        self._stop_process()
        if down_s > 0:
            time.sleep(down_s)
        self._launch()

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

    # --- internals -----------------------------------------------------------------------------

    def _properties(self) -> dict[str, str]:
        cfg = self._config
        assert self._port is not None and self._controller_port is not None
        host = cfg.host
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{host}:{self._controller_port}",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(cfg.partitions),
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "3",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # A lone node: the first member of a new group must not wait 3 s for company.
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            # Topics come from the catalog, and tests shrink segments to see compaction and retention act.
            "log.cleaner.backoff.ms": "500",
            "log.retention.check.interval.ms": "2000",
            "log.segment.delete.delay.ms": "1000",
            "log.initial.task.delay.ms": "1000",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "background.threads": "4",
            "log.cleaner.threads": "1",
            "controlled.shutdown.enable": "true",
        }
        sec = cfg.security
        if sec is None:
            props |= {
                "listeners": f"PLAINTEXT://{host}:{self._port},CONTROLLER://{host}:{self._controller_port}",
                "advertised.listeners": f"PLAINTEXT://{host}:{self._port}",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name": "PLAINTEXT",
            }
        else:
            admin, password = sec.admin_user, sec.admin_password
            props |= {
                "listeners": f"SASL_PLAINTEXT://{host}:{self._port},CONTROLLER://{host}:{self._controller_port}",
                "advertised.listeners": f"SASL_PLAINTEXT://{host}:{self._port}",
                "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
                "inter.broker.listener.name": "SASL_PLAINTEXT",
                "sasl.enabled.mechanisms": _SCRAM,
                "sasl.mechanism.inter.broker.protocol": _SCRAM,
                "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": _jaas_scram(admin, password),
                "sasl.mechanism.controller.protocol": "PLAIN",
                "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
                "listener.name.controller.plain.sasl.jaas.config": (
                    "org.apache.kafka.common.security.plain.PlainLoginModule required "
                    f'username="{admin}" password="{password}" user_{admin}="{password}";'
                ),
                "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users": f"User:{admin}",
                "allow.everyone.if.no.acl.found": "false",
            }
        props |= dict(cfg.properties)
        return props

    def _java_command(self, main_class: str, *args: str) -> list[str]:
        cfg = self._config
        libs = find_kafka_libs(cfg.libs_dir)
        return [
            find_java(),
            f"-Xmx{cfg.heap}",
            "-Xms64m",
            *cfg.jvm_options,
            f"-Dlog4j2.configurationFile={cfg.state_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={cfg.state_dir / 'logs'}",
            "-cp",
            f"{libs}/*",
            main_class,
            *args,
        ]

    def _format(self, props_path: Path) -> None:
        cfg = self._config
        meta = self.data_dir / "meta.properties"
        if meta.exists():
            return
        args = ["format", f"--cluster-id={_cluster_id()}", "-c", str(props_path), "--ignore-formatted"]
        if cfg.security is not None:
            for user, password in sorted(cfg.security.all_users().items()):
                args += ["--add-scram", f"{_SCRAM}=[name={_quote_scram(user)},password={_quote_scram(password)}]"]
        with self.log_path.open("ab") as log:
            done = subprocess.run(
                self._java_command(_STORAGE_TOOL, *args),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=cfg.ready_timeout_s,
                check=False,
            )
        if done.returncode != 0:
            raise BrokerStartError(
                f"kafka-storage format failed ({done.returncode}); "
                f"{self.log_path} ends with:\n{_log_tail(self.log_path)}"
            )

    def _launch(self) -> None:
        cfg = self._config
        saved = _load_ports(cfg.state_dir)
        port = self._port or cfg.port or saved.get("port") or free_port(cfg.host)
        controller = self._controller_port or cfg.controller_port or saved.get("controller_port") or 0
        if not controller or controller == port:
            controller = free_port(cfg.host)
        for p in (port, controller):
            if not _port_free(cfg.host, p):
                raise BrokerStartError(f"port {p} on {cfg.host} is already in use")
        self._port, self._controller_port = port, controller
        (cfg.state_dir / "log4j2.properties").write_text(_LOG4J)
        props_path = cfg.state_dir / "server.properties"
        props_path.write_text("".join(f"{k}={v}\n" for k, v in self._properties().items()))
        _atomic_write(cfg.state_dir / "ports.json", json.dumps({"port": port, "controller_port": controller}))
        self._format(props_path)
        t0 = time.monotonic()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._java_command(KAFKA_MAIN_CLASS, str(props_path)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._started_at = time.time()
        self._write_state()
        try:
            self._wait_ready()
        except BaseException:
            self._stop_process()
            raise
        self._startup_s = time.monotonic() - t0

    def _ready(self, timeout_s: float) -> bool:
        cfg = self._config
        assert self._port is not None
        if cfg.security is None:
            return kafka_ready(cfg.host, self._port, timeout_s=timeout_s)
        # ApiVersions first: it needs no login, and the client library would log every refused connect.
        return kafka_ready(cfg.host, self._port, timeout_s=timeout_s, api_versions_only=True) and _sasl_ready(
            self.bootstrap, cfg.security, timeout_s
        )

    def _wait_ready(self) -> None:
        assert self._process is not None
        wait_ready(
            self._process,
            engine="kafka",
            bootstrap=self.bootstrap,
            ready=self._ready,
            timeout_s=self._config.ready_timeout_s,
            log_path=self.log_path,
            probe_s=(0.2, 2.0),
            poll_s=0.1,
        )

    def _stop_process(self) -> None:
        if self._process is not None:
            _stop_popen(self._process, self._config.stop_timeout_s, self._config.stop_signal)
            self._process = None
        (self._config.state_dir / _PID_FILE).unlink(missing_ok=True)

    def _write_state(self) -> None:
        assert self._process is not None and self._port is not None
        cfg = self._config
        state = {
            "engine": self.engine,
            "pid": self._process.pid,
            "host": cfg.host,
            "port": self._port,
            "controller_port": self._controller_port,
            "bootstrap": self.bootstrap,
            "storage": "disk",
            "secured": cfg.security is not None,
            "cluster_id": _read_cluster_id(self.data_dir),
            "started_at": self._started_at,
            "log": str(self.log_path),
            "data_dir": str(self.data_dir),
        }
        write_state(cfg.state_dir, self._process.pid, state)


def _load_ports(state_dir: Path) -> dict[str, int]:
    try:
        data = json.loads((state_dir / "ports.json").read_text())
        return {k: int(v) for k, v in data.items() if k in ("port", "controller_port")}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def _read_cluster_id(data_dir: Path) -> str:
    try:
        for line in (data_dir / "meta.properties").read_text().splitlines():
            if line.startswith("cluster.id="):
                return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return ""


def _sasl_ready(bootstrap: str, security: KafkaSecurity, timeout_s: float) -> bool:
    """Authenticate as the admin and read the cluster's metadata (run in its own thread and loop, so
    it works whether or not the caller is inside an event loop)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=_SCRAM,
            sasl_plain_username=security.admin_user,
            sasl_plain_password=security.admin_password,
            request_timeout_ms=int(timeout_s * 1000),
        )
        try:
            await asyncio.wait_for(admin.start(), timeout_s)
            cluster = await asyncio.wait_for(admin.describe_cluster(), timeout_s)
            return bool(cluster.get("brokers"))
        except (KafkaError, OSError, TimeoutError):
            return False
        finally:
            await admin.close()

    result: list[bool] = []
    worker = threading.Thread(target=lambda: result.append(asyncio.run(probe())), daemon=True)
    worker.start()
    worker.join(timeout_s * 3 + 1)
    return bool(result and result[0])
