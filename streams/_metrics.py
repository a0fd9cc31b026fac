"""Prometheus metrics for every bus participant, on an injected registry (never the global one)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

__all__ = ["BusMetrics", "LagSource", "serve_metrics"]

#: ``() -> [(topic, partition, lag), ...]``, called at scrape time.
LagSource = Callable[[], Iterable[tuple[str, int, int]]]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _LagCollector(Collector):
    def __init__(self, service: str) -> None:
        self._service = service
        self._sources: list[LagSource] = []

    def add(self, source: LagSource) -> None:
        self._sources.append(source)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "medkiosk_consumer_lag",
            "Records behind the partition's high watermark",
            labels=["service", "topic", "partition"],
        )
        for source in self._sources:
            for topic, partition, lag in source():
                family.add_metric([self._service, topic, str(partition)], lag)
        yield family


class BusMetrics:
    """Events in/out, rejects by reason, duplicates, end-to-end latency, outbox depth, consumer lag."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry if registry is not None else CollectorRegistry()
        labels = ["service", "topic"]
        self._in = Counter("medkiosk_events_in", "Envelopes accepted", labels, registry=self.registry)
        self._out = Counter("medkiosk_events_out", "Messages handed to the broker", labels, registry=self.registry)
        self._rejects = Counter(
            "medkiosk_rejects", "Messages rejected to the DLQ", [*labels, "reason"], registry=self.registry
        )
        self._dupes = Counter("medkiosk_duplicates", "Duplicate envelopes dropped", labels, registry=self.registry)
        self._resets = Counter(
            "medkiosk_chain_resets",
            "Producers that restarted their chain at seq 1 (lost state): operator-visible",
            [*labels, "producer"],
            registry=self.registry,
        )
        self._spooled = Counter(
            "medkiosk_dlq_spooled",
            "Dead letters the broker refused for good, written to the local spool file",
            labels,
            registry=self.registry,
        )
        self._latency = Histogram(
            "medkiosk_e2e_latency_seconds",
            "Seal time to processed",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._outbox_depth = Gauge(
            "medkiosk_outbox_depth", "Events waiting in the outbox", ["service"], registry=self.registry
        )
        self._outbox_age = Gauge(
            "medkiosk_outbox_oldest_age_seconds",
            "Age of the oldest unsent event",
            ["service"],
            registry=self.registry,
        )
        # Per-topic children, so the per-event path skips prometheus_client's label lookup.
        self._in_by_topic: dict[str, Any] = {}
        self._out_by_topic: dict[str, Any] = {}
        self._latency_by_topic: dict[str, Any] = {}
        self._lag = _LagCollector(service)
        self.registry.register(self._lag)

    def event_in(self, topic: str) -> None:
        child = self._in_by_topic.get(topic)
        if child is None:
            child = self._in_by_topic[topic] = self._in.labels(self.service, topic)
        child.inc()

    def event_out(self, topic: str, n: int = 1) -> None:
        child = self._out_by_topic.get(topic)
        if child is None:
            child = self._out_by_topic[topic] = self._out.labels(self.service, topic)
        child.inc(n)

    def reject(self, topic: str, reason: str) -> None:
        self._rejects.labels(self.service, topic, reason).inc()

    def duplicate(self, topic: str) -> None:
        self._dupes.labels(self.service, topic).inc()

    def chain_reset(self, topic: str, producer_id: str) -> None:
        self._resets.labels(self.service, topic, producer_id[:128]).inc()

    def dlq_spooled(self, topic: str) -> None:
        self._spooled.labels(self.service, topic).inc()

    def latency(self, topic: str, seconds: float) -> None:
        child = self._latency_by_topic.get(topic)
        if child is None:
            child = self._latency_by_topic[topic] = self._latency.labels(self.service, topic)
        child.observe(seconds)

    def outbox(self, depth: int, oldest_age_s: float) -> None:
        self._outbox_depth.labels(self.service).set(depth)
        self._outbox_age.labels(self.service).set(oldest_age_s)

    def outbox_source(self, source: Callable[[], tuple[int, float]]) -> None:
        """Read outbox depth and oldest age from ``source`` at every scrape, so the age keeps growing while
        the sender is stuck (in a send timeout, in backoff) rather than only when it next flushes. A source
        that fails (an outbox already closed) leaves the last values."""
        last = [0, 0.0]

        def read(i: int) -> float:
            try:
                got = source()
                last[0], last[1] = got[0], got[1]
            except Exception as exc:  # a scrape must never fail on it
                log.debug("outbox depth unavailable at scrape (%s); keeping the last values", exc)
            return float(last[i])

        self._outbox_depth.labels(self.service).set_function(lambda: read(0))
        self._outbox_age.labels(self.service).set_function(lambda: read(1))

    def add_lag_source(self, source: LagSource) -> None:
        self._lag.add(source)

    def value(self, name: str, **labels: str) -> float:
        """Current value of a sample (for tests and summaries); 0 when absent."""
        got = self.registry.get_sample_value(name, {"service": self.service, **labels})
        return 0.0 if got is None else got


def serve_metrics(metrics: BusMetrics, port: int | None, host: str = "127.0.0.1") -> Any:
    """Expose ``/metrics`` on ``host:port`` in a daemon thread; no-op when ``port`` is falsy."""
    if not port:
        return None
    return start_http_server(port, addr=host, registry=metrics.registry)
