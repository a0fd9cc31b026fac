"""How a process takes part: ``announce`` keeps it registered while a block runs; ``bootstrap_from_registry``
finds the Kafka brokers (or any service's endpoints) in the registry instead of in a config file."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping

from streams._keys import Keyring
from streams._metrics import BusMetrics
from streams._settings import BusSettings
from streams.discovery._base import RegistryBase
from streams.discovery._heartbeat import Heartbeat
from streams.discovery._model import Check, group_members
from streams.discovery._settings import RegistrySettings, open_registry

__all__ = [
    "announce",
    "announce_service",
    "bootstrap_from_registry",
    "endpoints_from_registry",
    "follow_groups",
    "groups_from_registry",
    "metrics_endpoint",
]

log = logging.getLogger(__name__)


def metrics_endpoint(bus: BusSettings) -> str | None:
    """``host:port`` of this process's ``/metrics`` (None when it serves none)."""
    return f"{bus.metrics_host}:{bus.metrics_port}" if bus.metrics_port else None


@contextlib.asynccontextmanager
async def announce(
    *,
    service: str,
    instance_id: str,
    address: str,
    port: int,
    meta: Mapping[str, str],
    bus: BusSettings,
    keyring: Keyring,
    metrics: BusMetrics | None = None,
    check: Check | None = None,
    settings: RegistrySettings | None = None,
    refresh: Callable[[], Mapping[str, str]] | None = None,
) -> AsyncIterator[Heartbeat | None]:
    """Register and heartbeat while the block runs, deregister after it. A registry that is switched off
    (``backend = "none"``) or that this process cannot write to (no signing key for the Kafka backend)
    yields ``None``: discovery never stops a kiosk or a worker from doing its job."""
    settings = settings or RegistrySettings()
    if settings.backend == "none":
        yield None
        return
    if settings.backend == "kafka":
        try:
            keyring.signing_key(instance_id)
        except KeyError:
            log.warning("not registering %s/%s: no signing key for it in this keyring", service, instance_id)
            yield None
            return
    registry = open_registry(settings, bus=bus, keyring=keyring, metrics=metrics, producer_id=instance_id)
    await registry.start()
    beat = Heartbeat(
        registry,
        service=service,
        instance_id=instance_id,
        address=address,
        port=port,
        meta=meta,
        check=check or Check(ttl_s=settings.ttl_s),
        refresh=refresh,
    )
    try:
        await beat.start()
        yield beat
    finally:
        await beat.stop()
        await registry.stop()


def announce_service(
    *,
    service: str,
    instance_id: str,
    role: str,
    bus: BusSettings,
    keyring: Keyring,
    metrics: BusMetrics | None = None,
    meta: Mapping[str, str] | None = None,
) -> contextlib.AbstractAsyncContextManager[Heartbeat | None]:
    """``announce`` for a cloud worker whose endpoint is its ``/metrics`` (Prometheus finds it through the
    registry's SD endpoint)."""
    endpoint = metrics_endpoint(bus)
    full = {"role": role, **(meta or {}), **({"metrics": endpoint} if endpoint else {})}
    return announce(
        service=service,
        instance_id=instance_id,
        address=bus.metrics_host,
        port=bus.metrics_port or 0,
        meta=full,
        bus=bus,
        keyring=keyring,
        metrics=metrics,
    )


async def endpoints_from_registry(
    settings: RegistrySettings, service: str, *, bus: BusSettings | None = None, keyring: Keyring | None = None
) -> list[str]:
    """``host:port`` of every healthy instance of ``service``."""
    registry = open_registry(settings, bus=bus, keyring=keyring)
    await registry.start()
    try:
        return [i.endpoint for i in await registry.healthy(service)]
    finally:
        await registry.stop()


def bootstrap_from_registry(settings: RegistrySettings) -> str | None:
    """The bootstrap list from the healthy instances of ``settings.bootstrap_service`` (e.g. ``kafka``) in an
    etcd or Consul registry; None when not configured or none is healthy. (The Kafka-native registry cannot
    tell where Kafka is: it lives there.)"""
    if not settings.bootstrap_service or settings.backend not in ("etcd", "consul"):
        return None
    found = asyncio.run(endpoints_from_registry(settings, settings.bootstrap_service))
    return ",".join(sorted(found)) or None


async def follow_groups(
    registry: RegistryBase,
    groups: dict[str, list[str]],
    *,
    service: str = "kiosk",
    static: Mapping[str, list[str]] | None = None,
) -> None:
    """Keep ``groups`` (``group -> member ids``, updated in place) equal to ``static`` plus the groups the
    healthy instances of ``service`` announce, for as long as it runs (an autoscaler's ``group:<name>``
    targets follow the fleet: a kiosk that joins, leaves or dies changes its groups' membership)."""
    fixed = {name: list(members) for name, members in (static or {}).items()}
    async for snapshot in registry.watch(service):
        merged = {name: list(members) for name, members in fixed.items()}
        for name, members in group_members(snapshot).items():
            merged[name] = sorted({*merged.get(name, []), *members})
        groups.clear()
        groups.update(merged)


@contextlib.asynccontextmanager
async def groups_from_registry(
    groups: dict[str, list[str]],
    *,
    bus: BusSettings,
    keyring: Keyring,
    service: str = "kiosk",
    settings: RegistrySettings | None = None,
) -> AsyncIterator[None]:
    """``follow_groups`` on the configured registry while the block runs; the groups already in ``groups``
    (from configuration) are kept. A no-op unless ``MEDKIOSK_REGISTRY_FOLLOW_GROUPS`` is on."""
    settings = settings or RegistrySettings()
    if settings.backend == "none" or not settings.follow_groups:
        yield
        return
    registry = open_registry(settings, bus=bus, keyring=keyring)
    await registry.start()
    task = asyncio.create_task(follow_groups(registry, groups, service=service, static=dict(groups)))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await registry.stop()
