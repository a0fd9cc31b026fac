"""The hospital subscriber: a hospital system's view of its own events, as a FastStream Kafka app."""

from cloud_workers.hospital._app import Outcome, Sink, VerifiedSubscriber, VerifiedSubscriberConfig, kafka_broker
from cloud_workers.hospital._hospital import HospitalSubscriber, SubscriberConfig, dumps, event_to_json
from cloud_workers.hospital._security import faststream_security
from cloud_workers.hospital._verdict import Accepted, Duplicate, EnvelopeDecoder, Rejected, Verdict

__all__ = [
    "Accepted",
    "Duplicate",
    "EnvelopeDecoder",
    "HospitalSubscriber",
    "Outcome",
    "Rejected",
    "Sink",
    "SubscriberConfig",
    "Verdict",
    "VerifiedSubscriber",
    "VerifiedSubscriberConfig",
    "dumps",
    "event_to_json",
    "faststream_security",
    "kafka_broker",
]
