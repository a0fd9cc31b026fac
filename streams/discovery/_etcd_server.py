"""A real etcd (Debian's ``etcd-server``) on loopback ephemeral ports, for development, ``up`` and tests."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

from streams.broker import free_port

if TYPE_CHECKING:
    from typing import Self  # 3.11+; only in annotations, so the kiosk's Python 3.10 imports this too

__all__ = ["EtcdNotFound", "EtcdServer", "EtcdServerConfig", "find_etcd"]


class EtcdNotFound(RuntimeError):
    """No ``etcd`` binary (Debian: ``apt-get install etcd-server``)."""


def find_etcd(binary: str = "etcd") -> str:
    found = shutil.which(binary)
    if found is None:
        raise EtcdNotFound(f"{binary} is not on PATH (Debian: apt-get install etcd-server)")
    return found


@dataclass(kw_only=True)
class EtcdServerConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    client_port: int = 0
    peer_port: int = 0
    binary: str = "etcd"
    start_timeout_s: float = 20.0


class EtcdServer:
    """``with EtcdServer(EtcdServerConfig(data_dir=...)) as etcd: etcd.url`` — one member, loopback only."""

    def __init__(self, config: EtcdServerConfig) -> None:
        self.config = config
        self.client_port = config.client_port or free_port(config.host)
        self.peer_port = config.peer_port or free_port(config.host)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The client URL (also where the v3 HTTP/JSON gateway answers)."""
        return f"http://{self.config.host}:{self.client_port}"

    @property
    def log_path(self) -> Path:
        return self.config.data_dir / "etcd.log"

    def start(self) -> None:
        binary = find_etcd(self.config.binary)
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        peer = f"http://{self.config.host}:{self.peer_port}"
        argv = [
            binary,
            "--name",
            "medkiosk",
            "--data-dir",
            str(self.config.data_dir / "data"),
            "--listen-client-urls",
            self.url,
            "--advertise-client-urls",
            self.url,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"medkiosk={peer}",
            "--log-level",
            "warn",
        ]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.config.start_timeout_s
        while not self.healthy():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"etcd did not become healthy; see {self.log_path}")
            time.sleep(0.1)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp:  # noqa: S310 - our loopback URL
                return bool(json.loads(resp.read()).get("health") == "true")
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
