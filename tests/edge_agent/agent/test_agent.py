"""The kiosk agent on real I/O: an emulated card reader on a pseudo-terminal, the real broker, real keys.

Without a camera every card read is decided NO_FACE; the point here is the path reader -> fusion -> sealed
identity check -> outbox -> broker, and signed commands from the cloud being applied (or dead-lettered)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from cloud_workers.control import publish_commands, scaling_command
from edge_agent.agent import EdgeAgent, KioskConfig, RfidSettings, TelemetryConfig
from edge_agent.sensors import RfidEmulator, RfidEmulatorConfig
from schemas import IdentityCheck, IdentityVerdict
from streams import (
    CONTROL_SCALING,
    FL_MODELS,
    KIOSK_IDENTITY,
    KIOSK_TELEMETRY,
    BusMetrics,
    BusSettings,
    Keyring,
    apply_topics,
    open_envelope,
    parse,
    topics_for,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def _identity_checks(settings: BusSettings, keyring: Keyring, want: int) -> list[IdentityCheck]:
    consumer = AIOKafkaConsumer(
        KIOSK_IDENTITY.name, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[IdentityCheck] = []
    try:
        for _ in range(150):
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    if parse(r.value).producer_id != "k1":
                        continue  # other tests share this broker
                    opened = open_envelope(r.value, keyring)
                    assert isinstance(opened.message, IdentityCheck)
                    found.append(opened.message)
            if len(found) >= want:
                break
    finally:
        await consumer.stop()
    return found


async def test_cards_from_a_serial_reader_become_identity_checks(
    keyring: Keyring, settings: BusSettings, tmp_path: Path
) -> None:
    await apply_topics(settings, topics_for(["H1", "H2"]))
    link = tmp_path / "rfid0"
    config = KioskConfig(
        kiosk_id="k1",
        hospital_id="H1",
        rfid=RfidSettings(port=str(link), debounce_ms=200, formats=["em4100"]),
        telemetry=TelemetryConfig(interval_s=0.5),
    )
    config.triage.listen = None
    emulator = RfidEmulator(
        RfidEmulatorConfig(link=link, frame_format="em4100", count=5, rate_hz=5.0, noise=0.2, partial=0.3, seed=7)
    )
    await emulator.plug()
    agent = EdgeAgent(config, settings, keyring, BusMetrics("k1"), synthetic=True)
    await agent.start()
    try:
        sent = await emulator.run()
        cards = [c.card_number for c in sent if c.attached]
        for _ in range(100):
            if agent.identity_checks >= len(cards) and agent.commands.assigned.is_set():
                break
            await asyncio.sleep(0.1)
        # A signed command from the allowed controller is applied; one for another kiosk is ignored.
        await publish_commands(
            [scaling_command("k2", camera_fps=5), scaling_command("k1", max_batch=4)],
            producer_id="autoscaler-1",
            settings=settings,
            keyring=keyring,
            outbox_path=tmp_path / "ctl.db",
        )
        for _ in range(100):
            if agent.applied:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.6)  # one telemetry tick
    finally:
        assert await agent.stop()
        await emulator.close()
    assert cards, "the emulator sent nothing while the reader was attached"
    checks = await _identity_checks(settings, keyring, len(cards))
    assert [c.card.card_number for c in checks] == cards
    assert all(c.verdict == IdentityVerdict.IDENTITY_VERDICT_NO_FACE and c.synthetic for c in checks)
    assert [(a.max_batch, a.camera_fps) for a in agent.applied] == [(4, None)]
    assert agent.stats()["outbox_depth"] == 0
    assert {CONTROL_SCALING.name, FL_MODELS.name} <= set(agent.commands.config.topics)
    assert KIOSK_TELEMETRY.name  # telemetry was sealed into the same outbox and drained with it
