"""Regression tests: "no score yet" is not 0.0, and the online camera->kiosk clock offset estimate."""

from __future__ import annotations

import random

import pytest

from edge_agent.fusion import (
    CardRead,
    ClockOffsetConfig,
    ClockOffsetEstimator,
    Fuser,
    FusionConfig,
    LivenessResult,
    Verdict,
    fuse_batch,
)

pytestmark = pytest.mark.timeout(60)

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


def face(at: int, score: float | None) -> LivenessResult:
    return LivenessResult(captured_at_ns=at, face_found=True, live_score=score)


def test_an_unscored_face_beside_a_live_one_is_verified_not_ambiguous() -> None:
    # The defect: the first frames of a track (history not yet full) went in as score 0.0, which with one live
    # frame tripped the "faces in window disagree" rule.
    card = CardRead("1234567890123", T0)
    results = [face(T0 - 40 * MS, None), face(T0 - 20 * MS, None), face(T0 + 10 * MS, 0.995)]
    [d] = fuse_batch([card], results)
    assert d.verdict is Verdict.VERIFIED, d.reason
    assert d.liveness == results[2]


def test_only_unscored_faces_are_not_live_and_say_why() -> None:
    [d] = fuse_batch([CardRead("1234567890123", T0)], [face(T0 - 10 * MS, None), face(T0 + 30 * MS, None)])
    assert d.verdict is Verdict.NOT_LIVE
    assert "none scored yet" in d.reason
    assert d.liveness is not None and d.liveness.live_score is None


def test_a_real_low_score_beside_a_live_one_is_still_ambiguous() -> None:
    # What the conflict rule is for (a photo held up beside a live face) must survive the fix.
    results = [face(T0 - 10 * MS, 0.1), face(T0 + 10 * MS, None), face(T0 + 30 * MS, 0.995)]
    [d] = fuse_batch([CardRead("1234567890123", T0)], results)
    assert d.verdict is Verdict.AMBIGUOUS


def test_the_incremental_fuser_treats_unscored_faces_like_the_batch() -> None:
    rng = random.Random(7)
    cards = [CardRead(f"{i:013d}", T0 + i * 700 * MS) for i in range(40)]
    results = [face(T0 + k * 66 * MS, rng.choice([None, None, 0.2, 0.99, 0.995])) for k in range(40 * 700 // 66 + 10)]
    fuser = Fuser()
    out = []
    for r in results:
        fuser.add_liveness(r)
    for c in cards:
        fuser.add_card(c)
        out += fuser.poll(c.read_at_ns)
    out += fuser.poll(T0 + 10**12)
    assert out == fuse_batch(cards, results)


def test_the_threshold_is_the_configured_one() -> None:
    results = [face(T0, 0.95)]
    card = [CardRead("1234567890123", T0)]
    assert fuse_batch(card, results)[0].verdict is Verdict.NOT_LIVE
    assert fuse_batch(card, results, FusionConfig(live_threshold=0.9))[0].verdict is Verdict.VERIFIED


def test_the_online_offset_is_found_through_jitter_and_outliers() -> None:
    rng = random.Random(11)
    offset = 30 * MS  # the camera clock is 30 ms behind the kiosk's
    est = ClockOffsetEstimator(ClockOffsetConfig(window=150, min_samples=15))
    assert est.estimate() is None
    for k in range(300):
        capture = T0 + k * 66_666_667
        delay = 2 * MS + rng.uniform(0, 10 * MS)  # hand-over delay: 2 ms minimum, 10 ms of jitter
        if rng.random() < 0.03:
            delay += 200 * MS  # a stalled frame
        est.add(capture - offset, int(capture + delay))
        if k == 13:
            assert est.estimate() is None  # fewer than min_samples
    estimate = est.estimate()
    assert estimate is not None
    assert 30 * MS <= estimate <= 34 * MS  # the offset plus the minimum delay, within the jitter's low tail
    assert est.samples == 150
    assert 5 * MS <= est.spread() <= 10 * MS


def test_the_online_offset_follows_a_clock_step() -> None:
    est = ClockOffsetEstimator(ClockOffsetConfig(window=60, min_samples=10))
    for k in range(60):
        est.add(T0 + k * 66 * MS, T0 + k * 66 * MS + 5 * MS)
    assert est.estimate() == 5 * MS
    for k in range(60, 120):  # NTP stepped the kiosk clock by +40 ms
        est.add(T0 + k * 66 * MS, T0 + k * 66 * MS + 45 * MS)
    assert est.estimate() == 45 * MS


def test_estimator_config_is_checked() -> None:
    with pytest.raises(ValueError):
        ClockOffsetConfig(window=10, min_samples=11)
    with pytest.raises(ValueError):
        ClockOffsetConfig(percentile=101.0)


def test_an_unconfigured_camera_offset_is_estimated_and_single_faces_verify() -> None:
    # The defect: the offset was static, so a camera 30 ms behind the kiosk (never configured) pushed the one
    # face frame of a tap out of the ±50 ms window for a large share of taps.
    rng = random.Random(30)
    period = 66_666_667

    def run(online: bool) -> float:
        fuser = Fuser()
        clock = ClockOffsetEstimator()
        verified = 0
        for i in range(300):
            tap = T0 + i * 3_000_000_000
            phase = rng.randrange(-period // 2, period // 2)  # 15 fps: the nearest frame is within ±33 ms
            for k in range(-15, 5):  # frames around the tap; the face is in the nearest one only
                capture = tap + phase + k * period
                stamp = capture - 30 * MS + int(rng.uniform(0, 10) * MS)
                clock.add(stamp, capture + 5 * MS + int(rng.uniform(0, 10) * MS))
                if online and clock.estimate() is not None:
                    fuser.set_clock_offset(clock.estimate() or 0)
                fuser.add_liveness(LivenessResult(captured_at_ns=stamp, face_found=k == 0, live_score=0.995))
            fuser.add_card(CardRead(f"{i:013d}", tap))
            verified += sum(d.verdict is Verdict.VERIFIED for d in fuser.flush())
        return verified / 300

    assert run(online=False) < 0.9
    assert run(online=True) == 1.0
