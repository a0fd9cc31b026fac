"""Triage through the kiosk agent, and model hot-swap from fl.models.v1 on the real broker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from edge_agent.agent import EdgeAgent, KioskConfig, RfidSettings
from edge_agent.agent._triage_backend import KioskTriage
from edge_agent.triage import MODELS_DIR
from schemas import DeadLetter, InferenceResult, ModelVersion, RejectReason
from streams import (
    DLQ,
    FL_MODELS,
    KIOSK_INFERENCE,
    BusMetrics,
    BusSettings,
    Keyring,
    Outbox,
    OutboxSender,
    SealRequest,
    apply_topics,
    open_envelope,
    parse,
    split_payload,
    topics_for,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def _publish_model(
    settings: BusSettings, keyring: Keyring, tmp: Path, producer: str, version: int, weights: bytes
) -> None:
    model = ModelVersion(model_name="triage-kg", version=version, weights=weights, format="onnx")
    chunks = list(split_payload(model.SerializeToString(), schema=ModelVersion.DESCRIPTOR.full_name, chunk_size=20_000))
    outbox = Outbox(tmp / f"{producer}-{version}.db", signing_key=keyring.signing_key(producer))
    sender = OutboxSender(outbox, settings, BusMetrics(producer))
    outbox.put(
        [
            SealRequest(topic=FL_MODELS.name, key=b"triage-kg", message=c, hospital_id="", data_key=None)
            for c in reversed(chunks)
        ]
    )  # any order reassembles
    await sender.start()
    assert await sender.drain(20)
    await sender.stop()
    outbox.close()


async def _wait(pred, limit_s: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(limit_s / 0.05)):
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_triage_and_model_hot_swap(keyring: Keyring, settings: BusSettings, tmp_path: Path) -> None:
    await apply_topics(settings, topics_for(["H1", "H2"]))
    config = KioskConfig(kiosk_id="k3", hospital_id="H1", rfid=RfidSettings(port=str(tmp_path / "no-reader")))
    config.triage.listen = None
    triage = await KioskTriage.create(
        config.triage, kiosk_id="k3", hospital_id="H1", synthetic=True, state_dir=settings.state_dir
    )
    agent = EdgeAgent(
        config,
        settings,
        keyring,
        BusMetrics("k3"),
        triage=triage,
        model_sinks={"triage-kg": triage.swap_model},
        synthetic=True,
    )
    await agent.start()
    try:
        result = await agent.triage_request("r1", ["chest pain"])
        assert result.ranking[0].department == "Emergency"
        await _wait(agent.commands.assigned.is_set)
        onnx = next(MODELS_DIR.glob("*.onnx")).read_bytes()
        await _publish_model(settings, keyring, tmp_path, "coordinator-1", 2, onnx)
        await _wait(lambda: agent.models.get("triage-kg") == 2)
        assert triage.hot.version == "2"
        await _publish_model(settings, keyring, tmp_path, "coordinator-1", 3, b"not an onnx model")
        await _publish_model(settings, keyring, tmp_path, "rogue-service", 4, onnx)
        await asyncio.sleep(2.0)
        assert agent.models["triage-kg"] == 2 and triage.hot.version == "2"  # the old version keeps serving
        again = await agent.triage_request("r2", ["itchy rash"])
        assert again.ranking
    finally:
        assert await agent.stop()
    consumer = AIOKafkaConsumer(
        KIOSK_INFERENCE.name, DLQ.name, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    results, letters = [], []
    try:
        for _ in range(40):
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    if r.topic == KIOSK_INFERENCE.name:
                        if parse(r.value).producer_id != "k3":
                            continue  # other tests share this broker
                        opened = open_envelope(r.value, keyring)
                        assert isinstance(opened.message, InferenceResult)
                        results.append(opened.message.request_id)
                    else:
                        letters.append(DeadLetter.FromString(r.value))
    finally:
        await consumer.stop()
    assert results == ["r1", "r2"]
    assert any(
        x.reason == RejectReason.REJECT_REASON_UNAUTHORIZED and x.producer_id == "rogue-service" for x in letters
    )
