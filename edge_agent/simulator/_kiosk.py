"""Synthetic identity checks for demos and tests (clearly marked ``synthetic=true`` on the wire).

Only the events are made up: sealing, the durable outbox and sending are the production code paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from schemas import CardRead, IdentityCheck, IdentityVerdict, LivenessResult
from streams import KIOSK_IDENTITY, BusMetrics, BusSettings, Keyring, Outbox, OutboxSender, SealRequest

__all__ = ["SimulatedKiosk", "SimulatedKioskConfig", "synthetic_identity_check"]

_WINDOW_NS = 50_000_000


def synthetic_identity_check(rng: random.Random, kiosk_id: str, hospital_id: str, now_ns: int) -> IdentityCheck:
    """One plausible fused identity check: a 13-digit card, a face captured within about ±60 ms."""
    skew = int(rng.gauss(0, 20_000_000))
    live = rng.betavariate(30, 1) if rng.random() < 0.9 else rng.betavariate(2, 5)
    face = rng.random() < 0.97
    if not face:
        verdict = IdentityVerdict.IDENTITY_VERDICT_NO_FACE
    elif abs(skew) > _WINDOW_NS:
        verdict = IdentityVerdict.IDENTITY_VERDICT_OUTSIDE_WINDOW
    elif live < 0.98:
        verdict = IdentityVerdict.IDENTITY_VERDICT_NOT_LIVE
    else:
        verdict = IdentityVerdict.IDENTITY_VERDICT_VERIFIED
    card = CardRead(
        kiosk_id=kiosk_id,
        card_number=f"{rng.randrange(10**12, 10**13)}",
        read_at=now_ns,
        frame_format="line",
    )
    liveness = LivenessResult(
        kiosk_id=kiosk_id,
        captured_at=now_ns + skew,
        face_found=face,
        live_score=round(live, 4) if face else 0.0,
        face_box=[rng.randrange(100, 200), rng.randrange(60, 120), 160, 160] if face else [],
        model_version="synthetic",
    )
    return IdentityCheck(
        kiosk_id=kiosk_id,
        hospital_id=hospital_id,
        card=card,
        liveness=liveness,
        verdict=verdict,
        skew_ns=abs(skew),
        window_ns=_WINDOW_NS,
        synthetic=True,
    )


@dataclass(kw_only=True)
class SimulatedKioskConfig:
    kiosk_id: str
    hospital_id: str
    rate_hz: float = 5.0
    seed: int = 0
    #: Identity checks per second the simulated kiosk could handle: ``medkiosk_kiosk_load`` is
    #: ``rate_hz / capacity_hz`` (capped at 1), so the kiosk-load trigger, alert and panel have data wherever
    #: simulated kiosks stand in for real ones (compose).
    capacity_hz: float = 10.0
    #: Defaults to ``<state_dir>/<kiosk_id>/outbox.db``.
    outbox_path: Path | None = None


_LOAD_GAUGES: weakref.WeakKeyDictionary[CollectorRegistry, Gauge] = weakref.WeakKeyDictionary()


def _load_gauge(registry: CollectorRegistry) -> Gauge:
    """The agent's ``medkiosk_kiosk_load`` (same name, help and label), once per registry."""
    gauge = _LOAD_GAUGES.get(registry)
    if gauge is None:
        gauge = Gauge("medkiosk_kiosk_load", "Fraction of capacity in use", ["kiosk"], registry=registry)
        _LOAD_GAUGES[registry] = gauge
    return gauge


class SimulatedKiosk:
    def __init__(
        self, config: SimulatedKioskConfig, settings: BusSettings, keyring: Keyring, metrics: BusMetrics
    ) -> None:
        self.config = config
        self._rng = random.Random(f"{config.seed}:{config.kiosk_id}")
        self._data_key = keyring.latest_data_key(config.hospital_id)
        path = config.outbox_path or settings.state_dir / config.kiosk_id / "outbox.db"
        self.outbox = Outbox(path, signing_key=keyring.signing_key(config.kiosk_id))
        self.sender = OutboxSender(self.outbox, settings, metrics)
        load = min(1.0, config.rate_hz / config.capacity_hz) if config.capacity_hz > 0 else 0.0
        _load_gauge(metrics.registry).labels(config.kiosk_id).set(load)
        self.first_seq = self.outbox.chain_for(KIOSK_IDENTITY.name).seq + 1
        self.published = 0
        self._final: dict[str, Any] | None = None
        self._depth_max = 0

    async def start(self) -> None:
        await self.sender.start()

    async def run(self, stop: asyncio.Event) -> None:
        """Produce at ``rate_hz`` until ``stop`` is set (the outbox is not drained here)."""
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.config.rate_hz
        next_at = loop.time()
        key = self.config.kiosk_id.encode()
        while not stop.is_set():
            msg = synthetic_identity_check(self._rng, self.config.kiosk_id, self.config.hospital_id, time.time_ns())
            req = SealRequest(
                topic=KIOSK_IDENTITY.name,
                key=key,
                message=msg,
                hospital_id=self.config.hospital_id,
                data_key=self._data_key,
            )
            await asyncio.to_thread(self.outbox.put, [req])
            self.published += 1
            self.sender.notify()
            next_at += interval
            delay = next_at - loop.time()
            if delay < -1.0:
                next_at = loop.time()  # fell far behind (e.g. a slow disk): do not burst to catch up
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, delay))

    async def stop(self, drain_s: float = 30.0) -> bool:
        """Stop sending once the outbox is empty or ``drain_s`` passed; True if fully drained."""
        drained = await self.sender.drain(drain_s)
        await self.sender.stop()
        self._final = self.stats()
        self.outbox.close()
        return drained

    def stats(self) -> dict[str, Any]:
        if self._final is not None:
            return self._final
        depth, age = self.outbox.depth()
        self._depth_max = max(self._depth_max, depth)
        return {
            "service": self.config.kiosk_id,
            "hospital_id": self.config.hospital_id,
            "published": self.published,
            "first_seq": self.first_seq,
            "last_seq": self.outbox.chain_for(KIOSK_IDENTITY.name).seq,
            "published_seqs": {KIOSK_IDENTITY.name: [[self.first_seq, self.outbox.chain_for(KIOSK_IDENTITY.name).seq]]},
            "sent": self.sender.sent,
            "send_failures": self.sender.failures,
            "outbox_depth": depth,
            "outbox_depth_max": self._depth_max,
            "outbox_oldest_age_s": round(age, 3),
        }
