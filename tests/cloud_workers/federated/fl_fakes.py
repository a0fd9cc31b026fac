"""In-memory envelopes and log events for the pure state-machine tests (no broker)."""

from __future__ import annotations

import numpy as np
from aiokafka.structs import ConsumerRecord
from google.protobuf.message import Message

from cloud_workers.federated import AssembledUpdate, UpdateAssembler
from edge_agent.federated._client_core import ClientCore
from schemas import MedicalRecord, ModelUpdate, ModelVersion, RoundAnnouncement
from streams import ChainState, Keyring, LogEvent, decode_payload, envelope_hash, seal, split_payload
from streams.federated import PublicKey
from tests.cloud_workers.federated.harness import CLIENTS, DIM, secret_of, trainers

UPDATES = "updates"


class Log:
    """An append-only list of records of one topic partition, with envelopes sealed per producer."""

    def __init__(self, keyring: Keyring, topic: str = UPDATES) -> None:
        self.keyring = keyring
        self.topic = topic
        self.records: list[ConsumerRecord[bytes, bytes]] = []
        self._chains: dict[str, ChainState] = {}

    def seal(self, producer: str, message: Message, hospital: str | None = None) -> MedicalRecord:
        chain = self._chains.get(producer, ChainState())
        rec, self._chains[producer] = seal(
            message,
            signing_key=self.keyring.signing_key(producer),
            chain=chain,
            hospital_id=CLIENTS.get(producer, "") if hospital is None else hospital,
            data_key=None,
        )
        return rec

    def append(self, rec: MedicalRecord | bytes) -> LogEvent | None:
        raw = rec if isinstance(rec, bytes) else rec.SerializeToString()
        record = ConsumerRecord(self.topic, 0, len(self.records), 0, 0, b"k", raw, None, 1, len(raw), ())
        self.records.append(record)
        if isinstance(rec, bytes):
            return None
        return LogEvent(record, rec, envelope_hash(rec), decode_payload(rec, rec.encrypted_data))

    def lookup(self) -> dict[tuple[str, int, int], bytes]:
        return {(r.topic, r.partition, r.offset): r.value or b"" for r in self.records}


def chunks(update: ModelUpdate, size: int = 96) -> list[Message]:
    return list(split_payload(update.SerializeToString(deterministic=True), schema=update.DESCRIPTOR.full_name,
                              chunk_size=size))  # fmt: skip


def client_update(ann: RoundAnnouncement, client: str, pub: PublicKey, secret: bytes | None = None) -> ModelUpdate:
    core = ClientCore(client, trainers()[client], secret if secret is not None else secret_of(client))
    core.on_model(ModelVersion(model_name=ann.model_name, version=ann.model_version), np.zeros(DIM))
    (update,) = core.encrypt(ann, core.quantize(ann), pub, None)
    return update


def send(log: Log, update: ModelUpdate, producer: str | None = None, *, reverse: bool = False) -> AssembledUpdate:
    """Seal ``update`` in chunks into ``log`` (last chunk first when ``reverse``) and assemble it as the
    aggregator would."""
    envs = [log.seal(producer or update.client_id, c) for c in chunks(update)]
    assert len(envs) > 1
    assembler = UpdateAssembler()
    done = None
    for i in reversed(range(len(envs))) if reverse else range(len(envs)):
        event = log.append(envs[i])
        assert event is not None
        done = assembler.add(event) or done
    assert done is not None
    return done
