"""Each image's Python environment, built clean, runs every command that image, compose and the manifests start.

There is no Docker engine here, so these tests stand in for ``docker build`` (and for the first seconds of
``docker compose up`` / ``kubectl apply``): for each image they copy exactly what its Dockerfile COPYs into a
fresh folder, create a new venv holding only that image's extras (``uv``, with the shared uv cache so a warm run
takes seconds), and run the image's own build check (``medkiosk --help``), the ``--help`` of every medkiosk
command found in compose.yaml and infra/k8s, and, for the cloud image, a short real run of the cloud roles
(keys, topics, a simulated kiosk, the gateway, a hospital subscriber writing to its volume, an audit replay)
against an embedded broker of its own. That run also checks that no decrypted field reaches any log.

What they cannot show: the base images themselves (python:3.11-slim, l4t-jetpack), apt packages, the CPU-only
torch index (the venv takes torch from PyPI as ``scripts/setup.sh`` does) and TensorRT (Jetson only).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.broker import EmbeddedBroker, EmbeddedBrokerConfig

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "infra" / "docker"
K8S = ROOT / "infra" / "k8s"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@dataclass(frozen=True, kw_only=True)
class Image:
    dockerfile: str
    #: The extras its Dockerfile installs (asserted against the Dockerfile's text).
    extras: str
    #: Installed first, as the Dockerfile does (torch before the cloud extra).
    first: tuple[str, ...] = ()
    python: str = sys.executable


IMAGES = {
    "cloud": Image(dockerfile="cloud.Dockerfile", extras="cloud,autoscaler", first=("torch==2.13.0",)),
    "edge-cpu": Image(dockerfile="edge-cpu.Dockerfile", extras="edge"),
}


def _uv() -> str:
    found = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("uv is missing: it comes with the dev extra (pip install -e '.[dev]')")
        pytest.skip("uv is not installed (dev extra)")
    return found


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDKIOSK_", "VIRTUAL_ENV", "PYTHON"))}
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", **extra}


def _copied_sources(dockerfile: Path) -> list[str]:
    """The build-context paths the Dockerfile COPYs (not ``--from`` stages), globs expanded."""
    out: list[str] = []
    for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not parts[1].startswith("--"):
            for source in parts[1:-1]:
                out.extend(str(p.relative_to(ROOT)) for p in sorted(ROOT.glob(source.rstrip("/"))))
    return out


def _build_context(dockerfile: Path, dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "*.pem", "*.key")
    for rel in _copied_sources(dockerfile):
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, dest / rel, ignore=ignore)
        else:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


@dataclass
class Venv:
    root: Path
    seconds: float

    @property
    def medkiosk(self) -> str:
        return str(self.root / "bin" / "medkiosk")

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        # cwd: the venv, never the checkout, so nothing is imported from the source tree by accident.
        return subprocess.run(
            [self.medkiosk, *args], capture_output=True, text=True, timeout=timeout, check=False, env=_env(),
            cwd=self.root,
        )  # fmt: skip


def make_venv(
    dockerfile: str, extras: str, tmp: Path, *, python: str = sys.executable, first: tuple[str, ...] = ()
) -> Venv:
    """A clean venv (``python``) with ``first`` and then the project's ``extras`` installed from a copy of what
    ``dockerfile`` COPYs, as its ``pip install`` does; prints how long that took."""
    text = (DOCKER / dockerfile).read_text()
    assert f".[{extras}]" in text or f"EXTRAS={extras}" in text or "EXTRAS=edge,gpu" in text
    uv = _uv()
    context = tmp / "context"
    _build_context(DOCKER / dockerfile, context)
    started = time.monotonic()
    venv = tmp / "venv"
    env = _env(UV_LINK_MODE=os.environ.get("UV_LINK_MODE", "hardlink"))
    subprocess.run([uv, "venv", "-q", "--python", python, str(venv)], check=True, env=env, timeout=120)
    py = str(venv / "bin" / "python")
    if first:
        subprocess.run([uv, "pip", "install", "-q", "--python", py, *first], check=True, env=env, timeout=600)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", py, f"{context}[{extras}]"], check=True, env=env, timeout=600
    )
    seconds = time.monotonic() - started
    print(f"{dockerfile}: venv with [{extras}] in {seconds:.1f} s", file=sys.stderr)
    return Venv(venv, seconds)


def _make_venv(name: str, tmp: Path) -> Venv:
    image = IMAGES[name]
    return make_venv(image.dockerfile, image.extras, tmp, python=image.python, first=image.first)


@pytest.fixture(scope="module")
def cloud_venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return _make_venv("cloud", tmp_path_factory.mktemp("image-cloud"))


@pytest.fixture(scope="module")
def edge_venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return _make_venv("edge-cpu", tmp_path_factory.mktemp("image-edge"))


# ------------------------------------------------------------------------------ what compose and k8s start


def _compose_commands(dockerfile: str, *, profiled: bool = False) -> list[list[str]]:
    """medkiosk argv of every compose service built from ``dockerfile`` (the keys script's calls included);
    with ``profiled``, those of the opt-in services (``profiles:``) instead."""
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    out: list[list[str]] = []
    for svc in services.values():
        if svc.get("build", {}).get("dockerfile") != f"infra/docker/{dockerfile}":
            continue
        if bool(svc.get("profiles")) != profiled:
            continue
        command = svc.get("command", [])
        # A script (`sh -euc`) is read for its medkiosk calls; the `sasl` entrypoint execs medkiosk with command.
        if svc.get("entrypoint", [])[-1:] == ["-euc"]:
            for line in "\n".join(command).replace("\\\n", " ").splitlines():
                words = shlex.split(line.replace("$$", "$"), comments=True)
                if words[:1] == ["medkiosk"]:
                    out.append(words[1:])
        else:
            out.append(list(command))
    return out


def _k8s_commands() -> list[list[str]]:
    """medkiosk argv of every container, init container, Job and preStop hook in infra/k8s."""
    out: list[list[str]] = []

    def containers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
        spec = doc.get("spec", {})
        template = spec.get("jobTemplate", {}).get("spec", spec).get("template", {}).get("spec", {})
        yield from template.get("initContainers", [])
        yield from template.get("containers", [])

    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            for c in containers(doc or {}):
                if not c.get("image", "").startswith("medkiosk-cloud"):
                    continue
                argv = [*c.get("command", []), *c.get("args", [])]
                if argv[:1] == ["medkiosk"]:
                    argv = argv[1:]
                if argv and not argv[0].startswith(("/", "sh", "tar")):
                    out.append(argv)
                hook = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
                if hook[:1] == ["medkiosk"]:
                    out.append(hook[1:])
    return out


def _leading_command(argv: list[str]) -> list[str]:
    """The subcommand words of ``argv`` (up to the first option)."""
    words: list[str] = []
    for word in argv:
        if word.startswith("-"):
            break
        words.append(word)
    return words


def test_compose_and_k8s_start_cloud_commands() -> None:
    """The lists the help test walks are not empty (a parsing slip here would make it pass vacuously)."""
    compose = {" ".join(_leading_command(a)) for a in _compose_commands("cloud.Dockerfile")}
    assert {"gateway", "subscribe", "kiosk simulate", "topics apply", "keys init", "keys export"} <= compose
    assert {"acls users", "acls export", "acls apply"} <= compose
    k8s = {" ".join(_leading_command(a)) for a in _k8s_commands()}
    assert {"gateway", "subscribe", "topics apply", "acls apply", "acls wait"} <= k8s


def test_cloud_image_help(cloud_venv: Venv) -> None:
    proc = cloud_venv.run("--help")
    assert proc.returncode == 0, proc.stderr
    commands = {tuple(_leading_command(a)) for a in [*_compose_commands("cloud.Dockerfile"), *_k8s_commands()]}
    commands |= {("fl", "coordinator"), ("fl", "aggregator"), ("fl", "keyholder"), ("audit", "replay")}
    for words in sorted(commands):
        proc = cloud_venv.run(*words, "--help")
        assert proc.returncode == 0, f"medkiosk {' '.join(words)} --help:\n{proc.stderr}"
        assert proc.stdout.startswith("usage:"), words


def test_cloud_image_help_opt_in_services(cloud_venv: Venv) -> None:
    """`docker compose --profile autoscaler up` starts `medkiosk autoscaler`, which lands with the autoscaler."""
    missing = []
    for words in sorted({tuple(_leading_command(a)) for a in _compose_commands("cloud.Dockerfile", profiled=True)}):
        proc = cloud_venv.run(*words, "--help")
        if proc.returncode != 0:
            missing.append(" ".join(words))
    if missing == ["autoscaler"]:
        pytest.xfail("`medkiosk autoscaler` is not there yet (the autoscaling issue adds it)")
    assert not missing, f"opt-in compose services start commands that do not exist: {missing}"


def test_edge_image_help(edge_venv: Venv) -> None:
    proc = edge_venv.run("--help")
    assert proc.returncode == 0, proc.stderr
    # What supervisord starts in the edge images, and the emulators a bench kiosk uses.
    for words in (["edge"], ["emulate", "rfid"], ["emulate", "patients"], ["kiosk", "simulate"]):
        proc = edge_venv.run(*words, "--help")
        assert proc.returncode == 0, f"medkiosk {' '.join(words)} --help:\n{proc.stderr}"
    # The edge images hold no cloud extra: the cloud roles must refuse clearly, not with a traceback in help.
    probe = subprocess.run(
        [str(edge_venv.root / "bin" / "python"), "-c", "import phe"], capture_output=True, timeout=60, check=False
    )
    assert probe.returncode != 0, "the edge venv must not have the cloud extra"


# ------------------------------------------------------------------------------------- a short real start


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A broker of this module's own: the gateway here reads every kiosk topic from the start."""
    with EmbeddedBroker(EmbeddedBrokerConfig(state_dir=tmp_path_factory.mktemp("image-broker"))) as b:
        yield b


def _leaves(obj: Any) -> Iterator[str]:
    if isinstance(obj, dict):
        for value in obj.values():
            yield from _leaves(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _leaves(value)
    elif not isinstance(obj, bool):
        yield str(obj)


def test_cloud_roles_start_and_keep_patient_data_out_of_logs(
    cloud_venv: Venv, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    master, state = tmp_path / "keys", tmp_path / "state"
    boot = ["--bootstrap", own_broker.bootstrap, "--state-dir", str(state), "--metrics-port", "0"]
    logs: dict[str, str] = {}

    def run(name: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = cloud_venv.run(*argv, timeout=timeout)
        logs[name] = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{name}: {proc.stdout}\n{proc.stderr}"
        return proc

    # As compose's `keys` service does: one master set, each role gets only its share.
    run("keys", "keys", "init", "--dir", str(master), "--hospital", "hosp-a", "--kiosk", "kiosk-a1=hosp-a",
        "--service", "gateway-1")  # fmt: skip
    role_keys = {
        "gateway": ["--producer", "gateway-1"],
        "hosp-a": ["--hospital", "hosp-a"],
        "kiosk-a1": ["--producer", "kiosk-a1", "--hospital", "hosp-a"],
    }
    for role, share in role_keys.items():
        run(f"export-{role}", "keys", "export", "--dir", str(master), "--out", str(tmp_path / role), *share)
    run("topics", "topics", "apply", "--bootstrap", own_broker.bootstrap, "--hospital", "hosp-a")
    kiosk = ["kiosk", "simulate", "--kiosk-id", "kiosk-a1", "--hospital", "hosp-a", "--rate", "20", "--duration", "2"]
    run("kiosk", *kiosk, "--keys-dir", str(tmp_path / "kiosk-a1"), *boot)
    events = tmp_path / "events" / "hosp-a.jsonl"
    events.parent.mkdir()

    def start(*argv: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [cloud_venv.medkiosk, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(MEDKIOSK_LOG_LEVEL="INFO"),
            cwd=cloud_venv.root,
        )

    def stop(name: str, proc: subprocess.Popen[str]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        logs[name] = out

    gateway = start("gateway", "--gateway-id", "gateway-1", "--keys-dir", str(tmp_path / "gateway"), *boot)
    subscriber = start(
        *("subscribe", "--hospital", "hosp-a", "--output", str(events), "--max-events", "20"),
        *("--keys-dir", str(tmp_path / "hosp-a"), *boot),
    )
    try:
        deadline = time.monotonic() + 150
        while subscriber.poll() is None and time.monotonic() < deadline:
            assert gateway.poll() is None, "the gateway exited"
            time.sleep(0.2)
    finally:
        stop("subscriber", subscriber)
        stop("gateway", gateway)
    assert subscriber.returncode == 0, logs["subscriber"]
    assert gateway.returncode == 0, logs["gateway"]
    run("audit", "audit", "replay", "--topic", "audit.v1", "--keys-dir", str(tmp_path / "gateway"), *boot)
    assert json.loads(logs["audit"].strip().splitlines()[-1])["bad"] == 0
    # The autoscaler pod's init container (infra/k8s/autoscaler.yaml), one epoch instead of twenty.
    run("autoscaler-train", "autoscaler", "train", "--out", str(tmp_path / "models"), "--epochs", "1", "--threads", "1")
    assert list((tmp_path / "models").glob("forecaster-v*.pt"))

    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert len(lines) >= 20
    private = _private_values(lines)
    assert private, "the decrypted events carry values to look for"
    leaked = _leaks(private, logs)
    assert not leaked, f"logs carry decrypted values: {leaked}"


def _private_values(lines: list[dict[str, Any]]) -> set[str]:
    """Every decrypted leaf value worth looking for (not the ids a log may name)."""
    values = {v for line in lines for v in _leaves(line["event"]) if len(v) >= 4}
    return values - {"kiosk-a1", "hosp-a", "true", "True"}


def _leaks(private: set[str], logs: dict[str, str]) -> dict[str, list[str]]:
    out = {name: sorted(v for v in private if v in text)[:5] for name, text in logs.items()}
    return {name: found for name, found in out.items() if found}


def test_leak_check_finds_an_event_in_a_log() -> None:
    """The check above is not vacuous: one event echoed into a log is found."""
    event = {"event": {"card": {"card_number": "4929120349981", "kiosk_id": "kiosk-a1"}, "verdict": "NOT_LIVE"}}
    private = _private_values([event])
    assert "4929120349981" in private and "kiosk-a1" not in private
    clean = {"subscriber": "subscriber-hosp-a: delivered 20 events (kiosk-a1 seq 1..20)"}
    assert _leaks(private, clean) == {}
    assert _leaks(private, {"subscriber": f"handled {json.dumps(event)}"}) == {
        "subscriber": ["4929120349981", "NOT_LIVE"]
    }
