"""The hospital subscriber: a hospital system's view of its own events."""

from cloud_workers.hospital._subscriber import HospitalSubscriber, SubscriberConfig, dumps, event_to_json

__all__ = ["HospitalSubscriber", "SubscriberConfig", "dumps", "event_to_json"]
