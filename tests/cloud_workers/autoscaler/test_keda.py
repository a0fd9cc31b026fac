"""The KEDA external scaler over real gRPC: a client generated from KEDA's externalscaler.proto calls
the server the way KEDA does (IsActive, StreamIsActive, GetMetricSpec, GetMetrics)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from cloud_workers.autoscaler._board import ScalingBoard, TargetStatus
from cloud_workers.autoscaler._keda import KedaScalerConfig, KedaScalerServer
from cloud_workers.autoscaler.keda import externalscaler_pb2 as pb
from cloud_workers.autoscaler.keda import externalscaler_pb2_grpc as pb_grpc


def status(target: str, replicas: int, predicted: float, observed: float = 0.5, age_s: float = 0.0) -> TargetStatus:
    return TargetStatus(
        target=target,
        replicas=replicas,
        observed_load=observed,
        predicted_load=predicted,
        model_version="v1-test",
        updated_at=time.time() - age_s,
    )


@pytest.fixture
async def served() -> AsyncIterator[tuple[ScalingBoard, pb_grpc.ExternalScalerStub]]:
    board = ScalingBoard(stale_after_s=60)
    async with (
        KedaScalerServer(board, KedaScalerConfig(port=0, stream_every_s=0.5)) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        yield board, pb_grpc.ExternalScalerStub(channel)


def ref(target: str, **meta: str) -> pb.ScaledObjectRef:
    return pb.ScaledObjectRef(name="gateway", namespace="medkiosk", scalerMetadata={"target": target, **meta})


async def test_metric_spec_and_value_carry_the_policy_decision(served) -> None:  # type: ignore[no-untyped-def]
    board, stub = served
    await board.publish(status("gateway", replicas=7, predicted=1.1))
    spec = await stub.GetMetricSpec(ref("gateway"))
    assert len(spec.metricSpecs) == 1
    name = spec.metricSpecs[0].metricName
    assert name == "medkiosk-desired-replicas-gateway" and spec.metricSpecs[0].targetSizeFloat == 1.0
    metrics = await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref("gateway"), metricName=name))
    (value,) = metrics.metricValues
    # HPA (AverageValue, target 1): desired = ceil(7 / 1) = 7, the replicas the policy asked for.
    assert value.metricName == name and value.metricValueFloat == 7.0 and value.metricValue == 7
    assert (await stub.IsActive(ref("gateway"))).result is True


async def test_predicted_load_metric(served) -> None:  # type: ignore[no-untyped-def]
    board, stub = served
    await board.publish(status("gateway", replicas=3, predicted=0.95))
    spec = await stub.GetMetricSpec(ref("gateway", metric="predicted_load"))
    assert spec.metricSpecs[0].targetSizeFloat == pytest.approx(0.8)
    req = pb.GetMetricsRequest(scaledObjectRef=ref("gateway", metric="predicted_load"), metricName="")
    assert (await stub.GetMetrics(req)).metricValues[0].metricValueFloat == pytest.approx(0.95)


async def test_idle_target_is_inactive(served) -> None:  # type: ignore[no-untyped-def]
    board, stub = served
    await board.publish(status("nightly", replicas=1, predicted=0.0, observed=0.0))
    assert (await stub.IsActive(ref("nightly"))).result is False


async def test_stream_is_active_pushes_changes(served) -> None:  # type: ignore[no-untyped-def]
    board, stub = served
    await board.publish(status("gateway", replicas=1, predicted=0.0, observed=0.0))
    stream = stub.StreamIsActive(ref("gateway"))
    first = await asyncio.wait_for(stream.read(), 5)
    assert first.result is False
    await board.publish(status("gateway", replicas=4, predicted=0.9))

    async def until_active() -> None:
        while not (await stream.read()).result:  # keep-alives may repeat the old state first
            pass

    await asyncio.wait_for(until_active(), 5)
    stream.cancel()


async def test_errors_are_grpc_status_codes(served) -> None:  # type: ignore[no-untyped-def]
    board, stub = served
    await board.publish(status("old", replicas=5, predicted=0.9, age_s=600))
    cases = [
        (stub.IsActive(pb.ScaledObjectRef(name="x")), grpc.StatusCode.INVALID_ARGUMENT),
        (stub.IsActive(ref("nobody")), grpc.StatusCode.NOT_FOUND),
        (stub.GetMetricSpec(ref("gateway", metric="cpu")), grpc.StatusCode.INVALID_ARGUMENT),
        # A stale forecast must not pin replicas: KEDA's fallback takes over.
        (stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref("old"))), grpc.StatusCode.UNAVAILABLE),
    ]
    for call, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == code
    await board.publish(status("gateway", replicas=2, predicted=0.5))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref("gateway"), metricName="other"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # StreamMetricSpec is optional in KEDA and answered Unimplemented (KEDA then polls GetMetricSpec).
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.StreamMetricSpec(ref("gateway")).read()
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
