"""New forecaster versions over the bus: a checkpoint published as a ``ModelVersion`` on ``fl.models.v1``.

The topic already carries signed model versions to kiosks; a kiosk ignores a model name it does not serve,
but dead-letters one from a producer outside its ``model_producers``, so publish as a producer the kiosks
list (``trainer-1`` by default). The autoscaler installs a version only when it is signed by one of its
own ``model_producers``, names ``autoscaler-lstm``, matches its SHA-256, loads as a checkpoint
(``weights_only``: data, never code) and is newer than the one running; anything else is refused with a
reason and dead-lettered, and the running forecaster keeps serving.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from cloud_workers.autoscaler._checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint_bytes
from schemas import Chunk, ModelVersion, RejectReason
from streams import (
    DEFAULT_CHUNK_SIZE,
    FL_MODELS,
    BusMetrics,
    BusSettings,
    EnvelopeRejected,
    Keyring,
    Outbox,
    OutboxSender,
    Reassembler,
    SealRequest,
    VerifiedEvent,
    split_payload,
)

if TYPE_CHECKING:
    from cloud_workers.autoscaler._lstm import LstmForecaster

__all__ = ["MODEL_NAME", "ModelUpdater", "model_version_message", "publish_model"]

MODEL_NAME = "autoscaler-lstm"


def model_version_message(checkpoint: Path) -> ModelVersion:
    """The ``ModelVersion`` for a checkpoint file (its own version number, bytes and digest)."""
    data = checkpoint.read_bytes()
    forecaster = load_checkpoint_bytes(data, source=str(checkpoint))  # refuse to publish what we cannot load
    return ModelVersion(
        model_name=MODEL_NAME,
        version=forecaster.version,
        weights=data,
        weights_sha256=hashlib.sha256(data).digest(),
        format=CHECKPOINT_FORMAT,
    )


async def publish_model(
    checkpoint: Path, *, producer_id: str, settings: BusSettings, keyring: Keyring, outbox_path: Path
) -> ModelVersion:
    """Publish a checkpoint (chunked if large) through a durable outbox; returns the message sent."""
    message = model_version_message(checkpoint)
    payload = message.SerializeToString(deterministic=True)
    requests = [
        SealRequest(topic=FL_MODELS.name, key=MODEL_NAME.encode(), message=chunk, hospital_id="", data_key=None)
        for chunk in split_payload(payload, schema=message.DESCRIPTOR.full_name, chunk_size=DEFAULT_CHUNK_SIZE)
    ]
    outbox_path.parent.mkdir(parents=True, exist_ok=True)
    outbox = Outbox(outbox_path, signing_key=keyring.signing_key(producer_id))
    sender = OutboxSender(outbox, settings, BusMetrics(producer_id))
    try:
        outbox.put(requests)
        await sender.start()
        if not await sender.drain(60.0):
            raise TimeoutError("the broker did not acknowledge the model within 60 s (it stays in the outbox)")
    finally:
        await sender.stop()
        outbox.close()
    return message


class ModelUpdater:
    """Turns verified ``fl.models.v1`` events into a newer forecaster, or ``None`` (not for us / not newer)."""

    def __init__(self, *, allowed_producers: tuple[str, ...], keyring: Keyring, current_version: int = 0) -> None:
        self._allowed = allowed_producers
        self._keyring = keyring
        self._reassembler = Reassembler()
        self.version = current_version
        self.installed = 0
        self.refused = 0

    def _reject(self, event: VerifiedEvent, reason: int, detail: str) -> EnvelopeRejected:
        self.refused += 1
        env = event.envelope
        return EnvelopeRejected(reason, detail, producer_id=env.producer_id, seq=env.seq)

    def handle(self, event: VerifiedEvent) -> LstmForecaster | None:
        message = event.message
        if isinstance(message, Chunk):
            if message.payload_schema != ModelVersion.DESCRIPTOR.full_name:
                return None
            self._authorize(event)
            assembled = self._reassembler.add(message)
            if assembled is None:
                return None
            message = ModelVersion.FromString(assembled.payload)
        if not isinstance(message, ModelVersion) or message.model_name != MODEL_NAME:
            return None
        self._authorize(event)
        if message.format != CHECKPOINT_FORMAT or hashlib.sha256(message.weights).digest() != message.weights_sha256:
            raise self._reject(event, RejectReason.REJECT_REASON_MALFORMED, "forecaster weights fail their digest")
        if message.version <= self.version:
            return None
        try:
            forecaster = load_checkpoint_bytes(bytes(message.weights), source=f"{MODEL_NAME} v{message.version}")
        except CheckpointError as exc:
            raise self._reject(event, RejectReason.REJECT_REASON_MALFORMED, str(exc)) from exc
        if forecaster.version != message.version:
            raise self._reject(event, RejectReason.REJECT_REASON_MALFORMED, "version does not match the checkpoint")
        self.version = message.version
        self.installed += 1
        return forecaster

    def _authorize(self, event: VerifiedEvent) -> None:
        producer = event.envelope.producer_id
        info = self._keyring.producers.get(producer)
        if producer not in self._allowed or info is None or info.hospital_id:
            raise self._reject(
                event, RejectReason.REJECT_REASON_UNAUTHORIZED, f"{producer} may not install forecasters"
            )
