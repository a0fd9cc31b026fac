"""What both local brokers (Tansu, Apache Kafka) share: their child process, ports, the pid and state files in a
state dir, and waiting for readiness. ``medkiosk broker status|stop`` read those files from any shell, whichever
engine wrote them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.broker._probe import kafka_ready

__all__ = [
    "BrokerStartError",
    "BrokerStatus",
    "free_port",
    "read_status",
    "stop_from_state",
    "wait_ready",
    "write_state",
]

_PID_FILE = "broker.pid"
_STATE_FILE = "broker.json"
_LOG_FILE = "broker.log"
#: What the broker process's command line must contain (guards against pid reuse).
_ENGINE_NEEDLE = {"tansu": b"tansu", "kafka": b"kafka.Kafka"}


class BrokerStartError(RuntimeError):
    """The broker could not be started or did not become ready; the message carries the log's tail."""


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


def write_state(state_dir: Path, pid: int, state: dict[str, Any]) -> None:
    """Record a started broker: ``broker.pid`` and ``broker.json`` (which ``read_status`` reads)."""
    _atomic_write(state_dir / _PID_FILE, f"{pid}\n")
    _atomic_write(state_dir / _STATE_FILE, json.dumps(state, indent=2) + "\n")


def wait_ready(
    process: subprocess.Popen[bytes],
    *,
    engine: str,
    bootstrap: str,
    ready: Callable[[float], bool],
    timeout_s: float,
    log_path: Path,
    probe_s: tuple[float, float],
    poll_s: float,
) -> None:
    """Block until ``ready(probe_timeout)`` is true; raise :class:`BrokerStartError` with the log's tail when
    *process* exits first or *timeout_s* passes. Each probe gets the time left, clamped to *probe_s*."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise BrokerStartError(
                f"{engine} exited with code {process.returncode} before it was ready; "
                f"{log_path} ends with:\n{_log_tail(log_path)}"
            )
        remaining = deadline - time.monotonic()
        if ready(max(probe_s[0], min(probe_s[1], remaining))):
            return
        if remaining <= 0:
            raise BrokerStartError(
                f"{engine} not ready on {bootstrap} after {timeout_s:.0f}s; "
                f"{log_path} ends with:\n{_log_tail(log_path)}"
            )
        time.sleep(poll_s)


def _atomic_write(path: Path, text: str) -> None:
    # status readers in other processes must never see a half-written file.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
