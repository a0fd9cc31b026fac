"""Consumer-group lag of the cloud Deployments, polled from the broker: input rate and backlog per group.

Lag is the sum over the group's partitions of (end offset - committed offset); the input rate is the
growth of the end offsets between polls. A partition the group never committed counts from its
beginning offset. Records produced while the poller was down are not rates: the first poll only
sets the baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from cloud_workers.autoscaler._settings import DeploymentTarget
from cloud_workers.autoscaler._signals import Sample, lag_sample
from streams import BusSettings

__all__ = ["GroupLag", "LagPoller"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class GroupLag:
    group_id: str
    lag: int
    end_total: int


class LagPoller:
    def __init__(self, settings: BusSettings, deployments: list[DeploymentTarget]) -> None:
        self._settings = settings
        self._deployments = deployments
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._last: dict[str, tuple[float, int]] = {}

    async def start(self) -> None:
        kw = self._settings.kafka_kwargs()
        self._admin = AIOKafkaAdminClient(**kw, client_id=f"{self._settings.client_id}-lag")
        await self._admin.start()
        self._consumer = AIOKafkaConsumer(**kw, enable_auto_commit=False)
        await self._consumer.start()

    async def stop(self) -> None:
        consumer, admin = self._consumer, self._admin
        self._consumer = self._admin = None
        if consumer is not None:
            with contextlib.suppress(KafkaError):
                await consumer.stop()
        if admin is not None:
            with contextlib.suppress(KafkaError):
                await admin.close()

    async def group_lag(self, d: DeploymentTarget) -> GroupLag:
        assert self._admin is not None and self._consumer is not None, "start() first"
        tps: list[TopicPartition] = []
        for desc in await self._admin.describe_topics(list(d.topics)):
            if desc.get("error_code", 0) == 0:
                parts = sorted(int(p["partition"]) for p in desc.get("partitions", []))
                tps.extend(TopicPartition(desc["topic"], p) for p in parts)
        if not tps:
            return GroupLag(group_id=d.group_id, lag=0, end_total=0)
        ends = await self._consumer.end_offsets(tps)
        begins = await self._consumer.beginning_offsets(tps)
        committed = await self._committed(d.group_id, tps)
        lag = 0
        for tp in tps:
            meta = committed.get(tp)
            pos = meta.offset if meta is not None and meta.offset >= 0 else begins[tp]
            lag += max(0, ends[tp] - pos)
        return GroupLag(group_id=d.group_id, lag=lag, end_total=sum(ends.values()))

    async def _committed(self, group_id: str, tps: list[TopicPartition]) -> dict[TopicPartition, Any]:
        assert self._admin is not None
        for attempt in range(10):
            try:
                result: dict[TopicPartition, Any] = await self._admin.list_consumer_group_offsets(
                    group_id, partitions=tps
                )
                return result
            except KafkaError as exc:
                # A fresh cluster has no group coordinator until __consumer_offsets exists: retriable.
                if not getattr(exc, "retriable", False) or attempt == 9:
                    raise
                await asyncio.sleep(0.5)
        raise AssertionError("unreachable")

    async def poll(self, now_s: float, replicas: dict[str, int]) -> list[Sample]:
        """One sample per Deployment whose lag could be read (failures are logged, not raised)."""
        out = []
        for d in self._deployments:
            try:
                g = await self.group_lag(d)
            except KafkaError as exc:
                log.warning("lag of %s unavailable: %s", d.group_id, exc)
                continue
            prev = self._last.get(d.group_id)
            self._last[d.group_id] = (now_s, g.end_total)
            if prev is None or now_s <= prev[0]:
                continue
            rate = max(0, g.end_total - prev[1]) / (now_s - prev[0])
            out.append(
                lag_sample(
                    d.name,
                    d.group_id,
                    at_s=now_s,
                    input_rate=rate,
                    lag=g.lag,
                    replicas=replicas.get(d.name, d.min_replicas),
                    capacity=d.capacity_per_replica,
                    drain_s=d.drain_s,
                )
            )
        return out
