"""Kiosk actuator on a real broker: decisions become signed ScalingCommands on control.scaling.v1 that a
kiosk's own command check accepts and turns into a change; holds send nothing."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from cloud_workers.autoscaler import Action, Decision
from cloud_workers.autoscaler._command_actuator import CommandActuator, KioskKnobs, command_for
from edge_agent.agent import CommandPolicy, authorize_command
from schemas import ScalingCommand
from streams import (
    CONTROL_SCALING,
    BusMetrics,
    BusSettings,
    Keyring,
    VerifiedEvent,
    apply_topics,
    envelope_hash,
    open_envelope,
)

pytestmark = pytest.mark.broker


def decision(target: str, action: Action, to: int, frm: int = 2) -> Decision:
    return Decision(
        target=target,
        action=action,
        replicas_from=frm,
        replicas_to=to,
        observed_load=0.6,
        predicted_load=0.95,
        reason="predicted load 0.95 > 0.8",
        at_s=0.0,
    )


def test_mapping() -> None:
    knobs = KioskKnobs(max_workers=4)
    assert command_for(decision("k1", Action.HOLD, 2), knobs) is None
    out = command_for(decision("k1", Action.SCALE_OUT, 3), knobs)
    assert out is not None and out.inference_workers == 3 and out.max_batch == 8 and out.camera_fps == 15.0
    hot = command_for(decision("k1", Action.SCALE_OUT, 6), knobs)
    assert hot is not None and hot.inference_workers == 4 and hot.max_batch == 32 and hot.camera_fps == 8.0
    assert 0 <= hot.predicted_load <= 1 and hot.reason.startswith("scale_out")


async def read_all(settings: BusSettings, n: int) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(**settings.kafka_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        # apply_topics created the topic with the settings' partition count.
        tps = [TopicPartition(CONTROL_SCALING.name, p) for p in range(settings.topic_partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[ConsumerRecord[bytes, bytes]] = []
        for _ in range(100):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                out.extend(records)
            if len(out) >= n:
                break
        return out
    finally:
        await consumer.stop()


async def test_commands_reach_kiosks_signed_and_are_accepted(settings: BusSettings, keyring: Keyring) -> None:
    await apply_topics(settings, [CONTROL_SCALING])
    act = CommandActuator(
        producer_id="autoscaler-1",
        settings=settings,
        keyring=keyring,
        outbox_path=settings.state_dir / "autoscaler" / "outbox.db",
        metrics=BusMetrics("autoscaler-test"),
    )
    await act.start()
    try:
        sent = act.send(
            [
                decision("k1", Action.SCALE_OUT, 3),
                decision("k3", Action.HOLD, 2),
                decision("group:lobby", Action.SCALE_IN, 1),
            ]
        )
        assert [c.target for c in sent] == ["k1", "group:lobby"]
        assert await act.drain(30)
    finally:
        await act.stop()
    mine = {c.command_id for c in sent}
    records = await read_all(settings, 2)
    policy = CommandPolicy(kiosk_id="k1", groups=("lobby",), allowed_producers=("autoscaler-1",))
    changes = {}
    for r in records:
        opened = open_envelope(r.value or b"", keyring)
        assert opened.envelope.producer_id == "autoscaler-1"
        assert isinstance(opened.message, ScalingCommand)
        if opened.message.command_id not in mine:
            continue
        event = VerifiedEvent(r, opened.envelope, envelope_hash(opened.envelope), opened.message)
        change = authorize_command(event, policy, keyring)
        assert change is not None
        changes[opened.message.target] = change
    assert changes["k1"].inference_workers == 3
    assert changes["group:lobby"].inference_workers == 1
