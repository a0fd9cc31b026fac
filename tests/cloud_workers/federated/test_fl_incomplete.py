"""A chunked payload whose chunks never all arrive is dead-lettered (``chunk_invalid``, every chunk that came),
not only logged: the bus rule that undeliverable input goes to ``dlq.v1`` with a reason. Real broker, real roles:
an update at the aggregator, a model version at a client."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer

from edge_agent.federated._client_core import ClientCore
from schemas import Chunk, ModelUpdate, ModelVersion, RejectReason, RoundAnnouncement
from streams import BusMetrics, ChainState, Keyring, LogReader, seal, split_payload
from streams.broker import EmbeddedBroker
from streams.federated import update_key
from tests.cloud_workers.federated.harness import (
    CLIENTS,
    DIM,
    IDS,
    Harness,
    config,
    dead_letters,
    make_keys,
    running,
    secret_of,
    trainers,
)

pytestmark = [pytest.mark.broker]

A = sorted(CLIENTS)[0]
C, D = sorted(CLIENTS)[2:]


async def _announcement(h: Harness, timeout_s: float = 30.0) -> RoundAnnouncement:
    reader = LogReader(h.settings("aggregator"), h.keyring("aggregator"), BusMetrics("t"), worker="t-rounds")
    await reader.start()
    try:
        await reader.assign(dict.fromkeys(await reader.partitions(h.topics.rounds)))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in await reader.poll(timeout_ms=200):
                if isinstance(event.message, RoundAnnouncement):
                    return event.message
    finally:
        await reader.stop()
    raise AssertionError("no round announced")


def _sealed_chunks(h: Harness, ann: RoundAnnouncement, client: str, keyring: Keyring) -> list[bytes]:
    core = ClientCore(client, trainers()[client], secret_of(client))
    core.on_model(ModelVersion(model_name=h.model, version=0, round_id=0), np.zeros(DIM))
    (update,) = core.encrypt(ann, core.quantize(ann), h.keys.public_key, None)
    chunks = split_payload(
        update.SerializeToString(deterministic=True), schema=ModelUpdate.DESCRIPTOR.full_name, chunk_size=96
    )
    chain, out = ChainState(), []
    for chunk in chunks:
        rec, chain = seal(chunk, signing_key=keyring.signing_key(client), chain=chain, hospital_id=CLIENTS[client],
                          data_key=None, stream=h.topics.updates)  # fmt: skip
        out.append(rec.SerializeToString())
    return out


async def test_an_update_left_incomplete_is_dead_lettered(broker: EmbeddedBroker, tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    h = Harness(broker.bootstrap, keys, tmp_path / "state")
    everyone = Keyring.load(keys.root)
    async with running(h):
        await h.launch(h.aggregator(chunk_ttl_s=1.0))
        await h.launch(h.coordinator(config(keys, h.model, rounds=1)))
        ann = await _announcement(h)
        partial = _sealed_chunks(h, ann, C, everyone)[:2]  # C's update is cut off after two chunks
        whole = _sealed_chunks(h, ann, D, everyone)
        assert len(whole) > 2
        producer = AIOKafkaProducer(bootstrap_servers=h.bootstrap)
        await producer.start()
        try:
            for raw in partial:
                await producer.send_and_wait(h.topics.updates, raw, key=update_key(h.model, 1, 0))
            await asyncio.sleep(1.5)  # past the aggregator's chunk TTL
            for raw in whole:  # the next chunk read makes the aggregator give C's update up
                await producer.send_and_wait(h.topics.updates, raw, key=update_key(h.model, 1, 0))
        finally:
            await producer.stop()
        letters = await dead_letters(h.bootstrap, [h.topics.updates], want=2, timeout_s=30.0)
    assert [d.reason for d in letters] == [RejectReason.REJECT_REASON_CHUNK_INVALID] * 2
    assert {d.producer_id for d in letters} == {C}
    assert all("2 of" in d.detail and "given up" in d.detail for d in letters)


def _sealed(h: Harness, producer: str, chunks: list[Chunk], keyring: Keyring, chain: ChainState) -> list[bytes]:
    out = []
    for chunk in chunks:
        rec, chain = seal(chunk, signing_key=keyring.signing_key(producer), chain=chain, hospital_id="",
                          data_key=None, stream=h.topics.models)  # fmt: skip
        out.append(rec.SerializeToString())
    return out


async def test_a_model_version_left_incomplete_is_dead_lettered_by_the_client(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    keys = make_keys(tmp_path / "keys")
    h = Harness(broker.bootstrap, keys, tmp_path / "state")
    everyone = Keyring.load(keys.root)
    lost = ModelVersion(model_name=h.model, version=3, weights=bytes(2000), format="f64le")
    trigger = ModelVersion(model_name="another-model", version=1, weights=bytes(16), format="f64le")
    lost_chunks = list(split_payload(lost.SerializeToString(), schema=ModelVersion.DESCRIPTOR.full_name,
                                     chunk_size=256))  # fmt: skip
    assert len(lost_chunks) > 3
    wire = _sealed(h, IDS.models, [*lost_chunks[:3], *split_payload(
        trigger.SerializeToString(), schema=ModelVersion.DESCRIPTOR.full_name, chunk_size=256)], everyone,
        ChainState())  # fmt: skip
    async with running(h):
        await h.launch(h.client(A, trainers()[A], chunk_ttl_s=1.0))
        producer = AIOKafkaProducer(bootstrap_servers=h.bootstrap)
        await producer.start()
        try:
            for raw in wire[:3]:  # three chunks of a version whose other chunks never come
                await producer.send_and_wait(h.topics.models, raw, key=h.model.encode())
            await asyncio.sleep(1.5)  # past the client's chunk TTL
            for raw in wire[3:]:  # the next chunk read makes the client give the version up
                await producer.send_and_wait(h.topics.models, raw, key=b"another-model")
        finally:
            await producer.stop()
        letters = await dead_letters(h.bootstrap, [h.topics.models], want=3, timeout_s=30.0)
    assert [d.reason for d in letters] == [RejectReason.REJECT_REASON_CHUNK_INVALID] * 3
    assert {(d.producer_id, d.worker) for d in letters} == {(IDS.models, A)}
    assert all("incomplete model version" in d.detail and "3 of" in d.detail for d in letters)
