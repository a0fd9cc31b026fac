"""Kiosk telemetry: stage percentiles and load, as a Telemetry message and as Prometheus gauges."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from edge_agent.agent import StageTimer, build_telemetry
from edge_agent.agent._telemetry import KioskGauges


def test_telemetry_message_and_gauges() -> None:
    timer = StageTimer()
    for ms in range(1, 101):
        timer.observe("liveness", ms / 1000)
        timer.observe("request", 0.002)
    msg = build_telemetry(
        kiosk_id="k1",
        hospital_id="H1",
        timer=timer,
        queue_depth=3,
        outbox_depth=5,
        clock_offset_ns=2_000_000,
        capacity_per_s=1e9,
    )
    stages = {s.stage: s for s in msg.latencies}
    assert 49 <= stages["liveness"].p50_ms <= 52 and 98 <= stages["liveness"].p99_ms <= 100
    assert (msg.queue_depth, msg.outbox_depth, msg.clock_offset_ns) == (3, 5, 2_000_000)
    assert 0 <= msg.load <= 1 and msg.request_rate > 0
    registry = CollectorRegistry()
    KioskGauges(registry, "k1").update(msg)
    assert registry.get_sample_value("medkiosk_kiosk_queue_depth", {"kiosk": "k1"}) == 3
    assert registry.get_sample_value("medkiosk_kiosk_clock_offset_seconds", {"kiosk": "k1"}) == 0.002
    p99 = registry.get_sample_value(
        "medkiosk_kiosk_stage_latency_seconds", {"kiosk": "k1", "stage": "liveness", "quantile": "0.99"}
    )
    assert p99 is not None and 0.098 <= p99 <= 0.1
