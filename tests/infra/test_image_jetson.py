"""The edge images' Python environments: JetPack 6's own Python 3.10 (Jetson) and 3.11 (CPU), each with exactly
the edge extra.

Stands in for ``docker build -f infra/docker/edge.Dockerfile`` (no Docker engine, no Jetson here): a clean 3.10
venv gets what that Dockerfile COPYs and installs, then runs what supervisord runs there, ``medkiosk edge``, as a
real kiosk agent for a few seconds: emulated card reader on a pty, camera on synthetic face frames, the shipped
liveness and triage models on ONNX Runtime, the outbox to an embedded broker. TensorRT and PyCUDA (the gpu
extra) come from the Jetson base image and cannot be installed here; the engine itself is tested where a GPU is.
The same agent run is repeated in edge-cpu.Dockerfile's venv. The Jetson tests are skipped, with the reason,
when no Python 3.10 interpreter is on this machine.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medkiosk._up_edge import write_kiosk_config
from streams.broker import EmbeddedBroker, EmbeddedBrokerConfig, free_port
from tests.infra.test_images import DOCKER, Venv, _env, make_venv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _python310() -> str:
    found = shutil.which("python3.10")
    if found and subprocess.run([found, "-c", "pass"], capture_output=True, check=False).returncode == 0:
        return found
    for candidate in sorted(Path.home().glob(".pyenv/versions/3.10*/bin/python3.10"), reverse=True):
        return str(candidate)
    pytest.skip("no Python 3.10 interpreter here (JetPack 6's Python; pyenv install 3.10 to run this)")


@pytest.fixture(scope="module")
def jetson_venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    assert "ARG EXTRAS=edge,gpu" in (DOCKER / "edge.Dockerfile").read_text()
    return make_venv("edge.Dockerfile", "edge", tmp_path_factory.mktemp("image-jetson"), python=_python310())


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(EmbeddedBrokerConfig(state_dir=tmp_path_factory.mktemp("jetson-broker"))) as b:
        yield b


def test_jetson_venv_is_python_310(jetson_venv: Venv) -> None:
    proc = subprocess.run(
        [str(jetson_venv.root / "bin" / "python"), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout.strip() == "(3, 10)"
    for words in (["--help"], ["edge", "--help"], ["emulate", "rfid", "--help"], ["outbox", "drain", "--help"]):
        out = jetson_venv.run(*words)
        assert out.returncode == 0, f"medkiosk {' '.join(words)}:\n{out.stderr}"


def test_kiosk_agent_runs_on_python_310(jetson_venv: Venv, own_broker: EmbeddedBroker, tmp_path: Path) -> None:
    _run_kiosk_agent(jetson_venv, own_broker, tmp_path)


def test_kiosk_agent_runs_in_the_cpu_edge_image(
    tmp_path_factory: pytest.TempPathFactory, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The same agent run in edge-cpu.Dockerfile's venv (Python 3.11, exactly the edge extra)."""
    venv = make_venv("edge-cpu.Dockerfile", "edge", tmp_path_factory.mktemp("image-edge-cpu"))
    _run_kiosk_agent(venv, own_broker, tmp_path)


def _run_kiosk_agent(jetson_venv: Venv, own_broker: EmbeddedBroker, tmp_path: Path) -> None:
    """A real kiosk agent from ``jetson_venv`` on an emulated reader and camera publishes identity checks."""
    keys, state, dev = tmp_path / "keys", tmp_path / "state", tmp_path / "dev"
    dev.mkdir()
    init = jetson_venv.run("keys", "init", "--dir", str(keys), "--kiosk", "kiosk-j1=hosp-j", "--service", "ops-1")
    assert init.returncode == 0, init.stderr
    apply = jetson_venv.run("topics", "apply", "--bootstrap", own_broker.bootstrap, "--hospital", "hosp-j")
    assert apply.returncode == 0, apply.stderr
    # Camera frames are test input (a kiosk's camera makes them), generated with the test's own Python.
    frames = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_agent.vision.make_dataset",
            str(tmp_path / "camera"),
            "--clips",
            "2",
            "--seed",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=_env(),
    )
    assert frames.returncode == 0, frames.stderr
    camera = sorted((tmp_path / "camera" / "live").iterdir())[0]
    config = tmp_path / "kiosk.toml"
    write_kiosk_config(
        config, kiosk_id="kiosk-j1", hospital_id="hosp-j", rfid=dev / "rfid", camera=camera, triage_port=free_port()
    )
    stats = tmp_path / "agent.json"
    paths = ["--keys-dir", str(keys), "--state-dir", str(state), "--metrics-port", "0", "--stats-file", str(stats)]
    agent = subprocess.Popen(
        [
            jetson_venv.medkiosk,
            "edge",
            "--config",
            str(config),
            "--synthetic",
            "--bootstrap",
            own_broker.bootstrap,
            *paths,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
        cwd=jetson_venv.root,
    )
    reader: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 180
        current: dict[str, object] = {}
        while time.monotonic() < deadline and agent.poll() is None:
            if stats.exists():
                try:
                    current = json.loads(stats.read_text())
                except ValueError:
                    current = {}
                if reader is None and current.get("ready") and int(str(current.get("camera_frames", 0))) >= 8:
                    taps = ["--rate", "5", "--count", "5", "--wait-for-reader", "30"]
                    reader = subprocess.Popen(
                        [
                            jetson_venv.medkiosk,
                            "emulate",
                            "rfid",
                            "--link",
                            str(dev / "rfid"),
                            "--format",
                            "line",
                            *taps,
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        env=_env(),
                        cwd=jetson_venv.root,
                    )
                if int(str(current.get("identity_checks", 0))) >= 3 and current.get("outbox_depth") == 0:
                    break
            time.sleep(0.2)
        if agent.poll() is not None:
            pytest.fail(f"the agent exited early:\n{agent.communicate()[0][-4000:]}")
        assert int(str(current.get("identity_checks", 0))) >= 3, f"no identity checks on 3.10: {current}"
        assert current.get("outbox_depth") == 0, "the outbox did not reach the broker"
    finally:
        if reader is not None and reader.poll() is None:
            reader.kill()
            reader.wait()
        agent.send_signal(signal.SIGTERM)
        try:
            out, _ = agent.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            agent.kill()
            out, _ = agent.communicate()
    assert agent.returncode == 0, out[-4000:]
