"""The kiosk in the registry: it registers itself (id, hospital, groups, triage and metrics endpoints, model
versions) and heartbeats while it runs; its health check is a TCP connect to its triage endpoint."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from edge_agent.agent._config import KioskConfig
from streams import BusMetrics, BusSettings, Keyring
from streams.discovery import Check, Heartbeat, RegistrySettings, announce, metrics_endpoint

__all__ = ["kiosk_announcement", "kiosk_meta"]

SERVICE = "kiosk"


def kiosk_meta(config: KioskConfig, bus: BusSettings, models: Mapping[str, int]) -> dict[str, str]:
    """What a kiosk tells the registry about itself."""
    meta = {
        "role": "kiosk",
        "hospital": config.hospital_id,
        "groups": ",".join(config.commands.groups),
        "models": ",".join(f"{name}={version}" for name, version in sorted(models.items())),
    }
    if config.triage.enabled and config.triage.listen:
        meta["triage"] = config.triage.listen
    endpoint = metrics_endpoint(bus)
    if endpoint:
        meta["metrics"] = endpoint
    return meta


def kiosk_announcement(
    config: KioskConfig,
    bus: BusSettings,
    keyring: Keyring,
    metrics: BusMetrics,
    models: Mapping[str, int] | None = None,
) -> contextlib.AbstractAsyncContextManager[Heartbeat | None]:
    """Register while the block runs (``MEDKIOSK_REGISTRY_*`` pick the backend; ``none`` turns it off).
    ``models`` is read at every heartbeat, so a hot-swapped model shows up in the registry."""
    settings = RegistrySettings()
    live = models if models is not None else {}
    listen = config.triage.listen if config.triage.enabled else None
    if listen:
        host, _, port = listen.rpartition(":")
    else:
        host, port = bus.metrics_host, str(bus.metrics_port or 0)
    return announce(
        service=SERVICE,
        instance_id=config.kiosk_id,
        address=host,
        port=int(port),
        meta=kiosk_meta(config, bus, live),
        bus=bus,
        keyring=keyring,
        metrics=metrics,
        check=Check(ttl_s=settings.ttl_s, tcp=listen),
        settings=settings,
        refresh=lambda: kiosk_meta(config, bus, live),
    )
