"""Prometheus metrics of the federated-learning roles, on the process's ``BusMetrics`` registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from streams import BusMetrics

__all__ = ["FlMetrics"]

_ROUND_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class FlMetrics:
    """Round progress, update outcomes and keyholder refusals, labelled by service."""

    def __init__(self, bus: BusMetrics) -> None:
        self.bus = bus
        reg = bus.registry
        self._rounds = Counter(
            "medkiosk_fl_rounds", "Round events (announced, closed, applied)", ["service", "event"], registry=reg
        )
        self._updates = Counter(
            "medkiosk_fl_updates", "Client updates by outcome", ["service", "outcome"], registry=reg
        )
        self._refusals = Counter(
            "medkiosk_fl_refusals",
            "Encrypted sums the keyholder refused, by reason",
            ["service", "reason"],
            registry=reg,
        )
        self._decryptions = Counter(
            "medkiosk_fl_decryptions", "Shard sums the keyholder decrypted", ["service"], registry=reg
        )
        self._round = Gauge("medkiosk_fl_round", "Latest round id this role knows", ["service"], registry=reg)
        self._round_s = Histogram(
            "medkiosk_fl_round_seconds",
            "Announcement to applied model, per round",
            ["service"],
            buckets=_ROUND_BUCKETS,
            registry=reg,
        )

    def round_event(self, event: str) -> None:
        self._rounds.labels(self.bus.service, event).inc()

    def update(self, outcome: str) -> None:
        self._updates.labels(self.bus.service, outcome).inc()

    def refusal(self, reason: str) -> None:
        self._refusals.labels(self.bus.service, reason).inc()

    def decryption(self) -> None:
        self._decryptions.labels(self.bus.service).inc()

    def current_round(self, round_id: int) -> None:
        self._round.labels(self.bus.service).set(round_id)

    def round_seconds(self, seconds: float) -> None:
        self._round_s.labels(self.bus.service).observe(seconds)
