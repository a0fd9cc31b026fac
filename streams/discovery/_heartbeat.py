"""Keeping an instance registered: a heartbeat every third of its TTL, with its TCP check run before each."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from streams._tasks import supervise
from streams.discovery._model import Check, Registry

if TYPE_CHECKING:
    from typing import Self  # 3.11+; only in annotations, so the kiosk's Python 3.10 imports this too

__all__ = ["Heartbeat", "tcp_check"]

log = logging.getLogger(__name__)


async def tcp_check(target: str, timeout_s: float = 1.0) -> tuple[bool, str]:
    """Whether ``host:port`` accepts a TCP connection within ``timeout_s`` (and why not)."""
    host, _, port = target.rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout=timeout_s)
    except (OSError, TimeoutError) as exc:
        return False, f"tcp {target}: {type(exc).__name__}: {exc}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, f"tcp {target}: connected"


class Heartbeat:
    """Registers an instance and keeps it registered until stopped (then deregisters it).

    A registry that cannot be reached never takes the instance down: the beat is retried next period and
    counted in ``failures``. Stopping without ``deregister`` (or being killed) leaves readers to notice the
    silence within the TTL.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        service: str,
        instance_id: str,
        address: str,
        port: int,
        meta: Mapping[str, str] | None = None,
        check: Check | None = None,
        interval_s: float | None = None,
        refresh: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self._registry = registry
        self.service = service
        self.instance_id = instance_id
        self._address = address
        self._port = port
        self.meta = dict(meta or {})
        #: Called before every beat for metadata that changes (e.g. model versions after a hot swap).
        self._refresh = refresh
        self.check = check or Check()
        self.interval_s = interval_s if interval_s is not None else self.check.ttl_s / 3
        self._task: asyncio.Task[None] | None = None
        self._paused = False
        self.beats = 0
        self.failures = 0
        self.passing = True

    async def beat(self) -> bool:
        """Run the check and send one heartbeat now; False if the registry could not be reached."""
        output = ""
        if self._refresh is not None:
            self.meta.update(self._refresh())
        if self.check.tcp is not None:
            self.passing, output = await tcp_check(self.check.tcp, self.check.timeout_s)
        try:
            await self._registry.register(
                service=self.service,
                instance_id=self.instance_id,
                address=self._address,
                port=self._port,
                meta=self.meta,
                check=self.check,
                passing=self.passing,
                output=output,
            )
        except Exception as exc:
            self.failures += 1
            log.warning("registry heartbeat of %s/%s failed: %s", self.service, self.instance_id, exc)
            return False
        self.beats += 1
        return True

    async def _loop(self) -> None:
        while True:
            if not self._paused:
                await self.beat()
            await asyncio.sleep(self.interval_s)

    def pause(self, paused: bool = True) -> None:
        """Stop (or resume) sending heartbeats without deregistering: what a hung or partitioned process does."""
        self._paused = paused

    async def start(self) -> None:
        if self._task is None:
            self._task = supervise(asyncio.create_task(self._loop(), name=f"heartbeat-{self.instance_id}"))

    async def stop(self, *, deregister: bool = True) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if deregister and self.beats:  # never reached the registry: nothing to take back, no wait on the way out
            try:
                await asyncio.wait_for(self._registry.deregister(self.service, self.instance_id), timeout=3)
            except Exception as exc:
                log.warning("deregistering %s/%s failed: %s", self.service, self.instance_id, exc)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
