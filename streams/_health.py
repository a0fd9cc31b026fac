"""``/metrics``, ``/ready`` and ``/healthz`` on one port: what Prometheus and the Kubernetes probes read.

``/ready`` answers 200 only when every readiness check of the process passes (for a consumer: connected to Kafka
with partitions assigned) and 503 otherwise, with a JSON body naming each check. ``/metrics`` alone answers as
soon as the process starts, before Kafka is reached, so it is a liveness signal, not a readiness one.
``/healthz`` answers 200 while the process serves HTTP at all.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

__all__ = ["HealthServer", "Readiness", "serve_health"]

log = logging.getLogger(__name__)

_Start = Callable[[str, list[tuple[str, str]]], Any]


class Readiness:
    """Named checks (``() -> bool``); the process is ready when there is at least one and all pass."""

    def __init__(self) -> None:
        self._checks: dict[str, Callable[[], bool]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, check: Callable[[], bool]) -> None:
        """Register (or replace) the check ``name``; it runs on the HTTP thread, so it must be cheap and safe."""
        with self._lock:
            self._checks[name] = check

    def status(self) -> dict[str, bool]:
        with self._lock:
            checks = dict(self._checks)
        out: dict[str, bool] = {}
        for name, check in checks.items():
            try:
                out[name] = bool(check())
            except Exception:  # a failing check means "not ready", never a crashed probe
                log.exception("readiness check %s failed", name)
                out[name] = False
        return out

    @property
    def ready(self) -> bool:
        status = self.status()
        return bool(status) and all(status.values())


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would flood the log."""


def _app(registry: CollectorRegistry, readiness: Readiness) -> Callable[[dict[str, Any], _Start], Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start: _Start) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            start("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path == "/ready":
            status = readiness.status()
            ok = bool(status) and all(status.values())
            body = json.dumps({"ready": ok, "checks": status}).encode() + b"\n"
            start("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [body]
        result: Iterable[bytes] = metrics(environ, start)
        return result

    return app


class HealthServer:
    """The running endpoint (a daemon thread); ``port`` is the bound port, ``close()`` stops it."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.port: int = server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_health(
    registry: CollectorRegistry, readiness: Readiness, port: int | None, host: str = "127.0.0.1"
) -> HealthServer | None:
    """Serve ``/metrics``, ``/ready`` and ``/healthz`` on ``host:port`` in a daemon thread; no-op when ``port`` is
    falsy (``-1`` is not a port: pass an explicit free port, or 0 for none)."""
    if not port:
        return None
    server = make_server(host, port, _app(registry, readiness), _Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name=f"health:{port}", daemon=True)
    thread.start()
    return HealthServer(server, thread)
