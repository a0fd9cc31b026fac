"""``/ready`` is connected-and-assigned, not "the process is up": the probe the Kubernetes manifests use."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from streams import export_role
from streams._health import Readiness, serve_health
from streams.broker import EmbeddedBroker, EmbeddedBrokerConfig, free_port


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_readiness_needs_every_check() -> None:
    r = Readiness()
    assert not r.ready, "no check registered yet: not ready"
    state = {"a": False}
    r.add("a", lambda: state["a"])
    assert not r.ready
    state["a"] = True
    assert r.ready

    def broken() -> bool:
        raise RuntimeError("boom")

    r.add("b", broken)
    assert r.status() == {"a": True, "b": False}
    assert not r.ready


def test_endpoints() -> None:
    registry = CollectorRegistry()
    Counter("medkiosk_probe_total", "a metric", registry=registry).inc()
    readiness = Readiness()
    assigned = {"now": False}
    readiness.add("kafka-assigned", lambda: assigned["now"])
    server = serve_health(registry, readiness, free_port())
    assert server is not None
    try:
        status, body = _get(server.port, "/ready")
        assert status == 503
        assert json.loads(body) == {"ready": False, "checks": {"kafka-assigned": False}}
        assigned["now"] = True
        status, body = _get(server.port, "/ready")
        assert (status, json.loads(body)["ready"]) == (200, True)
        status, body = _get(server.port, "/metrics")
        assert status == 200 and b"medkiosk_probe_total 1.0" in body
        assert _get(server.port, "/healthz")[0] == 200
    finally:
        server.close()
    assert serve_health(registry, readiness, 0) is None


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The gateway reads every kiosk topic: give it a broker no other test writes to."""
    with EmbeddedBroker(EmbeddedBrokerConfig(state_dir=tmp_path_factory.mktemp("ready-broker"))) as b:
        yield b


def _gateway(bootstrap: str, keys_dir: Path, state: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDKIOSK_")}
    gateway_keys = state.parent / "gateway-keys"
    export_role(keys_dir, gateway_keys, producer_id="gateway-1")  # the gateway refuses data keys
    paths = ["--keys-dir", str(gateway_keys), "--state-dir", str(state), "--metrics-port", str(port)]
    return subprocess.Popen(
        [sys.executable, "-m", "medkiosk", "gateway", "--gateway-id", "gateway-1", "--bootstrap", bootstrap, *paths],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def _wait_status(port: int, path: str, want: int, timeout_s: float, proc: subprocess.Popen[str]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if _get(port, path)[0] == want:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """A TCP port that accepts connections and never answers: Kafka not (yet) serving."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


@pytest.mark.slow
def test_gateway_is_not_ready_before_kafka_answers(silent_broker: str, keys_dir: Path, tmp_path: Path) -> None:
    """/metrics answers while Kafka does not; /ready does not (the old probe's blind spot)."""
    port = free_port()
    proc = _gateway(silent_broker, keys_dir, tmp_path / "state", port)
    try:
        assert _wait_status(port, "/metrics", 200, 60, proc), "the metrics endpoint never came up: " + _stop(proc)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            assert _get(port, "/ready")[0] == 503
            time.sleep(0.2)
    finally:
        _stop(proc)


@pytest.mark.slow
@pytest.mark.broker
def test_gateway_turns_ready_once_assigned(own_broker: EmbeddedBroker, keys_dir: Path, tmp_path: Path) -> None:
    apply = subprocess.run(
        [sys.executable, "-m", "medkiosk", "topics", "apply", "--bootstrap", own_broker.bootstrap, "--hospital", "H1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert apply.returncode == 0, apply.stderr
    port = free_port()
    proc = _gateway(own_broker.bootstrap, keys_dir, tmp_path / "state", port)
    try:
        assert _wait_status(port, "/ready", 200, 90, proc), "never ready although the broker is up"
        _, body = _get(port, "/ready")
        assert json.loads(body)["checks"] == {"kafka-assigned": True}
    finally:
        out = _stop(proc)
    assert proc.returncode == 0, out
