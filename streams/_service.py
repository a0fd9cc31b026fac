"""Boilerplate shared by every service command: settings, keys, metrics endpoint, periodic stats."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streams._health import Readiness, serve_health
from streams._keys import Keyring
from streams._metrics import BusMetrics
from streams._runtime import StatsFile
from streams._service_args import add_service_arguments
from streams._settings import BusSettings

__all__ = ["ServiceContext", "add_service_arguments", "periodic_stats", "service_context"]


@dataclass
class ServiceContext:
    settings: BusSettings
    keyring: Keyring
    metrics: BusMetrics
    stats: StatsFile
    #: What ``/ready`` reports (next to ``/metrics``); each command adds its checks.
    readiness: Readiness = field(default_factory=Readiness)


def _discovered_bootstrap() -> str | None:
    """The brokers from the registry when ``MEDKIOSK_REGISTRY_BOOTSTRAP_SERVICE`` says to look there."""
    from streams.discovery import RegistrySettings, bootstrap_from_registry

    return bootstrap_from_registry(RegistrySettings())


def service_context(args: argparse.Namespace, service: str, defaults: dict[str, Any] | None = None) -> ServiceContext:
    """Settings from (lowest first) the environment, ``defaults`` (e.g. a config file's [bus]), and flags."""
    update: dict[str, Any] = {**(defaults or {}), "client_id": f"medkiosk-{service}"}
    if getattr(args, "bootstrap", None):
        update["bootstrap_servers"] = args.bootstrap
    elif discovered := _discovered_bootstrap():
        update["bootstrap_servers"] = discovered
    if getattr(args, "keys_dir", None):
        update["keys_dir"] = args.keys_dir
    if getattr(args, "state_dir", None):
        update["state_dir"] = args.state_dir
    if getattr(args, "metrics_port", None) is not None:
        update["metrics_port"] = args.metrics_port
    settings = BusSettings(**update)
    if not (settings.keys_dir / "registry.json").exists():
        raise SystemExit(f"no keys at {settings.keys_dir}: run `medkiosk keys init` (or set MEDKIOSK_KEYS_DIR)")
    metrics = BusMetrics(service)
    readiness = Readiness()
    serve_health(metrics.registry, readiness, settings.metrics_port, settings.metrics_host)
    return ServiceContext(
        settings, Keyring.load(settings.keys_dir), metrics, StatsFile(getattr(args, "stats_file", None)), readiness
    )


@contextlib.asynccontextmanager
async def periodic_stats(stats: StatsFile, source: Callable[[], dict[str, Any]], every_s: float = 0.5) -> Any:
    """Rewrite the stats file every ``every_s`` seconds while the block runs, and once at the end."""

    async def loop() -> None:
        while True:
            stats.write(source())
            await asyncio.sleep(every_s)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
