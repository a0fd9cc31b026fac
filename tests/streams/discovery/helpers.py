"""Helpers shared by the discovery tests."""

from __future__ import annotations

import uuid

from streams import DLQ, BusSettings, TopicSpec, apply_topics


async def kafka_topic(settings: BusSettings) -> str:
    topic = f"registry.v1.{uuid.uuid4().hex[:8]}"
    spec = TopicSpec(name=topic, key="service/instance", content="test registry", cleanup="compact")
    await apply_topics(settings, [spec, DLQ])
    return topic
