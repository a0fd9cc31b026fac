"""Create and validate the catalog's topics, idempotently."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from streams._catalog import TopicSpec
from streams._settings import BusSettings

__all__ = ["TopicReport", "apply_topics"]


@dataclass(frozen=True, slots=True)
class TopicReport:
    name: str
    #: "created", "ok", "altered" (configs set back to the catalog's), or "mismatch"
    status: str
    partitions: int
    detail: str = ""


async def _describe(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for desc in await admin.describe_topics(names):
        if desc.get("error_code", 0) == 0:
            found[desc["topic"]] = len(desc.get("partitions", []))
    return found


async def _topic_configs(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> dict[str, dict[str, str]]:
    """The current values of the configs each spec sets, per topic (DescribeConfigs)."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, s.name, dict.fromkeys(s.configs())) for s in specs]
    found: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            if resource["error_code"] == 0:
                entries = resource.get("config_entries") or []
                found[resource["resource_name"]] = {e["config_names"]: e["config_value"] for e in entries}
    return found


async def _align_configs(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> set[str]:
    """Set existing topics' cleanup policy and retention back to the catalog's; returns the topics altered.

    AlterConfigs replaces a topic's whole dynamic config, which is what the catalog means: it is the
    single source of truth. A broker that does not answer DescribeConfigs (Tansu closes the connection)
    leaves the topics as they are.
    """
    try:
        current = await _topic_configs(admin, specs)
    except KafkaError:
        return set()
    drifted = [s for s in specs if s.name in current and current[s.name] != s.configs()]
    if not drifted:
        return set()
    await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, s.name, s.configs()) for s in drifted])
    return {s.name for s in drifted}


async def apply_topics(settings: BusSettings, specs: list[TopicSpec], *, timeout_s: float = 30.0) -> list[TopicReport]:
    """Create missing topics with their configs (cleanup policy, retention); set existing topics' configs
    back to the catalog's where the broker reports them; report existing topics whose partition count is
    lower than wanted (Kafka cannot shrink partitions, so more is accepted). Safe to run any number of times."""
    admin = AIOKafkaAdminClient(**settings.kafka_kwargs(), client_id=f"{settings.client_id}-admin")
    await asyncio.wait_for(admin.start(), timeout=timeout_s)
    try:
        existing = set(await admin.list_topics())
        wanted = {s.name: s.partitions or settings.topic_partitions for s in specs}
        missing = [s for s in specs if s.name not in existing]
        created: set[str] = set()
        if missing:
            new = [
                NewTopic(
                    name=s.name,
                    num_partitions=wanted[s.name],
                    replication_factor=settings.replication_factor,
                    topic_configs=s.configs(),
                )
                for s in missing
            ]
            try:
                await admin.create_topics(new)
                created = {s.name for s in missing}
            except TopicAlreadyExistsError:
                created = set()
        actual: dict[str, int] = {}
        for _ in range(50):
            try:
                actual = await _describe(admin, list(wanted))
            except KafkaError:
                actual = {}
            if len(actual) == len(wanted):
                break
            await asyncio.sleep(0.1)
        existing_specs = [s for s in specs if s.name not in created and actual.get(s.name, 0) > 0]
        altered = await _align_configs(admin, existing_specs) if existing_specs else set()
        reports = []
        for spec in specs:
            have = actual.get(spec.name, 0)
            want = wanted[spec.name]
            if have == 0:
                reports.append(TopicReport(spec.name, "mismatch", 0, "topic not visible after create"))
            elif have < want:
                reports.append(TopicReport(spec.name, "mismatch", have, f"has {have} partitions, want {want}"))
            else:
                status = "created" if spec.name in created else "altered" if spec.name in altered else "ok"
                reports.append(TopicReport(spec.name, status, have))
        return reports
    finally:
        await admin.close()
