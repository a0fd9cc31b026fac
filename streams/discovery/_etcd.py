"""The etcd registry: one key per instance under a prefix, bound to a lease of the instance's TTL.

It talks to etcd's v3 HTTP/JSON gateway (``/v3/lease/grant``, ``/v3/lease/keepalive``, ``/v3/kv/put``,
``/v3/kv/range``, ``/v3/watch``) with httpx, so no gRPC client is needed (the ``etcd3`` package does not work
with protobuf 7). A heartbeat renews the lease and rewrites the value (the check result can change); a
silent instance's lease expires and etcd deletes its key, which a watch sees at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from streams._tasks import supervise
from streams.discovery._base import RegistryBase, sort_instances
from streams.discovery._model import Check, Instance, check_meta, check_name

__all__ = ["EtcdRegistry"]

log = logging.getLogger(__name__)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _prefix_end(prefix: str) -> str:
    raw = prefix.encode()
    return base64.b64encode(raw[:-1] + bytes([raw[-1] + 1])).decode()


def _first_json(text: str) -> dict[str, Any]:
    for line in text.splitlines():
        if line.strip():
            data: dict[str, Any] = json.loads(line)
            return data
    return {}


class EtcdRegistry(RegistryBase):
    """Registry on etcd (``url``: a client URL such as ``http://127.0.0.1:2379``)."""

    def __init__(self, url: str, *, prefix: str = "/medkiosk/registry/", timeout_s: float = 5.0) -> None:
        super().__init__()
        import httpx  # the ``discovery`` extra

        if not prefix.endswith("/"):
            raise ValueError("prefix must end with '/'")
        self.url = url.rstrip("/")
        self.prefix = prefix
        self._httpx = httpx
        self._client = httpx.AsyncClient(base_url=self.url, timeout=timeout_s)
        self._leases: dict[tuple[str, str], str] = {}
        self._watch_task: asyncio.Task[None] | None = None

    def _key(self, service: str, instance_id: str) -> str:
        return f"{self.prefix}{check_name('service', service)}/{check_name('instance id', instance_id)}"

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self._client.post(path, json=body)
        resp.raise_for_status()
        data = _first_json(resp.text)
        if "error" in data:
            raise RuntimeError(f"etcd {path}: {data['error']}")
        return data

    async def _lease(self, key: tuple[str, str], ttl_s: float) -> str:
        """The instance's live lease, renewed; a new one when it expired (the instance was silent too long)."""
        lease = self._leases.get(key)
        if lease is not None:
            alive = await self._call("/v3/lease/keepalive", {"ID": lease})
            if int(alive.get("result", {}).get("TTL", 0)) > 0:
                return lease
        granted = await self._call("/v3/lease/grant", {"TTL": max(2, math.ceil(ttl_s))})
        lease = str(granted["ID"])
        self._leases[key] = lease
        return lease

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
        """Renew (or grant) the instance's lease and write its current value."""
        check = check or Check()
        key = self._key(service, instance_id)
        value = {
            "service": service,
            "instance_id": instance_id,
            "address": address,
            "port": port,
            "meta": check_meta(meta or {}),
            "check_passing": passing,
            "check_output": output[:512],
            "at": time.time(),
            "ttl_s": check.ttl_s,
        }
        lease = await self._lease((service, instance_id), check.ttl_s)
        await self._call("/v3/kv/put", {"key": _b64(key), "value": _b64(json.dumps(value)), "lease": lease})

    async def deregister(self, service: str, instance_id: str) -> None:
        """Revoke the lease (etcd deletes the key with it) and delete the key in case it had none."""
        key = self._key(service, instance_id)
        lease = self._leases.pop((service, instance_id), None)
        if lease is not None:
            await self._call("/v3/lease/revoke", {"ID": lease})
        await self._call("/v3/kv/deleterange", {"key": _b64(key)})

    async def instances(self, service: str | None = None) -> list[Instance]:
        """A prefix read: every key present has a live lease; health is that plus the instance's own check."""
        prefix = self.prefix if service is None else f"{self.prefix}{check_name('service', service)}/"
        data = await self._call("/v3/kv/range", {"key": _b64(prefix), "range_end": _prefix_end(prefix)})
        out: list[Instance] = []
        for kv in data.get("kvs", []):
            try:
                value = json.loads(base64.b64decode(kv.get("value", "")))
                passing = bool(value.get("check_passing", True))
                out.append(
                    Instance(
                        service=str(value["service"]),
                        instance_id=str(value["instance_id"]),
                        address=str(value["address"]),
                        port=int(value["port"]),
                        meta=check_meta(value.get("meta", {})),
                        healthy=passing,
                        check_passing=passing,
                        last_seen=float(value.get("at", 0.0)),
                        ttl_s=float(value.get("ttl_s", 0.0)),
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("etcd: ignoring malformed registry value at %r: %s", kv.get("key"), exc)
        return sort_instances(out)

    async def start(self) -> None:
        """Follow the prefix with an etcd watch, so ``watch()`` wakes on every put and every expiry."""
        if self._watch_task is None:
            self._watch_task = supervise(asyncio.create_task(self._follow(), name="etcd-watch"))

    async def _follow(self) -> None:
        body = {"create_request": {"key": _b64(self.prefix), "range_end": _prefix_end(self.prefix)}}
        timeout = self._httpx.Timeout(5.0, read=None)
        while True:
            try:
                async with self._client.stream("POST", "/v3/watch", json=body, timeout=timeout) as resp:
                    async for line in resp.aiter_lines():
                        if line.strip() and json.loads(line).get("result", {}).get("events"):
                            self._changed()
            except (self._httpx.HTTPError, ValueError) as exc:
                log.warning("etcd watch interrupted (%s); re-watching", exc)
                self._changed()
                await asyncio.sleep(0.5)

    async def stop(self) -> None:
        task, self._watch_task = self._watch_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.aclose()
