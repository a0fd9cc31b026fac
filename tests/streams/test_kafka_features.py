"""What Apache Kafka offers and the code uses behind settings: the catalog's compaction really compacts,
drifted topic configs are set back, idempotent and transactional producers, read_committed readers.
Tansu accepts these configs but applies none of them (BROKER.md), so those tests run on Kafka only."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams import (
    FL_MODELS,
    KIOSK_TELEMETRY,
    BusSettings,
    apply_topics,
    make_producer,
    make_transactional_producer,
)
from streams.broker import LocalBroker

pytestmark = pytest.mark.broker


def kafka_only(broker: LocalBroker) -> None:
    if broker.engine != "kafka":
        pytest.skip("Tansu accepts cleanup/retention configs and transactions' APIs but applies neither")


async def read_from_start(settings: BusSettings, tp: TopicPartition) -> list[tuple[bytes | None, bytes | None]]:
    consumer = AIOKafkaConsumer(**settings.consumer_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out: list[tuple[bytes | None, bytes | None]] = []
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            out += [(r.key, r.value) for r in batch.get(tp, [])]
        return out
    finally:
        await consumer.stop()


@pytest.mark.timeout(120)
async def test_compacted_fl_models_keeps_the_latest_version_per_key(broker: LocalBroker, settings: BusSettings) -> None:
    kafka_only(broker)
    topic = f"{FL_MODELS.name}.compaction-{uuid.uuid4().hex[:6]}"
    assert FL_MODELS.configs()["cleanup.policy"] == "compact"
    # The catalog's configs, plus small segments so the cleaner has closed segments to work on soon.
    configs = FL_MODELS.configs() | {
        "segment.ms": "200",
        "min.cleanable.dirty.ratio": "0.001",
        "min.compaction.lag.ms": "0",
        "delete.retention.ms": "100",
    }
    admin = AIOKafkaAdminClient(**settings.kafka_kwargs())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=configs)])
    finally:
        await admin.close()
    tp = TopicPartition(topic, 0)
    producer = make_producer(settings)
    await producer.start()
    try:
        for version in range(1, 6):
            for model in (b"triage", b"liveness"):
                await producer.send_and_wait(topic, b"%s-v%d" % (model, version), key=model)
        deadline = time.monotonic() + 90
        while True:
            # Each tick lands in a new segment (segment.ms), closing the one holding the versions.
            await asyncio.sleep(0.4)
            await producer.send_and_wait(topic, b"tick", key=b"tick")
            records = [r for r in await read_from_start(settings, tp) if r[0] != b"tick"]
            if len(records) == 2 or time.monotonic() > deadline:
                break
    finally:
        await producer.stop()
    assert sorted(records) == [(b"liveness", b"liveness-v5"), (b"triage", b"triage-v5")]


async def _configs(settings: BusSettings, topic: str, names: list[str]) -> dict[str, str]:
    admin = AIOKafkaAdminClient(**settings.kafka_kwargs())
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, dict.fromkeys(names))]
        )
        entries = response.to_object()["resources"][0]["config_entries"]
        return {e["config_names"]: e["config_value"] for e in entries}
    finally:
        await admin.close()


@pytest.mark.timeout(60)
async def test_apply_topics_sets_drifted_configs_back(broker: LocalBroker, settings: BusSettings) -> None:
    kafka_only(broker)
    spec = replace(KIOSK_TELEMETRY, name=f"test.drift.{uuid.uuid4().hex[:6]}")
    (first,) = await apply_topics(settings, [spec])
    assert first.status == "created"
    names = ["cleanup.policy", "retention.ms"]
    assert await _configs(settings, spec.name, names) == spec.configs()

    admin = AIOKafkaAdminClient(**settings.kafka_kwargs())
    await admin.start()
    try:
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, spec.name, {"cleanup.policy": "compact", "retention.ms": "5"})]
        )
    finally:
        await admin.close()
    assert await _configs(settings, spec.name, names) == {"cleanup.policy": "compact", "retention.ms": "5"}

    (again,) = await apply_topics(settings, [spec])
    assert again.status == "altered"
    assert await _configs(settings, spec.name, names) == spec.configs()
    (third,) = await apply_topics(settings, [spec])
    assert third.status == "ok"


@pytest.mark.timeout(60)
async def test_idempotent_and_transactional_producers(broker: LocalBroker, settings: BusSettings) -> None:
    kafka_only(broker)
    assert settings.enable_idempotence
    topic = f"test.tx.{uuid.uuid4().hex[:6]}"
    await apply_topics(settings, [replace(KIOSK_TELEMETRY, name=topic, partitions=1)])
    tp = TopicPartition(topic, 0)

    idempotent = make_producer(settings)
    await idempotent.start()
    try:
        await idempotent.send_and_wait(topic, b"plain", key=b"k")
    finally:
        await idempotent.stop()

    tx_id = f"gateway-test-{uuid.uuid4().hex[:6]}"
    producer = make_transactional_producer(settings, tx_id)
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"committed", key=b"k")
        await producer.begin_transaction()
        await producer.send(topic, b"aborted", key=b"k")
        await producer.abort_transaction()
        await producer.begin_transaction()
        await producer.send(topic, b"left-open", key=b"k")
        await producer.flush()
        # A new incarnation with the same transactional id fences the old one and aborts what it left open.
        successor = make_transactional_producer(settings, tx_id)
        await successor.start()
        await successor.stop()
    finally:
        await producer.stop()

    committed = settings.model_copy(update={"isolation_level": "read_committed"})
    assert [v for _, v in await read_from_start(committed, tp)] == [b"plain", b"committed"]
    everything = [v for _, v in await read_from_start(settings, tp)]
    assert everything == [b"plain", b"committed", b"aborted", b"left-open"]
