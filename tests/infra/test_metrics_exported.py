"""Every metric an alert rule, a dashboard panel or a KEDA trigger reads is exported by a process compose runs.

The test starts compose's own process list (each medkiosk service compose starts by default, with its command
from compose.yaml and its own role's keys) against an embedded broker, scrapes every ``/metrics`` once traffic
has flowed, and compares the names with those infra/prometheus/rules.yml, the Grafana dashboard and
infra/k8s/keda.yaml use. A name only some other deployment exports (e.g. the real kiosk agent's) fails it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.broker import EmbeddedBroker, EmbeddedBrokerConfig, free_port

ROOT = Path(__file__).resolve().parents[2]
_METRIC = re.compile(r"\bmedkiosk_[a-z0-9_]+")

pytestmark = [pytest.mark.slow, pytest.mark.broker, pytest.mark.timeout(300)]


def _used() -> dict[str, set[str]]:
    """metric name -> where it is read."""
    out: dict[str, set[str]] = {}

    def add(expr: str, where: str) -> None:
        for name in _METRIC.findall(expr):
            out.setdefault(name, set()).add(where)

    rules = yaml.safe_load((ROOT / "infra" / "prometheus" / "rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            add(rule["expr"], f"rule {rule.get('alert') or rule.get('record')}")
    dashboard = json.loads((ROOT / "infra" / "grafana" / "dashboards" / "medkiosk.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            add(target["expr"], f"panel {panel['title']}")
    for doc in yaml.safe_load_all((ROOT / "infra" / "k8s" / "keda.yaml").read_text()):
        for trigger in (doc or {}).get("spec", {}).get("triggers", []):
            if trigger["type"] == "prometheus":
                add(trigger["metadata"]["query"], f"keda {trigger.get('name')}")
    return out


def _compose_processes() -> dict[str, list[str]]:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    return {
        name: list(svc["command"])
        for name, svc in services.items()
        if svc.get("build", {}).get("dockerfile") == "infra/docker/cloud.Dockerfile"
        and not svc.get("profiles")
        and svc.get("restart") != "no"
    }


def _exported(text: str) -> set[str]:
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()[:4]
            names.add(name)
            if kind == "counter":
                names.add(name if name.endswith("_total") else f"{name}_total")
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(EmbeddedBrokerConfig(state_dir=tmp_path_factory.mktemp("metrics-broker"))) as b:
        yield b


def _medkiosk(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medkiosk", *argv], capture_output=True, text=True, timeout=120, check=False, env=_env()
    )


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MEDKIOSK_")}


def _role_keys(master: Path, out: Path, command: list[str]) -> list[str]:
    """The share of keys compose's `keys` service gives the service running ``command``."""
    if command[0] == "gateway":
        return ["--producer", "gateway-1"]
    if command[0] == "subscribe":
        return ["--hospital", command[command.index("--hospital") + 1]]
    if command[0] == "discover":
        return []  # keys-public: registry and public keys only
    if command[:2] == ["kiosk", "simulate"]:
        return ["--producer", command[command.index("--kiosk-id") + 1], "--hospital", command[-1]]
    raise AssertionError(f"no key share known for {command}")


def test_every_metric_read_is_exported_by_compose_processes(own_broker: EmbeddedBroker, tmp_path: Path) -> None:
    processes = _compose_processes()
    assert {"gateway", "kiosk-a1", "subscriber-hospital-a"} <= set(processes)
    hospitals = sorted({c[c.index("--hospital") + 1] for c in processes.values() if "--hospital" in c})
    kiosks = [f"{c[c.index('--kiosk-id') + 1]}={c[-1]}" for c in processes.values() if "--kiosk-id" in c]
    master = tmp_path / "master"
    each_hospital = [a for h in hospitals for a in ("--hospital", h)]
    each_kiosk = [a for k in kiosks for a in ("--kiosk", k)]
    init = _medkiosk("keys", "init", "--dir", str(master), "--service", "gateway-1", *each_kiosk, *each_hospital)
    assert init.returncode == 0, init.stderr
    assert _medkiosk("topics", "apply", "--bootstrap", own_broker.bootstrap, *each_hospital).returncode == 0

    (tmp_path / "events").mkdir()
    ports: dict[str, int] = {}
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, command in processes.items():
            keys = tmp_path / "keys" / name
            export = _medkiosk("keys", "export", "--dir", str(master), "--out", str(keys),
                               *_role_keys(master, keys, command))  # fmt: skip
            assert export.returncode == 0, export.stderr
            argv = [a.replace("/events/", f"{tmp_path}/events/") for a in command]
            ports[name] = free_port()
            where = ["--keys-dir", str(keys), "--bootstrap", own_broker.bootstrap]
            if "--listen" in argv:  # `discover serve` serves /metrics on its --listen address
                argv[argv.index("--listen") + 1] = f"127.0.0.1:{ports[name]}"
            else:
                where += ["--state-dir", str(tmp_path / "state" / name), "--metrics-port", str(ports[name])]
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "medkiosk", *argv, *where],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=_env(),
            )
        exported: dict[str, set[str]] = {}
        used = _used()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            for name, proc in procs.items():
                assert proc.poll() is None, f"{name} exited: {proc.stderr.read() if proc.stderr else ''}"
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{ports[name]}/metrics", timeout=3) as resp:
                        exported[name] = _exported(resp.read().decode())
                except OSError:
                    continue
            if set(used) <= set().union(*exported.values()) if exported else False:
                break
            time.sleep(1)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
    assert set(exported) == set(processes), f"no /metrics from {set(processes) - set(exported)}"
    everything = set().union(*exported.values())
    missing: dict[str, Any] = {name: sorted(where) for name, where in used.items() if name not in everything}
    assert not missing, f"read but exported by no process compose runs: {missing}"
