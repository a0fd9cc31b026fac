"""``medkiosk up --prometheus``: the registry's Prometheus SD endpoint as its own process, and a real
Prometheus on loopback that finds every kiosk and worker through it and evaluates ``infra/prometheus/rules.yml``.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

from streams.broker import free_port

__all__ = ["RULES", "PrometheusLaunch", "prometheus_config"]

RULES = Path(__file__).resolve().parents[1] / "infra" / "prometheus" / "rules.yml"


class _ProcLike(Protocol):
    name: str

    @property
    def popen(self) -> subprocess.Popen[bytes]: ...


def prometheus_config(*, sd_url: str, rules: Path, interval_s: float, self_address: str) -> dict[str, Any]:
    """The scrape config: the fleet through HTTP SD (labels, ``job`` included, come from the registry)."""
    every = f"{round(max(interval_s, 0.5) * 1000)}ms"  # Prometheus durations take whole units
    return {
        "global": {
            "scrape_interval": every,
            "scrape_timeout": f"{round(max(interval_s, 0.5) * 800)}ms",
            "evaluation_interval": every,
            "external_labels": {"system": "medkiosk"},
        },
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": "prometheus", "static_configs": [{"targets": [self_address]}]},
            {"job_name": "medkiosk", "http_sd_configs": [{"url": sd_url, "refresh_interval": every}]},
        ],
    }


def _get_json(url: str, timeout_s: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - loopback URLs we made
        return json.loads(resp.read())


class PrometheusLaunch:
    """Starts ``medkiosk discover serve`` (through ``spawn``) and then Prometheus; ``stop`` ends Prometheus."""

    def __init__(self, run_dir: Path, *, interval_s: float = 5.0, rules: Path | None = None) -> None:
        self.run_dir = run_dir
        self.interval_s = interval_s
        self.rules = rules or RULES
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def binary() -> str | None:
        return shutil.which("prometheus")

    def registry_argv(self, keys_dir: Path) -> list[str]:
        return [
            "discover",
            "serve",
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--probe-brokers",
            "--keys-dir",
            str(keys_dir),
            "--ready-file",
            str(self.run_dir / "registry.json"),
        ]

    def start(self, spawn: Callable[[str, list[str]], _ProcLike], keys_dir: Path, timeout_s: float = 60) -> str:
        """Start the SD endpoint and Prometheus; returns Prometheus's URL once it answers."""
        binary = self.binary()
        if binary is None:
            raise RuntimeError("--prometheus needs the prometheus binary (Debian: apt-get install prometheus)")
        registry = spawn("registry", self.registry_argv(keys_dir))
        ready = self.run_dir / "registry.json"
        deadline = time.monotonic() + timeout_s
        while not ready.exists():
            if registry.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the registry's SD endpoint did not start; see its log")
            time.sleep(0.1)
        sd_url = json.loads(ready.read_text())["sd_url"]
        config = self.run_dir / "prometheus.yml"
        doc = prometheus_config(
            sd_url=sd_url, rules=self.rules, interval_s=self.interval_s, self_address=f"127.0.0.1:{self.port}"
        )
        config.write_text(json.dumps(doc, indent=2))  # JSON is YAML: Prometheus reads it as is
        self._log = open(self.run_dir / "logs" / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.run_dir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=1).close()  # noqa: S310 - loopback
                return self.url
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    log = self.run_dir / "logs" / "prometheus.log"
                    raise RuntimeError(f"prometheus did not start; see {log}") from None
                time.sleep(0.2)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query through the HTTP API."""
        from urllib.parse import quote

        data = _get_json(f"{self.url}/api/v1/query?query={quote(promql)}")
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
