"""Run the Tansu broker (Kafka wire protocol) as a child process for development and tests.

Readiness is probed with two raw Kafka requests over a plain socket (ApiVersions v0, then Metadata v0):
no event loop, no client library, a few milliseconds per probe, and it proves the listener speaks Kafka
and can reach its storage rather than merely accepting TCP connections.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from streams.broker._binary import find_tansu_binary
from streams.broker._probe import kafka_ready
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

_PID_FILE = "broker.pid"
_STATE_FILE = "broker.json"
_LOG_FILE = "broker.log"
_MOTO_LOG_FILE = "moto.log"
#: What the broker process's command line must contain (guards against pid reuse).
_ENGINE_NEEDLE = {"tansu": b"tansu", "kafka": b"kafka.Kafka"}


class BrokerStartError(RuntimeError):
    """The broker could not be started or did not become ready; the message carries the log's tail."""


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


@dataclass(frozen=True, kw_only=True)
class BrokerStatus:
    """What ``broker.json`` in a state dir says, plus whether that broker is alive and answering now."""

    state_dir: Path
    pid: int
    host: str
    port: int
    #: "memory" or "s3" (Tansu), "disk" (Apache Kafka).
    storage: str
    cluster_id: str
    started_at: float
    running: bool
    ready: bool
    moto_pid: int | None = None
    moto_port: int | None = None
    log_path: Path = field(default=Path())
    #: "tansu" or "kafka"
    engine: str = "tansu"
    secured: bool = False

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def s3_endpoint(self) -> str | None:
        return None if self.moto_port is None else f"http://{self.host}:{self.moto_port}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, as printed by ``medkiosk broker status``."""
        return {
            "engine": self.engine,
            "running": self.running,
            "ready": self.ready,
            "secured": self.secured,
            "bootstrap": self.bootstrap,
            "pid": self.pid,
            "port": self.port,
            "storage": self.storage,
            "cluster_id": self.cluster_id,
            "started_at": self.started_at,
            "s3_endpoint": self.s3_endpoint,
            "moto_pid": self.moto_pid,
            "state_dir": str(self.state_dir),
            "log": str(self.log_path),
        }


# --- processes and ports ---------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (for brokers, metrics endpoints, local services)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR like the broker itself: TIME_WAIT leftovers of the last run must not count as busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A broker started by a CLI process that has exited may be reparented to a PID 1 that never reaps
    # (containers): such a zombie still answers kill(0) but is dead.
    with contextlib.suppress(OSError, IndexError):
        stat_line = Path(f"/proc/{pid}/stat").read_text()
        return stat_line.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    return True


def _pid_is(pid: int, needle: bytes) -> bool:
    """Guard against pid reuse: the process's command line must mention *needle* (unknowable without /proc)."""
    try:
        return needle in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True


def _terminate_pid(pid: int, timeout_s: float, stop_signal: signal.Signals) -> None:
    for sig, wait_s in ((stop_signal, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            # Reap it if it happens to be our own child; otherwise someone else's wait() does.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not _pid_alive(pid):
                return
            time.sleep(0.02)


def _stop_popen(process: subprocess.Popen[bytes], timeout_s: float, stop_signal: signal.Signals) -> None:
    if process.poll() is None:
        process.send_signal(stop_signal)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _log_tail(path: Path, max_bytes: int = 4000) -> str:
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - max_bytes))
            return log.read().decode(errors="replace")
    except OSError:
        return "(no log)"


# --- state files -----------------------------------------------------------------------------------


def _load_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / _STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _clear_state(state_dir: Path) -> None:
    for name in (_PID_FILE, _STATE_FILE):
        (state_dir / name).unlink(missing_ok=True)


def read_status(state_dir: Path, *, probe_timeout_s: float = 1.0) -> BrokerStatus | None:
    """Status of the broker recorded in *state_dir* (by any process), or ``None`` when none is recorded."""
    data = _load_state(state_dir)
    if data is None:
        return None
    try:
        pid = int(data["pid"])
        host = str(data["host"])
        port = int(data["port"])
        moto = data.get("moto") or {}
        engine = "kafka" if data.get("engine") == "kafka" else "tansu"
        secured = bool(data.get("secured", False))
        running = _pid_alive(pid) and _pid_is(pid, _ENGINE_NEEDLE[engine])
        # A SASL listener refuses Metadata before authentication: a live secured node counts as ready
        # when it answers ApiVersions (its start() already proved an authenticated round trip).
        ready = running and kafka_ready(host, port, timeout_s=probe_timeout_s, api_versions_only=secured)
        return BrokerStatus(
            state_dir=state_dir,
            pid=pid,
            host=host,
            port=port,
            storage=str(data.get("storage", "memory")),
            cluster_id=str(data.get("cluster_id", "")),
            started_at=float(data.get("started_at", 0.0)),
            running=running,
            ready=ready,
            moto_pid=int(moto["pid"]) if "pid" in moto else None,
            moto_port=int(moto["port"]) if "port" in moto else None,
            log_path=state_dir / _LOG_FILE,
            engine=engine,
            secured=secured,
        )
    except (KeyError, TypeError, ValueError):
        return None


def stop_from_state(state_dir: Path, *, timeout_s: float = 10.0, stop_signal: signal.Signals = signal.SIGINT) -> bool:
    """Stop the broker (Tansu and its moto server, or Apache Kafka) recorded in *state_dir*, whichever
    process started it.

    Sends *stop_signal* (see :attr:`EmbeddedBrokerConfig.stop_signal`; Kafka gets SIGTERM, its controlled
    shutdown), then SIGKILL after *timeout_s*.
    Removes the pid/state files either way. Returns True when a live broker was stopped.
    """
    data = _load_state(state_dir) or {}
    recorded = data.get("pid")
    pid = recorded if isinstance(recorded, int) else None
    if pid is None:
        with contextlib.suppress(OSError, ValueError):
            pid = int((state_dir / _PID_FILE).read_text().strip())
    stopped = False
    needle = _ENGINE_NEEDLE["kafka" if data.get("engine") == "kafka" else "tansu"]
    if pid is not None and _pid_alive(pid) and _pid_is(pid, needle):
        _terminate_pid(pid, timeout_s, signal.SIGTERM if data.get("engine") == "kafka" else stop_signal)
        stopped = True
    moto_pid = (data.get("moto") or {}).get("pid")
    if isinstance(moto_pid, int) and _pid_alive(moto_pid) and _pid_is(moto_pid, b"moto"):
        _terminate_pid(moto_pid, timeout_s, signal.SIGTERM)
    _clear_state(state_dir)
    return stopped


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
        cfg = self._config
        deadline = time.monotonic() + cfg.ready_timeout_s
        while True:
            if self._process.poll() is not None:
                raise BrokerStartError(
                    f"tansu exited with code {self._process.returncode} before it was ready; "
                    f"{self.log_path} ends with:\n{_log_tail(self.log_path)}"
                )
            remaining = deadline - time.monotonic()
            if kafka_ready(cfg.host, self._port, timeout_s=max(0.05, min(1.0, remaining))):
                return
            if remaining <= 0:
                raise BrokerStartError(
                    f"tansu not ready on {self.bootstrap} after {cfg.ready_timeout_s:.0f}s; "
                    f"{self.log_path} ends with:\n{_log_tail(self.log_path)}"
                )
            time.sleep(0.02)

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
        _atomic_write(cfg.state_dir / _PID_FILE, f"{self._process.pid}\n")
        _atomic_write(cfg.state_dir / _STATE_FILE, json.dumps(state, indent=2) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    # status readers in other processes must never see a half-written file.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
