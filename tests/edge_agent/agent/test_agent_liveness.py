"""The agent's liveness wiring: the configured threshold, unscored faces, the online clock offset in telemetry.

The camera here is a scripted ``LivenessSource`` (the observations a camera 30 ms behind the kiosk clock
would produce); the agent, its fusion and its telemetry are the real ones. Nothing is sent to a broker.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge_agent.agent import EdgeAgent, FusionSettings, KioskConfig, LivenessObservation, LivenessSettings
from edge_agent.fusion import CardRead, Verdict
from schemas import IdentityVerdict
from streams import BusMetrics, BusSettings, Keyring

pytestmark = pytest.mark.timeout(60)

MS = 1_000_000
T0 = 1_700_000_000_000_000_000
OFFSET = 30 * MS


class ScriptedCamera:
    def __init__(self, observations: list[LivenessObservation]) -> None:
        self._obs = observations

    async def observations(self) -> AsyncIterator[LivenessObservation]:
        for obs in self._obs:
            yield obs

    def set_fps(self, fps: float) -> None:
        pass

    async def aclose(self) -> None:
        pass


def frames(n: int, score: float | None, seed: int = 3) -> list[LivenessObservation]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        capture = T0 + k * 66_666_667  # 15 fps, true time
        out.append(
            LivenessObservation(
                captured_at_ns=capture - OFFSET,  # the camera's clock
                face_found=True,
                live_score=score,
                face_box=(10, 10, 80, 80),
                model_version="test",
                received_at_ns=capture + 2 * MS + int(rng.uniform(0, 10 * MS)),
            )
        )
    return out


def make_agent(tmp_path: Path, keyring: Keyring, keys_dir: Path, camera: ScriptedCamera, **fusion: object) -> EdgeAgent:
    config = KioskConfig(
        kiosk_id="k1",
        hospital_id="H1",
        liveness=LivenessSettings(threshold=0.9),
        fusion=FusionSettings(**fusion),  # type: ignore[arg-type]
    )
    settings = BusSettings(bootstrap_servers="127.0.0.1:9", keys_dir=keys_dir, state_dir=tmp_path / "state")
    return EdgeAgent(config, settings, keyring, BusMetrics("k1"), liveness=camera)


async def test_threshold_offset_and_telemetry(tmp_path: Path, keyring: Keyring, keys_dir: Path) -> None:
    agent = make_agent(tmp_path, keyring, keys_dir, ScriptedCamera(frames(60, 0.95)))
    assert agent.fuser.config.live_threshold == 0.9  # was always 0.98, whatever [liveness] said
    await agent._camera_loop()
    tel = agent.telemetry(0)
    assert tel.clock_offset_estimated
    assert tel.clock_offset_samples == 60
    assert OFFSET + 2 * MS <= tel.clock_offset_ns <= OFFSET + 6 * MS
    assert 0 < tel.clock_offset_spread_ns <= 10 * MS
    # A tap at true time t, read on the kiosk clock: the face frames, 30 ms off on the camera clock, align.
    agent.fuser.add_card(CardRead("1234567890123", T0 + 40 * 66_666_667))
    [d] = agent.fuser.flush()
    assert d.verdict is Verdict.VERIFIED, d.reason  # 0.95 > the configured 0.9
    assert d.skew_ns is not None and abs(d.skew_ns) <= 10 * MS


async def test_a_fixed_offset_when_estimation_is_off(tmp_path: Path, keyring: Keyring, keys_dir: Path) -> None:
    agent = make_agent(
        tmp_path, keyring, keys_dir, ScriptedCamera(frames(30, 0.99)), estimate_clock_offset=False, clock_offset_ms=7
    )
    await agent._camera_loop()
    tel = agent.telemetry(0)
    assert (tel.clock_offset_estimated, tel.clock_offset_ns, tel.clock_offset_samples) == (False, 7 * MS, 30)


async def test_an_unscored_face_is_published_as_unscored(tmp_path: Path, keyring: Keyring, keys_dir: Path) -> None:
    agent = make_agent(tmp_path, keyring, keys_dir, ScriptedCamera(frames(20, None)))
    await agent._camera_loop()
    agent.fuser.add_card(CardRead("1234567890123", T0 + 10 * 66_666_667))
    [d] = agent.fuser.flush()
    msg = agent._identity_check(d)
    assert msg.verdict == IdentityVerdict.IDENTITY_VERDICT_NOT_LIVE
    assert msg.liveness.face_found and msg.liveness.unscored and msg.liveness.live_score == 0.0
