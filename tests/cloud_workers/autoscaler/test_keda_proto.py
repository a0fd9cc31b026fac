"""``externalscaler.proto`` is KEDA's contract and its generated code is committed: regenerate and diff."""

from __future__ import annotations

import shutil
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[3]
PROTO = "cloud_workers/autoscaler/keda/externalscaler.proto"
GENERATED = ("externalscaler_pb2.py", "externalscaler_pb2.pyi", "externalscaler_pb2_grpc.py")


def test_generated_code_matches_the_proto(tmp_path: Path) -> None:
    (tmp_path / PROTO).parent.mkdir(parents=True)
    shutil.copy(ROOT / PROTO, tmp_path / PROTO)
    rc = protoc.main(
        [
            "protoc",
            f"-I{tmp_path}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            str(tmp_path / PROTO),
        ]
    )
    assert rc == 0
    for name in GENERATED:
        fresh = (tmp_path / PROTO).parent / name
        committed = ROOT / "cloud_workers/autoscaler/keda" / name
        assert fresh.read_text() == committed.read_text(), f"{name} is stale: regenerate (see the proto's header)"


def test_service_is_keda_s() -> None:
    from cloud_workers.autoscaler.keda import externalscaler_pb2 as pb

    service = pb.DESCRIPTOR.services_by_name["ExternalScaler"]
    assert pb.DESCRIPTOR.package == "externalscaler"
    methods = {m.name: (m.input_type.name, m.output_type.name, m.server_streaming) for m in service.methods}
    assert methods == {
        "IsActive": ("ScaledObjectRef", "IsActiveResponse", False),
        "StreamIsActive": ("ScaledObjectRef", "IsActiveResponse", True),
        "GetMetricSpec": ("ScaledObjectRef", "GetMetricSpecResponse", False),
        "GetMetrics": ("GetMetricsRequest", "GetMetricsResponse", False),
        "StreamMetricSpec": ("ScaledObjectRef", "GetMetricSpecResponse", True),
    }
    ref = pb.DESCRIPTOR.message_types_by_name["ScaledObjectRef"]
    assert [(f.name, f.number) for f in ref.fields] == [("name", 1), ("namespace", 2), ("scalerMetadata", 3)]
    spec = pb.DESCRIPTOR.message_types_by_name["MetricSpec"]
    assert [(f.name, f.number) for f in spec.fields] == [("metricName", 1), ("targetSize", 2), ("targetSizeFloat", 3)]
    value = pb.DESCRIPTOR.message_types_by_name["MetricValue"]
    assert [(f.name, f.number) for f in value.fields] == [
        ("metricName", 1),
        ("metricValue", 2),
        ("metricValueFloat", 3),
    ]
