"""The registry as a Prometheus HTTP service-discovery endpoint (``http_sd_configs``), plus the registry
process's own ``/metrics``: instances by service and health, and a black-box probe of each Kafka broker.

``GET /sd`` answers ``[{"targets": ["host:port"], "labels": {...}}, ...]``: one group per healthy instance that
announces a ``metrics`` endpoint in its metadata, labelled ``job="medkiosk-<role>"`` (the rules' ``up{job=...}``
alerts key on it) plus its service, instance id, role and hospital; and this endpoint's own ``/metrics``.
``GET /instances`` lists every instance with its health (for people).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from streams._tasks import supervise
from streams.discovery._base import RegistryBase
from streams.discovery._model import Instance

__all__ = ["SdServer", "sd_targets"]

_LABEL_META = ("role", "hospital")


def sd_targets(instances: Iterable[Instance], *, extra: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """Prometheus HTTP SD target groups for the healthy instances that expose ``meta["metrics"]``."""
    groups: list[dict[str, Any]] = []
    for inst in instances:
        metrics = inst.meta.get("metrics")
        if not inst.healthy or not metrics:
            continue
        role = inst.meta.get("role", inst.service)
        labels = {"job": f"medkiosk-{role}", "service": inst.service, "medkiosk_instance": inst.instance_id}
        labels.update({k: inst.meta[k] for k in _LABEL_META if k in inst.meta})
        groups.append({"targets": [metrics], "labels": labels})
    return [*groups, *extra]


class _RegistryCollector(Collector):
    def __init__(self, server: SdServer) -> None:
        self._server = server

    def collect(self) -> Iterable[GaugeMetricFamily]:
        counts = GaugeMetricFamily(
            "medkiosk_registry_instances", "Registered instances by service and health", labels=["service", "health"]
        )
        tally: dict[tuple[str, str], int] = {}
        for inst in self._server.snapshot:
            key = (inst.service, "healthy" if inst.healthy else "unhealthy")
            tally[key] = tally.get(key, 0) + 1
        for (service, health), n in sorted(tally.items()):
            counts.add_metric([service, health], n)
        yield counts
        if self._server.brokers:
            from streams.broker import kafka_ready

            up = GaugeMetricFamily(
                "medkiosk_broker_up", "1 when the broker answers ApiVersions and Metadata", labels=["broker"]
            )
            for broker in self._server.brokers:
                host, _, port = broker.rpartition(":")
                up.add_metric([broker], 1.0 if kafka_ready(host, int(port), timeout_s=1.0) else 0.0)
            yield up


class SdServer:
    """Serves ``/sd``, ``/instances`` and ``/metrics`` on ``host:port`` from a snapshot kept fresh by
    watching ``registry``. ``brokers`` (``host:port`` each) are probed at every scrape of ``/metrics``."""

    def __init__(
        self, registry: RegistryBase, *, host: str = "127.0.0.1", port: int = 0, brokers: Sequence[str] = ()
    ) -> None:
        self._registry = registry
        self.brokers = list(brokers)
        self.snapshot: list[Instance] = []
        self.metrics = CollectorRegistry()
        self.metrics.register(_RegistryCollector(self))
        self._httpd = ThreadingHTTPServer((host, port), self._handler())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self.updated = asyncio.Event()

    @property
    def address(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def url(self) -> str:
        """Where Prometheus's ``http_sd_configs`` should point."""
        return f"http://{self.address}/sd"

    def targets(self) -> list[dict[str, Any]]:
        own = {"targets": [self.address], "labels": {"job": "medkiosk-registry", "service": "registry"}}
        return sd_targets(self.snapshot, extra=[own])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/sd":
                    self._send(200, "application/json", json.dumps(server.targets()).encode())
                elif path == "/instances":
                    body = json.dumps([i.to_json() for i in server.snapshot]).encode()
                    self._send(200, "application/json", body)
                elif path == "/metrics":
                    self._send(200, "text/plain; version=0.0.4", generate_latest(server.metrics))
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler

    async def _follow(self) -> None:
        async for snapshot in self._registry.watch():
            self.snapshot = snapshot
            self.updated.set()

    async def start(self) -> None:
        """Serve now; the snapshot fills as the registry is read."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, name="registry-sd", daemon=True)
            self._thread.start()
            self._task = supervise(asyncio.create_task(self._follow(), name="registry-sd-follow"))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._thread is not None:
            await asyncio.to_thread(self._httpd.shutdown)
            self._thread = None
        self._httpd.server_close()
