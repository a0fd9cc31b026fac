"""What every backend shares: ``healthy`` as a filter of ``instances``, ``watch`` as change detection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from streams.discovery._model import Check, Instance

if TYPE_CHECKING:
    from typing import Self  # 3.11+; only in annotations, so the kiosk's Python 3.10 imports this too

__all__ = ["RegistryBase", "sort_instances"]


def sort_instances(instances: list[Instance]) -> list[Instance]:
    return sorted(instances, key=lambda i: (i.service, i.instance_id))


def _fingerprint(instances: list[Instance]) -> list[tuple[object, ...]]:
    return [(i.service, i.instance_id, i.endpoint, tuple(sorted(i.meta.items())), i.healthy) for i in instances]


class RegistryBase:
    """Backends implement ``instances`` (and call ``_changed`` when they learn of a change); health that
    changes by the clock alone (a TTL running out) is caught by re-evaluating every ``watch_tick_s``."""

    watch_tick_s: float = 0.5

    def __init__(self) -> None:
        self._change = asyncio.Event()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _changed(self) -> None:
        self._change.set()

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
        raise NotImplementedError

    async def deregister(self, service: str, instance_id: str) -> None:
        raise NotImplementedError

    async def instances(self, service: str | None = None) -> list[Instance]:
        raise NotImplementedError

    async def healthy(self, service: str) -> list[Instance]:
        """The instances of ``service`` that are alive and pass their checks."""
        return [i for i in await self.instances(service) if i.healthy]

    async def watch(self, service: str | None = None) -> AsyncIterator[list[Instance]]:
        """The current instances (all, with health) first, then again every time that set or a health changes."""
        last: list[tuple[object, ...]] | None = None
        while True:
            self._change.clear()
            now = sort_instances(await self.instances(service))
            fingerprint = _fingerprint(now)
            if fingerprint != last:
                last = fingerprint
                yield now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._change.wait(), timeout=self.watch_tick_s)
