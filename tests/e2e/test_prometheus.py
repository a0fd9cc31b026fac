"""``medkiosk up --prometheus`` with a real Prometheus: it finds every process through the registry's HTTP SD
endpoint (each target ``up == 1`` through its HTTP API), every metric a Grafana panel or an alert rule names is
served by a live process, and during a broker outage the broker-down and outbox alerts fire, then resolve.

The rules are the project's own, with every ``for:`` shortened to 1 s and the outbox staleness threshold
shortened from 60 s to 3 s so the drill stays short; everything else is as deployed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from medkiosk._up import UpOptions, UpResult, run_up
from medkiosk._up_prometheus import RULES

pytestmark = [pytest.mark.broker, pytest.mark.slow]

DASHBOARD = Path(__file__).resolve().parents[2] / "infra" / "grafana" / "dashboards" / "medkiosk.json"
#: At least these (``up`` may run more roles, e.g. the autoscaler, which register the same way).
JOBS = {"prometheus", "medkiosk-registry", "medkiosk-gateway", "medkiosk-subscriber", "medkiosk-kiosk"}
#: Metrics that must have samples in Prometheus during a normal run (the rest are counters that only
#: appear once something is rejected or duplicated; their families must still be served).
ALWAYS_SAMPLED = {
    "medkiosk_events_in_total",
    "medkiosk_events_out_total",
    "medkiosk_outbox_depth",
    "medkiosk_outbox_oldest_age_seconds",
    "medkiosk_kiosk_load",
    "medkiosk_broker_up",
    "medkiosk_e2e_latency_seconds_bucket",
}


def quick_rules(src: Path, dst: Path, *, for_s: float, overrides: dict[str, tuple[str, str]]) -> Path:
    doc = yaml.safe_load(src.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = f"{for_s:g}s"
                old, new = overrides.get(rule["alert"], ("", ""))
                if old:
                    assert old in rule["expr"], (rule["alert"], old)
                    rule["expr"] = rule["expr"].replace(old, new)
    dst.write_text(yaml.safe_dump(doc, sort_keys=False))
    return dst


def referenced_metrics() -> set[str]:
    """Raw metric names in the alert/recording rules and the dashboard (recorded ``medkiosk:`` series excluded)."""
    token = re.compile(r"\bmedkiosk_[a-z0-9_]+")
    exprs = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    dash = json.loads(DASHBOARD.read_text())
    exprs += [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    return {m for e in exprs for m in token.findall(e)}


def _api(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())["data"]


def _wait(check: Callable[[], bool], timeout_s: float, what: str, errors: list[str]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if errors:
            raise AssertionError(f"up failed: {errors[0]}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _fleet_ok(lines: list[str], keys: Path, seen: list[str]) -> bool:
    """``medkiosk discover list`` shows the kiosk, the gateway and the subscriber, all healthy."""
    bootstrap = next(m.group(1) for line in lines if (m := re.match(r"broker: .* on (\S+:\d+)", line)))
    argv = ["discover", "list", "--json", "--bootstrap", bootstrap, "--keys-dir", str(keys)]
    listed = subprocess.run(
        [sys.executable, "-m", "medkiosk", *argv], capture_output=True, text=True, timeout=60, check=False
    )
    if listed.returncode != 0:
        seen.append(listed.stderr[-300:])
        return False
    fleet = {(i["service"], i["instance_id"]): i for i in map(json.loads, listed.stdout.splitlines())}
    wanted = {("kiosk", "kiosk-H01-01"), ("cloud-gateway", "gateway-1"), ("hospital-subscriber", "subscriber-H01")}
    if not wanted <= set(fleet) or not all(fleet[k]["healthy"] for k in wanted):
        seen.append(
            repr(
                {
                    k: (v["healthy"], v["check_passing"], round(time.time() - v["last_seen"], 1))
                    for k, v in fleet.items()
                }
            )
        )
        return False
    meta = fleet[("kiosk", "kiosk-H01-01")]["meta"]
    assert meta["hospital"] == "H01" and "triage" in meta and meta["role"] == "kiosk", meta
    seen.append("ok")
    return True


def _family(name: str) -> str:
    return re.sub(r"_(total|bucket|sum|count)$", "", name)


@pytest.mark.skipif(
    shutil.which("prometheus") is None, reason="no prometheus binary (Debian: apt-get install prometheus)"
)
@pytest.mark.timeout(420)
def test_prometheus_sees_the_fleet_and_alerts_on_an_outage(tmp_path: Path) -> None:
    rules = quick_rules(RULES, tmp_path / "rules.yml", for_s=1, overrides={"MedkioskOutboxStale": ("> 60", "> 3")})
    lines: list[str] = []
    errors: list[str] = []
    result: dict[str, UpResult] = {}
    opts = UpOptions(
        hospitals=1,
        kiosks_per_hospital=1,
        rate_hz=2,
        duration_s=70,
        # Apache Kafka: its log dir survives the outage. On Tansu's S3 store, fetches stall (the broker bug the
        # outage drills document), the Kafka-native registry then loses every heartbeat and Prometheus its targets.
        engine="kafka",
        outage=(30, 26),
        state_dir=tmp_path / "up",
        kiosk_mode="edge",
        prometheus=True,
        prometheus_interval_s=2,  # a 1.6 s scrape timeout: slack for a busy machine
        prometheus_rules=rules,
        drain_timeout_s=60,
        progress=lines.append,
    )

    def run() -> None:
        try:
            result["up"] = run_up(opts)
        except Exception as exc:  # surfaced in the main thread
            errors.append(repr(exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        _wait(lambda: any(line.startswith("prometheus: ") for line in lines), 180, "prometheus to start", errors)
        prom = next(line for line in lines if line.startswith("prometheus: ")).split()[1]

        def all_up() -> bool:
            targets = _api(f"{prom}/api/v1/targets")["activeTargets"]
            jobs = {t["labels"]["job"] for t in targets}
            return jobs >= JOBS and all(t["health"] == "up" for t in targets)

        _wait(all_up, 90, f"every job {sorted(JOBS)} to be scraped and up", errors)
        # The same fleet through the registry itself, as an operator sees it (before the outage if there is
        # time on a busy machine, else once the broker is back).
        registry_keys = tmp_path / "up" / "up" / "keys" / "registry"
        seen: list[str] = []

        def fleet_or_outage() -> bool:
            return any("chaos: stopping" in line for line in lines) or _fleet_ok(lines, registry_keys, seen)

        _wait(fleet_or_outage, 90, "the fleet in 'discover list' or the outage", errors)
        fleet_checked = bool(seen) and seen[-1] == "ok"
        ups = _api(f"{prom}/api/v1/query?query=up")["result"]
        assert {r["metric"]["job"] for r in ups} >= JOBS
        assert all(r["value"][1] == "1" for r in ups), ups
        kiosk = next(r for r in ups if r["metric"]["job"] == "medkiosk-kiosk")
        assert kiosk["metric"]["hospital"] == "H01" and kiosk["metric"]["medkiosk_instance"] == "kiosk-H01-01"

        def sampled() -> bool:
            names = set(_api(f"{prom}/api/v1/label/__name__/values"))
            return names >= ALWAYS_SAMPLED

        _wait(sampled, 60, f"samples of {sorted(ALWAYS_SAMPLED)}", errors)
        exposition = ""
        for target in _api(f"{prom}/api/v1/targets")["activeTargets"]:
            with urllib.request.urlopen(target["scrapeUrl"], timeout=5) as resp:
                exposition += resp.read().decode()
        served = set(re.findall(r"^# TYPE (\S+)", exposition, re.M))
        dead = {m for m in referenced_metrics() if m not in served and _family(m) not in served}
        assert not dead, f"panels/rules name metrics no live process serves: {sorted(dead)}"

        def firing() -> set[str]:
            alerts = _api(f"{prom}/api/v1/alerts")["alerts"]
            return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}

        _wait(lambda: any("chaos: stopping" in line for line in lines), 120, "the outage to begin", errors)
        _wait(lambda: "MedkioskBrokerDown" in firing(), 20, "MedkioskBrokerDown to fire", errors)
        _wait(lambda: "MedkioskOutboxStale" in firing(), 45, "MedkioskOutboxStale to fire", errors)
        _wait(lambda: any("chaos: broker is back" in line for line in lines), 60, "the broker to return", errors)
        _wait(lambda: not firing() & {"MedkioskBrokerDown", "MedkioskOutboxStale"}, 60, "the alerts to resolve", errors)
        if not fleet_checked:
            _wait(
                lambda: _fleet_ok(lines, registry_keys, seen), 90, f"the fleet in 'discover list' ({seen[-1:]})", errors
            )
    finally:
        thread.join(timeout=300)
    assert not errors, errors
    summary = result["up"].summary
    # Delivery through outages is tests/e2e/test_outage.py's subject (a 10 s outage); this drill is longer.
    assert summary["published"] > 0, summary
