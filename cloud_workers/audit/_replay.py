"""Audit replay: re-read a topic, verify every envelope and every producer's chain, report the first bad
offset. Needs public keys only: an auditor never decrypts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from cloud_workers.audit._ledger import Mark, StreamLedger
from schemas import MedicalRecord
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
from streams._pipeline import internal_error

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
    #: Per (producer, stream): first/last seq, gaps, first bad record, timeline (``--report`` renders it).
    streams: StreamLedger = field(default_factory=StreamLedger)

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
            "streams": self.streams.to_json(),
        }


async def replay_topic(
    settings: BusSettings,
    keyring: Keyring,
    topic: str,
    *,
    from_offset: int | None = None,
    to_offset: int | None = None,
    from_time_ms: int | None = None,
    to_time_ms: int | None = None,
    max_bad_listed: int = 100,
) -> ReplayReport:
    """Verify ``topic`` from ``from_offset`` (default: the beginning) up to, not including, ``to_offset``
    (default: the end offsets when the replay starts), in every partition.

    ``from_time_ms`` / ``to_time_ms`` (epoch ms) limit the replay to records stamped in ``[from, to)``:
    the broker's time index (``offsets_for_times``) finds where to start and stop, and each record's
    timestamp is checked too, so a broker whose time index is wrong costs time, never a wrong answer.
    """
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
            # consumer.topics() returns a fresh snapshot without updating the client's own metadata.
            partitions = (await consumer._client.fetch_all_metadata()).partitions_for_topic(topic)
            if not partitions:
                await asyncio.sleep(0.1)
        if not partitions:
            raise ValueError(f"topic {topic!r} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        # Some brokers (the embedded one among them) can report an end offset that stops short of the
        # last batch's final records, so without --to-offset the end offsets are only a lower bound: we read
        # on until a partition stays quiet for a second.
        from_times = await _offsets_at(settings, consumer, tps, from_time_ms, begin, end)
        to_times = await _offsets_at(settings, consumer, tps, to_time_ms, begin, end)
        # A time bound the broker could not place (see _offsets_at) is enforced by record timestamps alone.
        unbounded = to_offset is None and (to_time_ms is None or len(to_times) < len(tps))
        stop_at = {tp: end[tp] if to_offset is None else min(end[tp], to_offset) for tp in tps}
        for tp in tps:
            start = begin[tp] if from_offset is None else max(begin[tp], from_offset)
            start = max(start, from_times.get(tp, start))
            stop_at[tp] = min(stop_at[tp], to_times.get(tp, stop_at[tp]))
            consumer.seek(tp, start)
            if start >= stop_at[tp] and not unbounded:
                stop_at[tp] = -1
        # Reading from offset 0 means we see each producer's whole history: its first record must be seq 1.
        chain = ChainTracker(
            window=1 << 20,
            strict_start=from_time_ms is None and all(begin[tp] == 0 and from_offset in (None, 0) for tp in tps),
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
                    if _in_window(record.timestamp, from_time_ms, to_time_ms):
                        report.records += 1
                        _check(record, keyring, chain, report, max_bad_listed)
                    if not unbounded and record.offset + 1 >= stop_at[tp]:
                        active.discard(tp)
    finally:
        await consumer.stop()
    return report


def _in_window(timestamp: int, from_ms: int | None, to_ms: int | None) -> bool:
    return (from_ms is None or timestamp >= from_ms) and (to_ms is None or timestamp < to_ms)


async def _timestamp_at(settings: BusSettings, tp: TopicPartition, offset: int) -> int | None:
    # A consumer of its own: seeking the replay's consumer back and forth leaves its fetcher confused.
    probe = AIOKafkaConsumer(**settings.kafka_kwargs(), enable_auto_commit=False, group_id=None)
    await probe.start()
    try:
        probe.assign([tp])
        probe.seek(tp, offset)
        for _ in range(20):
            batch = await probe.getmany(tp, timeout_ms=250, max_records=1)
            for record in batch.get(tp, []):
                return int(record.timestamp)
        return None
    finally:
        await probe.stop()


async def _offsets_at(
    settings: BusSettings,
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    time_ms: int | None,
    begin: dict[TopicPartition, int],
    end: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Per partition, the first offset stamped at or after *time_ms* (the end offset when none is),
    from the broker's time index; only answers the records around it confirm are kept (a broker without
    a real time index, such as Tansu, answers offset 0 for every time)."""
    if time_ms is None:
        return {}
    found = await consumer.offsets_for_times(dict.fromkeys(tps, time_ms))
    placed: dict[TopicPartition, int] = {}
    for tp in tps:
        hit = found.get(tp)
        offset = end[tp] if hit is None else hit.offset
        at = None if offset >= end[tp] else await _timestamp_at(settings, tp, offset)
        before = None if offset <= begin[tp] else await _timestamp_at(settings, tp, offset - 1)
        if (offset >= end[tp] or (at is not None and at >= time_ms)) and (
            offset <= begin[tp] or (before is not None and before < time_ms)
        ):
            placed[tp] = offset
    return placed


def _observe(
    report: ReplayReport, record: Any, rec: MedicalRecord | None, mark: Mark, authentic: bool, exc: Any = None
) -> None:
    report.streams.observe(
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=int(record.timestamp),
        producer_id=rec.producer_id if rec is not None else (exc.producer_id if exc is not None else ""),
        stream=rec.stream if rec is not None else "",
        seq=rec.seq if rec is not None else (exc.seq if exc is not None else 0),
        mark=mark,
        authentic=authentic,
        reason=exc.label if exc is not None else "",
        detail=exc.detail if exc is not None else "",
    )


def _check(record: Any, keyring: Keyring, chain: ChainTracker, report: ReplayReport, max_listed: int) -> None:
    rec: MedicalRecord | None = None
    authentic = False
    try:
        try:
            rec = parse(record.value or b"")
            report.producers.add(rec.producer_id)
            verify_signature(rec, keyring)
            authentic = True
            digest = envelope_hash(rec)
            if chain.check(rec, digest) is ChainVerdict.DUPLICATE:
                report.duplicates += 1
                _observe(report, record, rec, Mark.DUPLICATE, authentic)
                return
            chain.accept(rec, digest)
        except EnvelopeRejected:
            raise
        except Exception as err:  # hostile input never stops an audit: it is a bad record like any other
            raise internal_error(err, rec) from err
        report.verified += 1
        _observe(report, record, rec, Mark.VERIFIED, authentic)
    except EnvelopeRejected as exc:
        _observe(report, record, rec, Mark.BAD, authentic, exc)
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
