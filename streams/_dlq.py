"""Dead letters: a rejected message is kept whole, with the reason, and counted."""

from __future__ import annotations

import time

from aiokafka.structs import ConsumerRecord

from schemas import DeadLetter
from streams._catalog import DLQ
from streams._errors import EnvelopeRejected

__all__ = ["dead_letter_for"]


def dead_letter_for(
    record: ConsumerRecord[bytes, bytes], exc: EnvelopeRejected, worker: str
) -> tuple[str, bytes, bytes]:
    """(topic, key, value) of the DLQ message for ``record``; keyed by source topic as the catalog says."""
    letter = DeadLetter(
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        key=record.key or b"",
        value=record.value or b"",
        reason=exc.reason,  # type: ignore[arg-type]
        detail=exc.detail,
        worker=worker,
        rejected_at=time.time_ns(),
        producer_id=exc.producer_id,
        seq=exc.seq,
    )
    return DLQ.name, record.topic.encode(), letter.SerializeToString()
