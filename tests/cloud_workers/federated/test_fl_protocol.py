"""The protocol on the real broker, roles in-process: duplicates, reordering, a client sending twice, unsigned
and wrongly signed updates and an update for the wrong round leave the aggregate exactly as the plaintext twin
computes it, and each bad input is in the DLQ with its reason. Then forged encrypted sums (too few contributors,
a forged contributor, a sum that is one client's ciphertext) are refused by the keyholder."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer

from edge_agent.federated._client_core import ClientCore
from schemas import (
    EncryptedSum,
    MedicalRecord,
    ModelUpdate,
    ModelVersion,
    PlainAggregate,
    RejectReason,
    RoundAnnouncement,
)
from streams import BusMetrics, ChainState, Keyring, LogReader, SigningKey, seal, split_payload
from streams.federated import update_key
from tests.cloud_workers.federated.harness import (
    CLIENTS,
    DIM,
    Harness,
    config,
    dead_letters,
    make_keys,
    params_of,
    read_models,
    running,
    secret_of,
    trainers,
    twin,
)

pytestmark = [pytest.mark.broker]

R = RejectReason
C = "fl-client-c"


def _seal_all(
    messages: list[object], key: SigningKey, hospital: str, start_seq: int, stream: str
) -> list[MedicalRecord]:
    chain, out = ChainState(start_seq, bytes(32)), []
    for msg in messages:
        rec, chain = seal(msg, signing_key=key, chain=chain, hospital_id=hospital, data_key=None, stream=stream)  # type: ignore[arg-type]
        out.append(rec)
    return out


def _chunks(update: ModelUpdate) -> list[object]:
    payload = update.SerializeToString(deterministic=True)
    return list(split_payload(payload, schema=update.DESCRIPTOR.full_name, chunk_size=96))


async def _read(h: Harness, topic: str, role: str, cls: type, want: int, timeout_s: float = 30.0) -> list[object]:
    reader = LogReader(h.settings(role), h.keyring(role), BusMetrics("test-read"), worker="test-read")
    await reader.start()
    found: list[object] = []
    try:
        await reader.assign(dict.fromkeys(await reader.partitions(topic)))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(found) < want:
            found += [e.message for e in await reader.poll(timeout_ms=200) if isinstance(e.message, cls)]
        found += [e.message for e in await reader.poll(timeout_ms=300) if isinstance(e.message, cls)]
    finally:
        await reader.stop()
    return found


async def _produce(bootstrap: str, topic: str, key: bytes, records: list[MedicalRecord | bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for r in records:
            await producer.send_and_wait(topic, r if isinstance(r, bytes) else r.SerializeToString(), key=key)
    finally:
        await producer.stop()


async def test_bad_updates_leave_the_aggregate_exact_and_land_in_the_dlq(broker: object, tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    h = Harness(broker.bootstrap, keys, tmp_path / "state")  # type: ignore[attr-defined]
    cfg = config(keys, h.model, rounds=1)
    everyone = Keyring.load(keys.root)
    async with running(h):
        keyholder = h.keyholder()
        aggregator = h.aggregator()
        await h.launch(keyholder)
        await h.launch(aggregator)
        await h.launch(h.coordinator(cfg))
        (ann,) = await _read(h, h.topics.rounds, "aggregator", RoundAnnouncement, 1)
        assert isinstance(ann, RoundAnnouncement)
        key = update_key(h.model, 1, 0)

        # The test is client C: its real update, chunked, sent in reverse order and every chunk twice ...
        core = ClientCore(C, trainers()[C], secret_of(C))
        core.on_model(ModelVersion(model_name=h.model, version=0, round_id=0), np.zeros(DIM))
        q = core.quantize(ann)
        (first,) = core.encrypt(ann, q, keys.public_key, None)
        (second,) = core.encrypt(ann, q, keys.public_key, None)  # same values, fresh randomness: another update
        first_env = _seal_all(_chunks(first), everyone.signing_key(C), CLIENTS[C], 0, h.topics.updates)
        assert len(first_env) > 2
        second_env = _seal_all(_chunks(second), everyone.signing_key(C), CLIENTS[C], len(first_env), h.topics.updates)
        # ... an unsigned envelope, one claiming client D but signed with A's key, and D's update for round 99.
        unsigned = MedicalRecord()
        unsigned.CopyFrom(first_env[0])
        unsigned.signature.r, unsigned.signature.s = b"", b""
        impostor = SigningKey("fl-client-d", 1, everyone.signing_key("fl-client-a").private_key)
        wrong_sig = _seal_all(_chunks(first), impostor, CLIENTS["fl-client-d"], 100, h.topics.updates)[0]
        future = RoundAnnouncement()
        future.CopyFrom(ann)
        future.round_id = 99
        (wrong_round,) = core.encrypt(future, q, keys.public_key, None)
        wrong_round.client_id = "fl-client-d"
        wrong_round_env = _seal_all(
            [wrong_round], everyone.signing_key("fl-client-d"), CLIENTS["fl-client-d"], 5000, h.topics.updates
        )
        wire: list[MedicalRecord | bytes] = []
        for env in reversed(first_env):
            wire += [env, env]
        wire += [unsigned, wrong_sig, *wrong_round_env, *second_env]
        await _produce(h.bootstrap, h.topics.updates, key, wire)

        letters = await dead_letters(h.bootstrap, [h.topics.updates], want=4)
        reasons = sorted(R.Name(d.reason) for d in letters)
        assert reasons == sorted(
            [
                "REJECT_REASON_MALFORMED",
                "REJECT_REASON_BAD_SIGNATURE",
                "REJECT_REASON_WRONG_ROUND",
                "REJECT_REASON_CONFLICTING_UPDATE",
            ]
        )
        assert aggregator.reader.duplicates >= len(first_env)
        conflict = next(d for d in letters if d.reason == R.REJECT_REASON_CONFLICTING_UPDATE)
        assert conflict.producer_id == C

        tr = trainers()
        for cid in ("fl-client-a", "fl-client-b", "fl-client-d"):
            await h.launch(h.client(cid, tr[cid]))
        models = await read_models(h, 2)
        assert [list(m.contributors) for m in models[1:]] == [sorted(CLIENTS)]
        expected = twin(cfg, trainers(), [sorted(CLIENTS)])
        for got, want in zip(params_of(models), expected, strict=True):
            np.testing.assert_array_equal(got, want)

        # Forged sums, signed by the aggregator: the keyholder refuses each and decrypts nothing more.
        (genuine,) = await _read(h, h.topics.sums, "aggregator", EncryptedSum, 1)
        assert isinstance(genuine, EncryptedSum) and len(genuine.contributors) == 4
        too_few, forged, single = EncryptedSum(), EncryptedSum(), EncryptedSum()
        for s in (too_few, forged, single):
            s.CopyFrom(genuine)
        del too_few.contributors[2:]
        by_id = {c.client_id: c for c in forged.contributors}
        del by_id["fl-client-d"].parts[:]
        by_id["fl-client-d"].parts.extend(by_id["fl-client-a"].parts)
        single.ciphertexts[:] = list(first.ciphertexts)  # one client's update, posing as the sum
        sums = _seal_all([too_few, forged, single], everyone.signing_key("fl-aggregator-0"), "", 9000, h.topics.sums)
        await _produce(h.bootstrap, h.topics.sums, key, list(sums))
        refused = await dead_letters(h.bootstrap, [h.topics.sums], want=3)
        assert sorted(R.Name(d.reason) for d in refused) == sorted(
            [
                "REJECT_REASON_TOO_FEW_CONTRIBUTORS",
                "REJECT_REASON_FORGED_CONTRIBUTOR",
                "REJECT_REASON_SUM_MISMATCH",
            ]
        )
        await asyncio.sleep(0.5)
        released = await _read(h, h.topics.aggregates, "coordinator", PlainAggregate, 2, timeout_s=3)
        assert len(released) == 1
        assert keyholder.metrics.value("medkiosk_fl_decryptions_total") == 1
        assert keyholder.metrics.value("medkiosk_fl_refusals_total", reason="too_few_contributors") == 1
