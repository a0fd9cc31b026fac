"""Forecaster versions over the bus: installed only when signed by an allowed producer, intact, loadable
and newer; refused (dead-lettered) otherwise, the running forecaster untouched."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka.structs import ConsumerRecord
from google.protobuf.message import Message

from cloud_workers.autoscaler import (
    AutoscalerConfig,
    AutoscalerService,
    SeriesConfig,
    TrainOptions,
    load_checkpoint,
    train_from_trace,
)
from cloud_workers.autoscaler._model_updates import MODEL_NAME, ModelUpdater, model_version_message, publish_model
from schemas import ModelVersion, RejectReason
from streams import (
    FL_MODELS,
    KIOSK_TELEMETRY,
    BusMetrics,
    BusSettings,
    ChainState,
    EnvelopeRejected,
    Keyring,
    VerifiedEvent,
    apply_topics,
    envelope_hash,
    open_envelope,
    seal,
    split_payload,
)

from .test_checkpoint import write_trace


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("models")
    csv = write_trace(root / "t.csv")
    opts = TrainOptions(trace=csv, out_dir=root / "m", epochs=1, hidden=8, window=12, test_days=2)
    return [Path(str(train_from_trace(opts)["checkpoint"])) for _ in range(2)]


def event(keyring: Keyring, message: Message, producer: str = "coordinator-1", hospital: str = "") -> VerifiedEvent:
    key = keyring.signing_key(producer)
    rec, _ = seal(message, signing_key=key, chain=ChainState(), hospital_id=hospital, data_key=None)
    raw = rec.SerializeToString()
    opened = open_envelope(raw, keyring)
    record = ConsumerRecord(FL_MODELS.name, 0, 0, 0, 0, MODEL_NAME.encode(), raw, None, 0, len(raw), ())
    return VerifiedEvent(record, opened.envelope, envelope_hash(opened.envelope), opened.message)


def test_only_newer_intact_versions_from_allowed_producers(keyring: Keyring, checkpoints: list[Path]) -> None:
    v1, v2 = checkpoints
    up = ModelUpdater(allowed_producers=("coordinator-1",), keyring=keyring, current_version=1)
    assert up.handle(event(keyring, model_version_message(v1))) is None  # not newer
    new = up.handle(event(keyring, model_version_message(v2)))
    assert new is not None and new.version == 2 and up.version == 2
    assert up.handle(event(keyring, ModelVersion(model_name="triage", version=9))) is None  # not ours

    rogue = model_version_message(checkpoints[1])
    rogue.version = 3
    with pytest.raises(EnvelopeRejected) as err:
        up.handle(event(keyring, rogue, producer="rogue-service"))
    assert err.value.reason == RejectReason.REJECT_REASON_UNAUTHORIZED
    with pytest.raises(EnvelopeRejected) as err:
        up.handle(event(keyring, rogue, producer="k1", hospital="H1"))  # a kiosk's key, even a known one
    assert err.value.reason == RejectReason.REJECT_REASON_UNAUTHORIZED

    tampered = model_version_message(v2)
    tampered.version = 3
    tampered.weights = tampered.weights[:-1] + bytes([tampered.weights[-1] ^ 1])
    with pytest.raises(EnvelopeRejected) as err:
        up.handle(event(keyring, tampered))
    assert err.value.reason == RejectReason.REJECT_REASON_MALFORMED

    import hashlib

    junk = ModelVersion(model_name=MODEL_NAME, version=4, weights=b"not a checkpoint", format=tampered.format)
    junk.weights_sha256 = hashlib.sha256(junk.weights).digest()
    with pytest.raises(EnvelopeRejected):
        up.handle(event(keyring, junk))
    lying = model_version_message(v2)
    lying.version = 5  # the checkpoint inside says 2
    with pytest.raises(EnvelopeRejected):
        up.handle(event(keyring, lying))
    assert up.version == 2 and up.installed == 1 and up.refused == 5


def test_chunked_versions_are_reassembled(keyring: Keyring, checkpoints: list[Path]) -> None:
    msg = model_version_message(checkpoints[1])
    chunks = list(split_payload(msg.SerializeToString(), schema=msg.DESCRIPTOR.full_name, chunk_size=1024))
    assert len(chunks) > 2
    up = ModelUpdater(allowed_producers=("coordinator-1",), keyring=keyring, current_version=1)
    results = [up.handle(event(keyring, c)) for c in chunks]
    assert results[:-1] == [None] * (len(chunks) - 1)
    assert results[-1] is not None and results[-1].version == 2


@pytest.mark.broker
async def test_a_running_service_installs_a_published_version(
    settings: BusSettings, keyring: Keyring, checkpoints: list[Path], tmp_path: Path
) -> None:
    await apply_topics(settings, [KIOSK_TELEMETRY, FL_MODELS])
    cfg = AutoscalerConfig(
        group_id=f"autoscaler-models-{time.time_ns()}",
        series=SeriesConfig(step_s=0.5, max_lateness_s=0.5),
        model_producers=("coordinator-1",),
        send_commands=False,
    )
    service = AutoscalerService(
        cfg, settings, keyring, BusMetrics("autoscaler-models"), load_checkpoint(checkpoints[0])
    )
    stop = asyncio.Event()
    await service.start()
    runner = asyncio.create_task(service.run(stop))
    try:
        await asyncio.wait_for(service.consumer.assigned.wait(), 60)
        await publish_model(
            checkpoints[1],
            producer_id="coordinator-1",
            settings=settings,
            keyring=keyring,
            outbox_path=tmp_path / "pub.db",
        )
        deadline = time.monotonic() + 30
        while service.stats()["model_updates"] == 0 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        assert service.stats()["model"].startswith("v2-")
    finally:
        stop.set()
        await runner
        await service.stop()
