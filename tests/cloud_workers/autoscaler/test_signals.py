"""Telemetry and lag samples into regular per-target series: buckets, late, duplicate, missing, hostile."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_workers.autoscaler._signals import Sample, SeriesBuilder, SeriesConfig, lag_sample, telemetry_samples
from schemas import Telemetry

CFG = SeriesConfig(step_s=10, max_lateness_s=5, max_fill_steps=2)


def s(source: str, at: float, rate: float, load: float, target: str = "group:ward") -> Sample:
    return Sample(target=target, source=source, at_s=at, rate=rate, load=load)


def test_a_group_reads_as_one_pool() -> None:
    b = SeriesBuilder(CFG)
    b.add(s("k1", 1000.5, rate=4.0, load=0.5), now_s=1001)  # capacity 8
    b.add(s("k2", 1003.0, rate=6.0, load=0.75), now_s=1003)  # capacity 8
    b.add(s("k2", 1007.0, rate=2.0, load=0.25), now_s=1007)  # same bucket: averaged per kiosk
    (p,) = b.close(now_s=1016)["group:ward"]
    assert p.bucket == 100 and p.sources == 2 and p.filled == 0
    assert p.rate == pytest.approx(4.0 + 4.0)
    assert p.load == pytest.approx(8.0 / 16.0)


def test_buckets_close_only_after_the_lateness_window_and_late_samples_are_dropped() -> None:
    b = SeriesBuilder(CFG)
    b.add(s("k1", 1001, 1.0, 0.1), now_s=1001)
    assert b.close(now_s=1012) == {}  # bucket [1000, 1010) still open until 1015
    b.add(s("k1", 1009, 3.0, 0.3), now_s=1013)  # late but within the window: counted
    (p,) = b.close(now_s=1015)["group:ward"]
    assert p.rate == pytest.approx(2.0)
    assert b.add(s("k1", 1002, 50.0, 0.9), now_s=1016) is False  # its bucket is closed
    assert b.late_dropped == 1
    assert b.points("group:ward")[0].rate == pytest.approx(2.0)  # history never rewritten


def test_missing_samples_are_carried_then_the_source_is_gone() -> None:
    b = SeriesBuilder(CFG)
    b.add(s("k1", 1001, 2.0, 0.2), now_s=1001)
    b.add(s("k2", 1001, 2.0, 0.2), now_s=1001)
    for t in (1011, 1021, 1031, 1041):
        b.add(s("k1", t, 2.0, 0.2), now_s=t)
    points = []
    for out in (b.close(now_s=1055),):
        points = out["group:ward"]
    assert [p.sources for p in points] == [2, 2, 2, 1, 1]
    assert [p.filled for p in points] == [0, 1, 1, 0, 0]
    assert [p.rate for p in points] == [4.0, 4.0, 4.0, 2.0, 2.0]


def test_a_silent_target_keeps_a_regular_series() -> None:
    b = SeriesBuilder(CFG)
    b.add(s("k1", 1001, 2.0, 0.2), now_s=1001)
    b.close(now_s=1016)
    out = b.close(now_s=1066)["group:ward"]
    assert [p.bucket for p in out] == [101, 102, 103, 104, 105]
    assert out[-1].sources == 0 and out[-1].rate == 0.0  # gone after max_fill_steps
    assert len(b.rates("group:ward")) == 6


def test_hostile_samples_are_refused() -> None:
    b = SeriesBuilder(CFG)
    assert b.add(s("k1", math.nan, 1.0, 0.1), now_s=1000) is False
    assert b.add(s("k1", 1000, math.inf, 0.1), now_s=1000) is False
    assert b.add(s("k1", 1e12, 1.0, 0.1), now_s=1000) is False  # far future: a broken clock
    assert b.refused == 3 and b.accepted == 0


def test_telemetry_to_samples() -> None:
    t = Telemetry(kiosk_id="k1", hospital_id="H1", at=1_000_000_000_000, request_rate=3.0, load=0.6)
    out = telemetry_samples(t, groups={"ward": ["k1", "k2"], "other": ["k9"]})
    assert [x.target for x in out] == ["k1", "group:ward"]
    assert out[0].at_s == 1000.0 and out[0].rate == 3.0 and out[0].load == 0.6
    assert telemetry_samples(Telemetry(kiosk_id="k1", request_rate=-1.0)) == []
    assert telemetry_samples(Telemetry(kiosk_id="", request_rate=1.0)) == []
    assert telemetry_samples(Telemetry(kiosk_id="k1", request_rate=math.nan)) == []


def test_a_kiosk_queue_reads_as_load_past_the_cap() -> None:
    # 10 req/s at load 1.0 (capped): capacity 10/s; 50 queued take 5 s more, 0.5 of a 10 s drain window.
    t = Telemetry(kiosk_id="k1", at=1_000_000_000_000, request_rate=10.0, load=1.0, queue_depth=50)
    (x,) = telemetry_samples(t)
    assert x.load == pytest.approx(1.5) and x.rate == 10.0
    idle = Telemetry(kiosk_id="k1", at=1_000_000_000_000, request_rate=0.0, load=0.0, queue_depth=5)
    assert telemetry_samples(idle)[0].load == 0.0


def test_lag_reads_as_load_until_worked_off() -> None:
    x = lag_sample("gateway", "medkiosk-gateway", at_s=1, input_rate=40, lag=600, replicas=2, capacity=50, drain_s=60)
    assert x.load == pytest.approx((40 + 10) / 100)
    assert x.source == "medkiosk-gateway" and x.target == "gateway"


finite = st.floats(min_value=0, max_value=1e4, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["k1", "k2", "k3"]), st.floats(0, 300), finite, st.floats(0, 2)),
        max_size=60,
    )
)
def test_series_stay_regular_finite_and_non_negative(samples: list[tuple[str, float, float, float]]) -> None:
    b = SeriesBuilder(CFG)
    for i, (src, at, rate, load) in enumerate(samples):
        b.add(s(src, 1000 + at, rate, load), now_s=1000 + i * 5)
    b.close(now_s=1400)
    pts = b.points("group:ward")
    assert [p.bucket for p in pts] == list(range(pts[0].bucket, pts[0].bucket + len(pts))) if pts else True
    assert all(math.isfinite(p.rate) and math.isfinite(p.load) and p.rate >= 0 and p.load >= 0 for p in pts)
