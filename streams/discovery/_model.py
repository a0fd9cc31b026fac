"""The registry contract: what an instance is, how its health is judged, and the interface every backend has."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["Check", "Instance", "Registry", "check_meta", "check_name", "group_members"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAX_META = 32
_MAX_META_VALUE = 512


def check_name(kind: str, value: str) -> str:
    """Service names and instance ids become keys (etcd paths, Kafka keys): letters, digits, '.', '_', '-'."""
    if not _NAME.match(value):
        raise ValueError(f"invalid {kind} {value!r}: use letters, digits, '.', '_' or '-' (max 64)")
    return value


def check_meta(meta: Mapping[str, str]) -> dict[str, str]:
    """Metadata is a small str -> str map (bounded, so a heartbeat stays small)."""
    if len(meta) > _MAX_META:
        raise ValueError(f"at most {_MAX_META} metadata entries, got {len(meta)}")
    out: dict[str, str] = {}
    for key, value in meta.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"metadata must be str -> str, got {key!r}: {value!r}")
        check_name("metadata key", key)
        if len(value) > _MAX_META_VALUE:
            raise ValueError(f"metadata value of {key!r} is longer than {_MAX_META_VALUE} characters")
        out[key] = value
    return out


@dataclass(frozen=True, kw_only=True, slots=True)
class Check:
    """How an instance's health is judged: it must heartbeat within ``ttl_s`` and, when ``tcp`` is set
    (``host:port``), that endpoint must accept a TCP connection (as the seed's Consul TCP check)."""

    ttl_s: float = 10.0
    tcp: str | None = None
    timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if not 1.0 <= self.ttl_s <= 3600.0:
            raise ValueError(f"ttl_s must be within [1, 3600] seconds, got {self.ttl_s}")
        if self.tcp is not None:
            host, sep, port = self.tcp.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"tcp check must be host:port, got {self.tcp!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class Instance:
    """One registered instance as a reader sees it now."""

    service: str
    instance_id: str
    address: str
    port: int
    meta: Mapping[str, str] = field(default_factory=dict)
    #: Alive (within its TTL / lease) and its checks pass.
    healthy: bool
    #: The instance's own check (TCP) passed at its last heartbeat.
    check_passing: bool = True
    #: Unix seconds of the last heartbeat the reader knows of (0: the backend does not say).
    last_seen: float = 0.0
    ttl_s: float = 0.0

    @property
    def endpoint(self) -> str:
        """``address:port``."""
        return f"{self.address}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "instance_id": self.instance_id,
            "address": self.address,
            "port": self.port,
            "meta": dict(sorted(self.meta.items())),
            "healthy": self.healthy,
            "check_passing": self.check_passing,
            "last_seen": round(self.last_seen, 3),
            "ttl_s": self.ttl_s,
        }


@runtime_checkable
class Registry(Protocol):
    """Register, deregister, list and watch service instances; every backend has this shape.

    ``register`` is idempotent and doubles as the heartbeat: calling it again within the TTL keeps the
    instance alive (``Heartbeat`` does that on a timer). ``passing`` is the result of the instance's own
    check; an instance that registers with ``passing=False`` is listed but not healthy.
    """

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

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
    ) -> None: ...

    async def deregister(self, service: str, instance_id: str) -> None: ...

    async def instances(self, service: str | None = None) -> list[Instance]: ...

    async def healthy(self, service: str) -> list[Instance]: ...

    def watch(self, service: str | None = None) -> AsyncIterator[list[Instance]]: ...


def group_members(instances: list[Instance], *, key: str = "groups") -> dict[str, list[str]]:
    """``group -> sorted instance ids`` from each healthy instance's comma-separated ``meta[key]`` (kiosks
    announce their groups this way, so an autoscaler can take its ``group:<name>`` targets from the registry)."""
    groups: dict[str, set[str]] = {}
    for inst in instances:
        if not inst.healthy:
            continue
        for name in filter(None, (g.strip() for g in inst.meta.get(key, "").split(","))):
            groups.setdefault(name, set()).add(inst.instance_id)
    return {name: sorted(members) for name, members in sorted(groups.items())}
