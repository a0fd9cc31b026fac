"""The Consul registry, through the maintained ``py-consul`` client, with the seed's contract: agent service
registration with a TTL check (the heartbeat) plus a TCP check run by the Consul agent itself, and
``health.service(passing=True)`` for healthy instances.

``py-consul`` is synchronous, so calls run in a worker thread. No Consul server installs from Debian or PyPI
here: the tests run against a real agent when a ``consul`` binary is on PATH and are skipped otherwise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from streams.discovery._base import RegistryBase, sort_instances
from streams.discovery._model import Check, Instance, check_meta, check_name

__all__ = ["ConsulRegistry"]


def _ttl_check_id(instance_id: str) -> str:
    return f"medkiosk-ttl:{instance_id}"


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"


class ConsulRegistry(RegistryBase):
    """Registry on the local Consul agent at ``host:port``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8500, *, token: str | None = None) -> None:
        super().__init__()
        import consul  # the ``discovery`` extra (py-consul)

        self._consul = consul.Consul(host=host, port=port, token=token)
        self._registered: dict[tuple[str, str], tuple[Any, ...]] = {}

    async def register(
        self,
        *,
        service: str,
        instance_id: str,
        address: str,
        port: int,
        meta: Mapping[str, str] | None = None,
        check: Check | None = None,
        passing: bool = True,
        output: str = "",
    ) -> None:
        """Register with the agent once (again if the definition changed); every call passes the TTL check."""
        check = check or Check()
        check_name("service", service)
        check_name("instance id", instance_id)
        clean = check_meta(meta or {})
        definition = (address, port, tuple(sorted(clean.items())), check)
        if self._registered.get((service, instance_id)) != definition:
            checks: list[dict[str, Any]] = [{"ttl": _duration(check.ttl_s), "CheckID": _ttl_check_id(instance_id)}]
            if check.tcp is not None:
                host, _, tcp_port = check.tcp.rpartition(":")
                checks.append(
                    {
                        "tcp": f"{host}:{int(tcp_port)}",
                        "interval": _duration(check.ttl_s / 3),
                        "timeout": _duration(check.timeout_s),
                        "CheckID": f"medkiosk-tcp:{instance_id}",
                    }
                )
            await asyncio.to_thread(
                self._consul.agent.service.register,
                service,
                service_id=instance_id,
                address=address,
                port=port,
                meta=clean,
                check=checks[0],
                extra_checks=checks[1:],
            )
            self._registered[(service, instance_id)] = definition
            self._changed()
        ttl = self._consul.agent.check.ttl_pass if passing else self._consul.agent.check.ttl_fail
        await asyncio.to_thread(ttl, _ttl_check_id(instance_id), output or None)

    async def deregister(self, service: str, instance_id: str) -> None:
        self._registered.pop((service, instance_id), None)
        await asyncio.to_thread(self._consul.agent.service.deregister, instance_id)
        self._changed()

    async def _service_names(self) -> list[str]:
        _, services = await asyncio.to_thread(self._consul.catalog.services)
        return sorted(services)

    async def instances(self, service: str | None = None) -> list[Instance]:
        """``health.service``: an instance is healthy when every check of it (TTL, TCP) passes."""
        names = [service] if service is not None else await self._service_names()
        out: list[Instance] = []
        for name in names:
            if name == "consul":
                continue
            _, entries = await asyncio.to_thread(self._consul.health.service, name)
            for entry in entries:
                svc = entry["Service"]
                # As health.service(passing=True): the node's checks count too (a dead agent, a dead host).
                statuses = [c["Status"] for c in entry.get("Checks", []) if c.get("ServiceID") in ("", svc["ID"])]
                ttl_ok = all(
                    c["Status"] == "passing"
                    for c in entry.get("Checks", [])
                    if c["CheckID"].startswith("medkiosk-ttl:")
                )
                out.append(
                    Instance(
                        service=svc["Service"],
                        instance_id=svc["ID"],
                        address=svc.get("Address") or entry["Node"].get("Address", ""),
                        port=int(svc.get("Port", 0)),
                        meta=dict(svc.get("Meta") or {}),
                        healthy=all(s == "passing" for s in statuses),
                        check_passing=ttl_ok,
                        last_seen=time.time() if ttl_ok else 0.0,
                    )
                )
        return sort_instances(out)

    async def healthy(self, service: str) -> list[Instance]:
        """Consul's own filter: ``health.service(service, passing=True)``."""
        _, entries = await asyncio.to_thread(self._consul.health.service, service, passing=True)
        ids = {e["Service"]["ID"] for e in entries}
        return [i for i in await self.instances(service) if i.instance_id in ids]
