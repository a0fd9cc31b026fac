"""``medkiosk trainer`` as its own process, killed with SIGKILL in the middle of training a request: after a
restart the request is trained again and exactly one version is published."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cloud_workers.trainer import SyntheticConfig, generate_synthetic
from schemas import TrainingRequest
from streams import DLQ, BusSettings, Keyring, TopicSpec, apply_topics, init_dev_keys
from tests.cloud_workers.trainer.test_service import _models, _send

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "medkiosk", *args], stdout=out, stderr=out, env=env)


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


async def test_killed_mid_training_then_restarted_publishes_once(
    broker: object, tmp_path: Path, tiny_bert: Path
) -> None:
    keys = tmp_path / "keys"
    init_dev_keys(keys, hospitals=["H1"], kiosks={}, services=["trainer", "ops-1"])
    keyring = Keyring.load(keys)
    bootstrap = broker.bootstrap  # type: ignore[attr-defined]
    state = tmp_path / "state"
    settings = BusSettings(bootstrap_servers=bootstrap, keys_dir=keys, state_dir=state, topic_partitions=1)
    suffix = uuid.uuid4().hex[:8]
    requests_topic, models_topic = f"training.requests.v1.{suffix}", f"fl.models.v1.{suffix}"
    await apply_topics(settings, [TopicSpec(name=requests_topic, key="model", content="t"),
                                  TopicSpec(name=models_topic, key="model", content="t"), DLQ])  # fmt: skip
    data = tmp_path / "data"
    generate_synthetic(data / "syn", SyntheticConfig(cases=6, size=(36, 36, 10), concordant=True))
    args = [
        "trainer", "--bootstrap", bootstrap, "--keys-dir", str(keys), "--state-dir", str(state),
        "--requesters", "ops-1", "--data-root", str(data), "--text-encoder", str(tiny_bert),
        "--requests-topic", requests_topic, "--models-topic", models_topic, "--roi", "32,32,8",
        "--feature-size", "12", "--depths", "1,1,1,1", "--window", "4,4,4", "--epochs", "2", "--batch-size", "4",
        "--max-tokens", "48", "--val-fraction", "0.4",
    ]  # fmt: skip
    log = tmp_path / "trainer.log"
    await _send(settings, keyring, "ops-1", requests_topic,
                [TrainingRequest(request_id="r1", model_name="mm-ct", manifest="syn/manifest.jsonl")])  # fmt: skip
    run_dir = state / "trainer" / "runs" / "r1"
    first = _start(args, log)
    try:
        deadline = time.monotonic() + 150
        while not (run_dir / "split.json").exists():  # the run has started: the manifest is validated, fitting
            assert first.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            await asyncio.sleep(0.2)
        _stop(first, signal.SIGKILL)
        assert first.returncode == -signal.SIGKILL
        assert not (state / "trainer" / "trainer_state.json").exists()  # nothing was recorded as done

        second = _start(args, log)
        try:
            got = await _models(settings, keyring, models_topic, 1, timeout_s=150)
            assert len(got) == 1, log.read_text()[-3000:]
            later = await _models(settings, keyring, models_topic, 2, timeout_s=5)  # nothing more arrives
        finally:
            _stop(second)
    finally:
        _stop(first, signal.SIGKILL)
    assert [(p, mv.version, mv.model_name) for p, mv in later] == [("trainer", 1, "mm-ct")]
    assert second.returncode == 0, log.read_text()[-3000:]
