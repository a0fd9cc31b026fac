"""Every process's /metrics endpoint serves the bus metrics from its own (injected) registry."""

from __future__ import annotations

import socket
import urllib.request

from streams import BusMetrics, serve_metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_metrics_endpoint_serves_bus_metrics() -> None:
    metrics = BusMetrics("test-svc")
    metrics.event_in("kiosk.identity.v1")
    metrics.reject("kiosk.identity.v1", "bad_signature")
    metrics.latency("kiosk.identity.v1", 0.012)
    metrics.outbox(3, 1.5)
    metrics.add_lag_source(lambda: [("kiosk.identity.v1", 0, 7)])
    port = _free_port()
    server = serve_metrics(metrics, port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
    finally:
        server[0].shutdown()
        server[0].server_close()
    assert 'medkiosk_events_in_total{service="test-svc",topic="kiosk.identity.v1"} 1.0' in body
    assert 'medkiosk_rejects_total{reason="bad_signature",service="test-svc",topic="kiosk.identity.v1"} 1.0' in body
    assert 'medkiosk_consumer_lag{partition="0",service="test-svc",topic="kiosk.identity.v1"} 7.0' in body
    assert 'medkiosk_outbox_depth{service="test-svc"} 3.0' in body
    assert "medkiosk_e2e_latency_seconds_bucket" in body


def test_registries_are_separate() -> None:
    a, b = BusMetrics("a"), BusMetrics("b")
    a.event_in("t")
    assert a.value("medkiosk_events_in_total", topic="t") == 1
    assert b.value("medkiosk_events_in_total", topic="t") == 0


def test_no_port_no_server() -> None:
    assert serve_metrics(BusMetrics("x"), None) is None
    assert serve_metrics(BusMetrics("x"), 0) is None
