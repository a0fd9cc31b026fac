"""A KEDA external scaler over gRPC (KEDA's own ``externalscaler.proto``) serving the autoscaler's forecast.

A ``ScaledObject`` trigger of type ``external`` names a target in its metadata (``target: gateway``).
``GetMetricSpec`` declares one metric per target with target size 1, and ``GetMetrics`` returns the
replica count the policy wants, so KEDA's HPA (``desired = ceil(value / 1)``) applies the predictive
policy's decision, made ahead of demand. With ``metric: predicted_load`` the raw predicted load is served
against a target of the threshold instead, and the HPA does its own sizing. A status older than the
board's ``stale_after_s`` answers UNAVAILABLE so KEDA's ``fallback`` replicas take over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import grpc

from cloud_workers.autoscaler._board import ScalingBoard, TargetStatus
from cloud_workers.autoscaler.keda import externalscaler_pb2 as pb
from cloud_workers.autoscaler.keda import externalscaler_pb2_grpc as pb_grpc

__all__ = ["KedaScalerConfig", "KedaScalerServer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class KedaScalerConfig:
    host: str = "127.0.0.1"
    #: 0 picks a free port (read ``KedaScalerServer.port`` after ``start``).
    port: int = 0
    threshold: float = 0.8
    #: How often ``StreamIsActive`` re-sends the state even without a change (keep-alive).
    stream_every_s: float = 15.0


def _metric_name(target: str, kind: str) -> str:
    return f"medkiosk-{kind.replace('_', '-')}-{target.replace(':', '-').replace('*', 'all')}"


class _Servicer(pb_grpc.ExternalScalerServicer):
    def __init__(self, board: ScalingBoard, cfg: KedaScalerConfig) -> None:
        self._board = board
        self._cfg = cfg

    async def _status(self, ref: Any, context: Any) -> tuple[TargetStatus, str]:
        meta = dict(ref.scalerMetadata)
        target = meta.get("target", "")
        kind = meta.get("metric", "desired_replicas")
        if not target:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "scalerMetadata.target is required")
        if kind not in ("desired_replicas", "predicted_load"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown metric {kind!r}")
        if self._board.get(target) is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no forecast for target {target!r}")
        status = self._board.fresh(target)
        if status is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the forecast for {target!r} is stale")
        assert status is not None
        return status, kind

    def _active(self, status: TargetStatus) -> bool:
        return status.predicted_load > 0 or status.observed_load > 0

    async def IsActive(self, request: Any, context: Any) -> Any:
        status, _ = await self._status(request, context)
        return pb.IsActiveResponse(result=self._active(status))

    async def StreamIsActive(self, request: Any, context: Any) -> Any:
        status, _ = await self._status(request, context)
        version = self._board.version
        yield pb.IsActiveResponse(result=self._active(status))
        while True:
            version = await self._board.wait_changed(version, self._cfg.stream_every_s)
            status, _ = await self._status(request, context)
            yield pb.IsActiveResponse(result=self._active(status))

    async def GetMetricSpec(self, request: Any, context: Any) -> Any:
        status, kind = await self._status(request, context)
        size = 1.0 if kind == "desired_replicas" else self._cfg.threshold
        spec = pb.MetricSpec(metricName=_metric_name(status.target, kind), targetSize=1, targetSizeFloat=size)
        return pb.GetMetricSpecResponse(metricSpecs=[spec])

    async def GetMetrics(self, request: Any, context: Any) -> Any:
        status, kind = await self._status(request.scaledObjectRef, context)
        name = _metric_name(status.target, kind)
        if request.metricName and request.metricName != name:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown metric {request.metricName!r}")
        value = float(status.replicas) if kind == "desired_replicas" else status.predicted_load
        return pb.GetMetricsResponse(
            metricValues=[pb.MetricValue(metricName=name, metricValue=round(value), metricValueFloat=value)]
        )


class KedaScalerServer:
    """``grpc.aio`` server for the ``externalscaler.ExternalScaler`` service; ``start``/``stop``/``async with``."""

    def __init__(self, board: ScalingBoard, cfg: KedaScalerConfig | None = None) -> None:
        self._board = board
        self._cfg = cfg or KedaScalerConfig()
        self._server: Any = None
        self.port = 0

    async def start(self) -> None:
        server = grpc.aio.server()
        pb_grpc.add_ExternalScalerServicer_to_server(_Servicer(self._board, self._cfg), server)  # type: ignore[no-untyped-call]
        self.port = server.add_insecure_port(f"{self._cfg.host}:{self._cfg.port}")
        if not self.port:
            raise OSError(f"cannot listen on {self._cfg.host}:{self._cfg.port}")
        await server.start()
        self._server = server
        log.info("KEDA external scaler listening on %s:%d", self._cfg.host, self.port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace=1.0)

    async def __aenter__(self) -> KedaScalerServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
