"""Audit replay: re-read a topic, verify every envelope and every producer's chain, report the first bad
offset. Needs public keys only: an auditor never decrypts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams import (
    BusSettings,
    ChainTracker,
    ChainVerdict,
    EnvelopeRejected,
    Keyring,
    envelope_hash,
    parse,
    verify_signature,
)

__all__ = ["ReplayReport", "replay_topic"]


@dataclass
class ReplayReport:
    topic: str
    records: int = 0
    verified: int = 0
    duplicates: int = 0
    bad: int = 0
    producers: set[str] = field(default_factory=set)
    first_bad: dict[str, Any] | None = None
    bad_offsets: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "records": self.records,
            "verified": self.verified,
            "duplicates": self.duplicates,
            "bad": self.bad,
            "producers": len(self.producers),
            "first_bad": self.first_bad,
            "ok": self.bad == 0,
        }


async def replay_topic(
    settings: BusSettings,
    keyring: Keyring,
    topic: str,
    *,
    from_offset: int | None = None,
    to_offset: int | None = None,
    max_bad_listed: int = 100,
) -> ReplayReport:
    """Verify ``topic`` from ``from_offset`` (default: the beginning) up to, not including, ``to_offset``
    (default: the end offsets when the replay starts), in every partition."""
    report = ReplayReport(topic)
    consumer = AIOKafkaConsumer(
        **settings.kafka_kwargs(), client_id=f"{settings.client_id}-audit", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        for _ in range(50):
            if partitions:
                break
            await consumer.topics()  # refreshes metadata
            await asyncio.sleep(0.1)
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise ValueError(f"topic {topic!r} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        # Some brokers (the embedded one among them) can report an end offset that stops short of the
        # last batch's final records, so without --to-offset the end offsets are only a lower bound: we read
        # on until a partition stays quiet for a second.
        unbounded = to_offset is None
        stop_at = {tp: end[tp] if unbounded else min(end[tp], to_offset) for tp in tps}
        for tp in tps:
            start = begin[tp] if from_offset is None else max(begin[tp], from_offset)
            consumer.seek(tp, start)
            if start >= stop_at[tp] and not unbounded:
                stop_at[tp] = -1
        # Reading from offset 0 means we see each producer's whole history: its first record must be seq 1.
        chain = ChainTracker(
            window=1 << 20, strict_start=all(begin[tp] == 0 and from_offset in (None, 0) for tp in tps)
        )
        active = {tp for tp in tps if stop_at[tp] >= 0}
        idle_polls = 0
        while active and idle_polls < (5 if unbounded else 50):
            batches = await consumer.getmany(*active, timeout_ms=200)
            idle_polls = 0 if batches else idle_polls + 1
            for tp, records in batches.items():
                for record in records:
                    if not unbounded and record.offset >= stop_at[tp]:
                        active.discard(tp)
                        break
                    report.records += 1
                    _check(record, keyring, chain, report, max_bad_listed)
                    if not unbounded and record.offset + 1 >= stop_at[tp]:
                        active.discard(tp)
    finally:
        await consumer.stop()
    return report


def _check(record: Any, keyring: Keyring, chain: ChainTracker, report: ReplayReport, max_listed: int) -> None:
    try:
        rec = parse(record.value or b"")
        report.producers.add(rec.producer_id)
        verify_signature(rec, keyring)
        digest = envelope_hash(rec)
        if chain.check(rec, digest) is ChainVerdict.DUPLICATE:
            report.duplicates += 1
            return
        chain.accept(rec, digest)
        report.verified += 1
    except EnvelopeRejected as exc:
        report.bad += 1
        bad = {
            "partition": record.partition,
            "offset": record.offset,
            "reason": exc.label,
            "detail": exc.detail,
            "producer_id": exc.producer_id,
            "seq": exc.seq,
        }
        if report.first_bad is None or (bad["partition"], bad["offset"]) < (
            report.first_bad["partition"],
            report.first_bad["offset"],
        ):
            report.first_bad = bad
        if len(report.bad_offsets) < max_listed:
            report.bad_offsets.append(bad)
