"""Audit replay: verify a topic's envelopes and chains without decrypting anything."""

from cloud_workers.audit._replay import ReplayReport, replay_topic

__all__ = ["ReplayReport", "replay_topic"]
