"""The autoscaler service end to end on a real broker: signed kiosk telemetry in; a signed command the
kiosk accepts, the KEDA scaler's answer and one decision log line out. And consumer-group lag."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from cloud_workers.autoscaler import (
    AutoscalerConfig,
    AutoscalerService,
    DeploymentTarget,
    PolicyConfig,
    SeriesConfig,
    TrainOptions,
    make_forecaster,
    train_from_trace,
)
from cloud_workers.autoscaler._lag import LagPoller
from cloud_workers.autoscaler.keda import externalscaler_pb2 as pb
from cloud_workers.autoscaler.keda import externalscaler_pb2_grpc as pb_grpc
from edge_agent.agent import CommandPolicy, authorize_command
from schemas import ScalingCommand, Telemetry
from streams import (
    CONTROL_SCALING,
    KIOSK_TELEMETRY,
    BusMetrics,
    BusSettings,
    Keyring,
    Outbox,
    OutboxSender,
    SealRequest,
    TopicSpec,
    VerifiedEvent,
    apply_topics,
    envelope_hash,
    open_envelope,
)

from .test_checkpoint import write_trace

pytestmark = pytest.mark.broker


async def commands_for(
    settings: BusSettings, keyring: Keyring, kiosk: str, timeout_s: float, wanted: set[str]
) -> list[ScalingCommand]:
    consumer = AIOKafkaConsumer(**settings.kafka_kwargs(), enable_auto_commit=False)
    await consumer.start()
    policy = CommandPolicy(kiosk_id=kiosk, groups=(), allowed_producers=("autoscaler-1",))
    found: list[ScalingCommand] = []
    try:
        # apply_topics created the topic with the settings' partition count.
        tps = [TopicPartition(CONTROL_SCALING.name, p) for p in range(settings.topic_partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        while not any(c.command_id in wanted for c in found) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    opened = open_envelope(r.value or b"", keyring)
                    event = VerifiedEvent(r, opened.envelope, envelope_hash(opened.envelope), opened.message)
                    if authorize_command(event, policy, keyring) is not None:
                        assert isinstance(opened.message, ScalingCommand)
                        found.append(opened.message)
    finally:
        await consumer.stop()
    return found


async def test_hot_kiosk_is_scaled_out_through_commands_and_keda(
    settings: BusSettings, keyring: Keyring, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await apply_topics(settings, [KIOSK_TELEMETRY, CONTROL_SCALING])
    # A real (tiny) LSTM checkpoint, loaded the way the service loads it.
    report = train_from_trace(
        TrainOptions(
            trace=write_trace(tmp_path / "t.csv"), out_dir=tmp_path / "m", epochs=1, hidden=8, window=12, test_days=2
        )
    )
    forecaster = make_forecaster("lstm", checkpoint=tmp_path / "m")
    assert str(report["checkpoint"]).endswith("forecaster-v0001.pt")
    cfg = AutoscalerConfig(
        group_id=f"autoscaler-test-{time.time_ns()}",
        series=SeriesConfig(step_s=0.5, max_lateness_s=0.5),
        kiosk_policy=PolicyConfig(min_replicas=1, max_replicas=4, scale_out_cooldown_s=60),
        min_history=3,
        keda_port=0,
    )
    metrics = BusMetrics("autoscaler-svc-test")
    service = AutoscalerService(cfg, settings, keyring, metrics, forecaster)
    outbox = Outbox(tmp_path / "k1.db", signing_key=keyring.signing_key("k1"))
    sender = OutboxSender(outbox, settings, BusMetrics("k1-test"), idle_s=0.1)
    stop = asyncio.Event()
    await service.start()
    await sender.start()
    runner = asyncio.create_task(service.run(stop))
    caplog.set_level(logging.INFO, logger="cloud_workers.autoscaler._service")
    try:
        deadline = time.monotonic() + 60
        while not service.stats()["scaling_actions"] and time.monotonic() < deadline:
            t = Telemetry(kiosk_id="k1", hospital_id="H1", at=time.time_ns(), request_rate=9.5, load=0.95)
            outbox.put([SealRequest(topic=KIOSK_TELEMETRY.name, key=b"k1", message=t, hospital_id="H1", data_key=None)])
            sender.notify()
            await asyncio.sleep(0.2)
        stats = service.stats()
        assert stats["actions"][0] == {"target": "k1", "action": "scale_out", "from": 1, "to": 2}
        registry = metrics.registry  # the process's injected registry
        assert (
            registry.get_sample_value("medkiosk_autoscaler_actions_total", {"target": "k1", "action": "scale_out"}) == 1
        )
        assert registry.get_sample_value("medkiosk_autoscaler_desired_replicas", {"target": "k1"}) == 2
        assert stats["model"].startswith("v1-")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stats['keda_port']}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)
            ref = pb.ScaledObjectRef(name="k1", namespace="medkiosk", scalerMetadata={"target": "k1"})
            value = (await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref))).metricValues[0]
            assert value.metricValueFloat >= 2
        assert await service.commands.drain(30) if service.commands else False
    finally:
        stop.set()
        await runner
        await service.stop()
        await sender.stop()
        outbox.close()
    lines = [r.getMessage() for r in caplog.records if "autoscaler decision" in r.getMessage()]
    assert len(lines) == stats["scaling_actions"] and "target=k1 action=scale_out replicas=1->2" in lines[0]
    assert service.commands is not None
    mine = {c.command_id for c in service.commands.sent}  # the topic also holds other tests' commands
    cmds = [c for c in await commands_for(settings, keyring, "k1", 20, mine) if c.command_id in mine]
    assert cmds and cmds[0].inference_workers == 2 and cmds[0].predicted_load > 0


async def test_consumer_group_lag(settings: BusSettings) -> None:
    topic = f"lag-test-{time.time_ns()}"
    await apply_topics(settings, [TopicSpec(name=topic, key="k", content="test", partitions=2)])
    producer = AIOKafkaProducer(**settings.kafka_kwargs())
    await producer.start()
    try:
        for i in range(30):
            await producer.send_and_wait(topic, b"x", key=str(i).encode())
    finally:
        await producer.stop()
    d = DeploymentTarget(name="gateway", group_id="nobody-yet", topics=(topic,), capacity_per_replica=10)
    poller = LagPoller(settings, [d])
    await poller.start()
    try:
        lag = await poller.group_lag(d)
        assert lag.lag == 30 and lag.end_total == 30
        assert await poller.poll(1000.0, {}) == []  # the first poll is the baseline
        samples = await poller.poll(1010.0, {"gateway": 2})
        assert samples[0].rate == 0.0 and samples[0].load == pytest.approx((30 / 60) / 20)
    finally:
        await poller.stop()
