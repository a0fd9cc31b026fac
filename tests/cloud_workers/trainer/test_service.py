"""The trainer service on the real broker: a signed request is trained once and published as a signed, chunked
model version (a MONAI bundle zip with metrics and the data card); unauthorised, expired, path-escaping and
malformed requests are dead-lettered; a restart trains nothing twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from cloud_workers.federated import Publisher
from cloud_workers.trainer import SyntheticConfig, generate_synthetic, load_bundle
from cloud_workers.trainer._export import unzip_bundle
from cloud_workers.trainer._service import BUNDLE_FORMAT, TrainerService, TrainerServiceConfig
from schemas import Chunk, DeadLetter, ModelVersion, RejectReason, TrainingRequest
from streams import (
    DLQ,
    BusMetrics,
    BusSettings,
    Keyring,
    LogReader,
    Reassembler,
    TopicSpec,
    apply_topics,
    init_dev_keys,
)
from tests.streams.multimodal.helpers import TEST_ROI

pytestmark = [pytest.mark.broker, pytest.mark.slow]

DEFAULTS = {"roi": TEST_ROI, "epochs": 1, "batch_size": 4, "feature_size": 12, "depths": (1, 1, 1, 1),
            "window_size": (4, 4, 4), "max_tokens": 48, "val_fraction": 0.4}  # fmt: skip


async def _send(
    settings: BusSettings, keyring: Keyring, producer: str, topic: str, reqs: list[TrainingRequest], hospital: str = ""
) -> None:
    pub = Publisher(settings.state_dir / f"{producer}.db", producer, settings, keyring, BusMetrics(producer))
    await pub.start()
    await pub.put([Publisher.request(topic, r.model_name.encode(), r, hospital_id=hospital) for r in reqs])
    await pub.stop()


async def _models(
    settings: BusSettings, keyring: Keyring, topic: str, want: int, timeout_s: float
) -> list[tuple[str, ModelVersion]]:
    reader = LogReader(settings, keyring, BusMetrics("test-models"), worker="test-models")
    await reader.start()
    out: list[tuple[str, ModelVersion]] = []
    reassembler = Reassembler()
    try:
        await reader.assign(dict.fromkeys(await reader.partitions(topic)))
        deadline = time.monotonic() + timeout_s
        while len(out) < want and time.monotonic() < deadline:
            for event in await reader.poll(timeout_ms=200):
                assert isinstance(event.message, Chunk)
                done = reassembler.add(event.message)
                if done is not None:
                    out.append((event.envelope.producer_id, ModelVersion.FromString(done.payload)))
    finally:
        await reader.stop()
    return out


async def _dead_letters(bootstrap: str, topic: str, want: int, timeout_s: float = 30.0) -> list[DeadLetter]:
    consumer = AIOKafkaConsumer(DLQ.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[DeadLetter] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(found) < want and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found += [d for d in map(DeadLetter.FromString, (r.value for r in records)) if d.source_topic == topic]
    finally:
        await consumer.stop()
    return found


async def test_requests_are_checked_trained_once_and_published(broker: object, tmp_path: Path, tiny_bert: Path) -> None:
    keys = tmp_path / "keys"
    init_dev_keys(keys, hospitals=["H1"], kiosks={"kiosk-1": "H1"}, services=["trainer", "ops-1"])
    keyring = Keyring.load(keys)
    settings = BusSettings(bootstrap_servers=broker.bootstrap, keys_dir=keys, state_dir=tmp_path / "state",  # type: ignore[attr-defined]
                           topic_partitions=1)  # fmt: skip
    suffix = uuid.uuid4().hex[:8]
    requests_topic, models_topic = f"training.requests.v1.{suffix}", f"fl.models.v1.{suffix}"
    await apply_topics(settings, [TopicSpec(name=requests_topic, key="model", content="t"),
                                  TopicSpec(name=models_topic, key="model", content="t"), DLQ])  # fmt: skip
    data = tmp_path / "data"
    generate_synthetic(data / "syn", SyntheticConfig(cases=6, size=(36, 36, 10), concordant=True))
    cfg = TrainerServiceConfig(trainer_id="trainer", requesters=("ops-1",), requests_topic=requests_topic,
                               models_topic=models_topic, data_root=data, text_encoder_dir=tiny_bert,
                               defaults=DEFAULTS, chunk_size=256 * 1024)  # fmt: skip
    good = TrainingRequest(request_id="r1", model_name="mm-ct", manifest="syn/manifest.jsonl", seed=1)
    escape = TrainingRequest(request_id="r2", model_name="mm-ct", manifest="../../etc/passwd")
    expired = TrainingRequest(request_id="r3", model_name="mm-ct", manifest="syn/manifest.jsonl", expires_at=1)
    bad_roi = TrainingRequest(request_id="r4", model_name="mm-ct", manifest="syn/manifest.jsonl", roi=[32, 32])
    missing = TrainingRequest(request_id="r5", model_name="mm-ct", manifest="syn/nope.jsonl")

    service = TrainerService(cfg, settings, keyring, BusMetrics("trainer"))
    stop = asyncio.Event()
    await service.start()
    task = asyncio.create_task(service.run(stop))
    try:
        await _send(settings, keyring, "kiosk-1", requests_topic, [good], hospital="H1")  # a kiosk may not ask
        await _send(settings, keyring, "ops-1", requests_topic, [escape, expired, bad_roi, good, missing, good])
        got = await _models(settings, keyring, models_topic, 1, timeout_s=150)
        letters = await _dead_letters(settings.bootstrap_servers, requests_topic, 4)
        for _ in range(200):
            if service.failed:
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        await service.stop()

    assert sorted(RejectReason.Name(d.reason) for d in letters) == sorted(
        ["REJECT_REASON_UNAUTHORIZED", "REJECT_REASON_MALFORMED", "REJECT_REASON_STALE", "REJECT_REASON_MALFORMED"]
    )
    assert service.trained == 1 and service.failed == 1  # r1 once (sent twice), r5's manifest is missing
    assert service.state.done["r5"]["status"] == "failed" and "does not exist" in service.state.done["r5"]["error"]
    ((producer, mv),) = got
    assert producer == "trainer" and mv.model_name == "mm-ct" and mv.version == 1 and mv.format == BUNDLE_FORMAT
    assert {"val_auroc", "val_acc", "val_loss"} <= set(mv.metrics) and mv.metrics["synthetic_data"] == 1.0
    root = unzip_bundle(bytes(mv.weights), tmp_path / "received")
    assert "SYNTHETIC" in (root / "docs" / "data_card.md").read_text()
    assert (root / "models" / "model.onnx").is_file()
    info = load_bundle(root)
    assert info.model.config.roi == TEST_ROI and info.metadata["version"] == "1.0.0"

    # Restarted on the same state: every request is seen again, none is trained again.
    again = TrainerService(cfg, settings, keyring, BusMetrics("trainer-2"))
    await again.start()
    for event in await again.reader.read_to_end():
        await again.handle(event)
    await again.stop()
    assert again.trained == 0 and again.failed == 0 and again.state.next_version == 2
