"""The deployment files (compose.yaml, infra/) parse, agree with each other and use only real metric names.

promtool and kubectl checks run when those tools are on PATH and are skipped, with the reason, otherwise.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
COMPOSE = ROOT / "compose.yaml"
PROMETHEUS_DIR = INFRA / "prometheus"
DASHBOARD = INFRA / "grafana" / "dashboards" / "medkiosk.json"
K8S = INFRA / "k8s"

#: Every metric name a medkiosk process exposes (the contract of streams' metrics and the autoscaler).
METRICS = {
    "medkiosk_events_in_total",
    "medkiosk_events_out_total",
    "medkiosk_rejects_total",
    "medkiosk_duplicates_total",
    "medkiosk_e2e_latency_seconds",
    "medkiosk_outbox_depth",
    "medkiosk_outbox_oldest_age_seconds",
    "medkiosk_consumer_lag",
    "medkiosk_kiosk_load",
    "medkiosk_broker_up",
    "medkiosk_registry_instances",
}
HISTOGRAMS = {"medkiosk_e2e_latency_seconds"}
SERIES = METRICS | {f"{h}_{suffix}" for h in HISTOGRAMS for suffix in ("bucket", "sum", "count")}

HOSPITALS = ("hospital-a", "hospital-b")
KIOSKS = {"kiosk-a1": "hospital-a", "kiosk-b1": "hospital-b"}
METRICS_PORT = "9108"

_METRIC_TOKEN = re.compile(r"\bmedkiosk_[a-z0-9_]+")
_RECORDED_TOKEN = re.compile(r"\bmedkiosk:[a-z0-9_:]+")


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _yaml_docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not on PATH (Debian: apt-get install prometheus for promtool, kubectl for kustomize)")
    return found


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = _load_yaml(COMPOSE)
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _medkiosk_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in services.items()
        if svc.get("build", {}).get("dockerfile") == "infra/docker/cloud.Dockerfile"
    }


def _volume_mounts(svc: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """target -> (source, read_only) for short-syntax volume entries."""
    out = {}
    for entry in svc.get("volumes", []):
        parts = entry.split(":")
        out[parts[1]] = (parts[0], len(parts) > 2 and "ro" in parts[2].split(","))
    return out


# ----------------------------------------------------------------------------------------------------- YAML


def test_every_infra_yaml_parses() -> None:
    paths = [COMPOSE, *sorted(INFRA.rglob("*.yml")), *sorted(INFRA.rglob("*.yaml"))]
    assert len(paths) > 10
    for path in paths:
        docs = _yaml_docs(path)
        assert docs, f"{path} is empty"
        for doc in docs:
            assert isinstance(doc, dict), f"{path}: top level must be a mapping"


# -------------------------------------------------------------------------------------------------- compose


def test_compose_has_every_role(services: dict[str, dict[str, Any]]) -> None:
    expected = {"kafka", "topics", "keys", "gateway", "prometheus", "grafana"}
    expected |= {f"subscriber-{h}" for h in HOSPITALS} | set(KIOSKS)
    assert expected <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    env = services["kafka"]["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"], "Kafka must run in KRaft mode"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert services["topics"]["command"] == ["topics", "apply"]
    assert services["topics"]["restart"] == "no"
    assert services["gateway"]["command"] == ["gateway"]
    for hospital in HOSPITALS:
        command = services[f"subscriber-{hospital}"]["command"]
        assert command == ["subscribe", "--hospital", hospital, "--output", f"/events/{hospital}.jsonl"]
        assert _volume_mounts(services[f"subscriber-{hospital}"])["/events"] == (f"events-{hospital}", False)
    for kiosk, hospital in KIOSKS.items():
        assert services[kiosk]["command"] == ["kiosk", "simulate", "--kiosk-id", kiosk, "--hospital", hospital]


def test_compose_medkiosk_services_share_settings(services: dict[str, dict[str, Any]]) -> None:
    ours = _medkiosk_services(services)
    assert {"topics", "keys", "gateway", *KIOSKS} <= set(ours)
    for name, svc in ours.items():
        env = svc["environment"]
        assert all(key.startswith("MEDKIOSK_") for key in env), name
        assert env["MEDKIOSK_BOOTSTRAP_SERVERS"] == "kafka:9092", name
        assert env["MEDKIOSK_KEYS_DIR"] == "/keys", name
        if svc.get("restart") != "no":
            assert env["MEDKIOSK_METRICS_PORT"] == METRICS_PORT, name
            assert env["MEDKIOSK_METRICS_HOST"] == "0.0.0.0", f"{name}: metrics must be reachable by Prometheus"
            assert svc["depends_on"]["topics"]["condition"] == "service_completed_successfully", name


def test_compose_references_resolve(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose.get("volumes", {}))
    used: set[str] = set()
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
        for source, _ in _volume_mounts(svc).values():
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} mounts undeclared volume {source}"
                used.add(source)
        build = svc.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name
    assert declared == used, f"declared but unused volumes: {declared - used}"


def test_compose_keys_are_role_separated(services: dict[str, dict[str, Any]]) -> None:
    mounts = {name: _volume_mounts(svc) for name, svc in services.items()}
    holders = [name for name, m in mounts.items() if any(src == "keys-master" for src, _ in m.values())]
    assert holders == ["keys"], "only the one-shot keys service may see the master key set"
    assert mounts["gateway"]["/keys"] == ("keys-gateway", True)
    for hospital in HOSPITALS:
        assert mounts[f"subscriber-{hospital}"]["/keys"] == (f"keys-{hospital}", True)
    for kiosk in KIOSKS:
        assert mounts[kiosk]["/keys"] == (f"keys-{kiosk}", True)


def _run_compose_script(svc: dict[str, Any], root: Path, folders: dict[str, Path]) -> str:
    """Run a one-shot service's ``sh -euc`` script here: real ``medkiosk`` calls, each container path in
    *folders* mapped to a folder under *root*; ``chown`` only as root. Returns its stdout."""
    if shutil.which("sh") is None:
        pytest.skip("needs a POSIX shell")
    assert svc["entrypoint"] == ["/bin/sh", "-euc"]
    script = svc["command"][0]
    assert not re.search(r"(?<!\$)\$(?!\$)", script), "a single $ would be interpolated by compose: write $$"
    script = script.replace("$$", "$").replace("medkiosk ", f"{sys.executable} -m medkiosk ")
    for container_path, here in sorted(folders.items(), key=lambda kv: -len(kv[0])):
        script = script.replace(container_path, str(here))
    if os.geteuid() != 0:
        script = re.sub(r"\bchown\b", ": chown", script)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDKIOSK_")}
    proc = subprocess.run(
        ["sh", "-euc", script], capture_output=True, text=True, timeout=120, check=False, env=env, cwd=root
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _run_keys_script(services: dict[str, dict[str, Any]], root: Path) -> Path:
    """The `keys` service's script into *root*; returns the folder of the role volumes."""
    roles = root / "roles"
    for role in ("public", "gateway", *HOSPITALS, *KIOSKS):
        (roles / role).mkdir(parents=True)
    folders = {f: root / f.lstrip("/") for f in ("/keys/master", "/tmp/export", "/roles")}
    _run_compose_script(services["keys"], root, folders)
    return roles


def test_compose_keys_script_splits_roles(services: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """Run the keys service's script (real `medkiosk keys init/export`) and inspect each role's folder."""
    roles = _run_keys_script(services, tmp_path)

    def tree(role: str) -> set[str]:
        return {str(p.relative_to(roles / role)) for p in (roles / role).rglob("*") if p.is_file()}

    assert not any(p.startswith(("data/", "signing/")) for p in tree("public"))
    gateway = tree("gateway")
    assert "signing/gateway-1/v1.pem" in gateway
    assert not any(p.startswith("data/") for p in gateway), "the gateway must never hold a data key"
    for hospital in HOSPITALS:
        files = tree(hospital)
        assert {p.split("/")[1] for p in files if p.startswith("data/")} == {hospital}
        assert not any(p.startswith("signing/") for p in files)
    for kiosk, hospital in KIOSKS.items():
        files = tree(kiosk)
        assert {p.split("/")[1] for p in files if p.startswith("data/")} == {hospital}
        assert {p.split("/")[1] for p in files if p.startswith("signing/")} == {kiosk}


# -------------------------------------------------------------------------------------- compose: Kafka security

#: Principals of the plan with no compose service: they run on their own machines (FL roles) or in a cluster
#: (KEDA); compose.yaml's header says how they get their credentials.
RUN_ELSEWHERE = {"fl-coordinator", "fl-aggregator", "fl-keyholder", "keda"} | {f"fl-client-{h}" for h in HOSPITALS}
CRED_MOUNT = "/run/kafka"


def _kafka_clients(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """compose service -> the SASL principal it logs in as (MEDKIOSK_SASL_USERNAME)."""
    return {
        name: svc["environment"]["MEDKIOSK_SASL_USERNAME"]
        for name, svc in _medkiosk_services(services).items()
        if "MEDKIOSK_SASL_USERNAME" in svc["environment"]
    }


@pytest.fixture(scope="module")
def kafka_users_run(services: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `keys` then the `kafka-users` service's scripts, for real; returns their root folder (creds/users.json
    and one folder per credential volume under volumes/)."""
    root = tmp_path_factory.mktemp("compose-kafka-users")
    roles = _run_keys_script(services, root)
    mounts = _volume_mounts(services["kafka-users"])
    folders = {"/keys": roles / "public", "/creds": root / "creds"}
    for target, (source, _) in mounts.items():
        if target.startswith("/roles/"):
            folders[target] = root / "volumes" / source
            folders[target].mkdir(parents=True)
    (root / "creds").mkdir()
    _run_compose_script(services["kafka-users"], root, folders)
    return root


def test_compose_kafka_is_secured_and_ordered(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    env = kafka["environment"]
    assert set(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")) == {
        f"{name}:SASL_PLAINTEXT" for name in ("INTERNAL", "CONTROLLER", "EXTERNAL")
    }
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert not any("password" in str(v).lower() or "jaas" in k.lower() for k, v in env.items())
    assert kafka["entrypoint"] == ["/bin/sh", "/medkiosk/compose-kafka.sh"]
    mounts = _volume_mounts(kafka)
    assert mounts["/medkiosk/compose-kafka.sh"] == ("./infra/kafka/compose-kafka.sh", True)
    assert mounts[CRED_MOUNT] == ("kafka-broker-admin", True)
    assert "--command-config" in kafka["healthcheck"]["test"][1], "the healthcheck must log in too"
    done = "service_completed_successfully"
    assert kafka["depends_on"]["kafka-users"]["condition"] == done
    acls = services["acls"]
    assert acls["command"][:2] == ["acls", "apply"] and "--create-users" in acls["command"]
    assert acls["depends_on"] == {"kafka": {"condition": "service_healthy"}, "kafka-users": {"condition": done}}
    # Every process that runs on (not only once before) the system waits for the users and ACLs.
    for name, svc in _medkiosk_services(services).items():
        if svc.get("restart") != "no" or name == "auditor":
            assert svc["depends_on"]["acls"]["condition"] == done, name


def test_compose_each_process_has_only_its_own_credential(
    services: dict[str, dict[str, Any]], kafka_users_run: Path
) -> None:
    from streams import Keyring
    from streams.broker import principals_from_keyring

    plan_users = set(principals_from_keyring(Keyring.load(kafka_users_run / "roles" / "public")).all_users())
    users = json.loads((kafka_users_run / "creds" / "users.json").read_text())
    assert set(users["users"]) == plan_users, "kafka-users must make exactly the plan's principals"
    (admin,) = users["admin"]
    clients = _kafka_clients(services)
    assert {"gateway", "topics", *KIOSKS, *(f"subscriber-{h}" for h in HOSPITALS)} <= set(clients)
    assert clients["gateway"] == "gateway-1" and clients["topics"] == admin
    for kiosk in KIOSKS:
        assert clients[kiosk] == kiosk
    for hospital in HOSPITALS:
        assert clients[f"subscriber-{hospital}"] == f"hospital-{hospital}"
    named = set(clients.values()) - {admin}
    assert len(named) == len([u for u in clients.values() if u != admin]), "two services share a principal"
    assert named <= plan_users and plan_users - named == RUN_ELSEWHERE
    sasl_entrypoint = services["gateway"]["entrypoint"]
    holders: dict[str, set[str]] = {}
    for name, svc in services.items():
        for source, _ in _volume_mounts(svc).values():
            holders.setdefault(source, set()).add(name)
    for name, user in clients.items():
        svc = services[name]
        assert svc["environment"]["MEDKIOSK_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT", name
        assert svc["environment"]["MEDKIOSK_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        assert "MEDKIOSK_SASL_PASSWORD" not in svc["environment"], f"{name}: a password in compose.yaml"
        assert svc["entrypoint"] == sasl_entrypoint, name
        volume = f"kafka-{user}"
        assert _volume_mounts(svc)[CRED_MOUNT] == (volume, True), name
        # Only this service (and the writer) sees this credential; the service sees no other.
        assert holders[volume] == {name, "kafka-users"}, volume
        others = [s for s, _ in _volume_mounts(svc).values() if s.startswith("kafka-") and s != volume]
        assert not others, f"{name} mounts another principal's credential: {others}"
        folder = kafka_users_run / "volumes" / volume
        expected = users["admin"][admin] if user == admin else users["users"][user]
        assert (folder / "username").read_text() == user, name
        assert (folder / "password").read_text() == expected, name
        assert (folder / "password").stat().st_mode & 0o077 == 0, f"{volume}: readable by others"
    assert holders["kafka-users"] == {"kafka-users", "acls"}, "users.json holds every password"
    broker_admin = kafka_users_run / "volumes" / "kafka-broker-admin"
    assert (broker_admin / "username").read_text() == admin
    assert holders["kafka-broker-admin"] == {"kafka", "kafka-users"}


def test_compose_sasl_entrypoint_reads_the_mounted_password(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The `sasl` entrypoint, run by sh as compose runs it: the password comes from /run/kafka/password, the
    command is handed on untouched, and a missing password file stops the process."""
    sh, flag, script, arg0 = services["gateway"]["entrypoint"]
    (tmp_path / "password").write_text("s3cret")
    script = script.replace("$$", "$").replace(CRED_MOUNT, str(tmp_path)).replace("exec medkiosk", "exec env")
    assert "exec env" in script
    proc = subprocess.run([sh, flag, script, arg0, "-u", "HOME"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "MEDKIOSK_SASL_PASSWORD=s3cret" in proc.stdout.splitlines()
    (tmp_path / "password").unlink()
    proc = subprocess.run([sh, flag, script, arg0], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "MEDKIOSK_SASL_PASSWORD" not in proc.stdout


# ----------------------------------------------------------------------------------------------- Prometheus


def _static_targets() -> dict[str, list[str]]:
    cfg = _load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    return {
        job["job_name"]: [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        for job in cfg["scrape_configs"]
    }


def test_prometheus_targets_are_compose_services(services: dict[str, dict[str, Any]]) -> None:
    targets = _static_targets()
    assert {"medkiosk-gateway", "medkiosk-subscriber", "medkiosk-kiosk", "medkiosk-autoscaler"} <= set(targets)
    for job, hosts in targets.items():
        for target in hosts:
            host, port = target.rsplit(":", 1)
            if job == "prometheus":
                continue
            assert host in services, f"{job}: {host} is not a compose service"
            assert services[host]["environment"]["MEDKIOSK_METRICS_PORT"] == port, target
    assert sorted(targets["medkiosk-subscriber"]) == [f"subscriber-{h}:{METRICS_PORT}" for h in HOSPITALS]


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _load_yaml(PROMETHEUS_DIR / "rules.yml")["groups"] for rule in group["rules"]]


def _check_names(expr: str, where: str, recorded: set[str]) -> None:
    for name in _METRIC_TOKEN.findall(expr):
        assert name in SERIES, f"{where}: unknown metric {name} in {expr!r}"
    for name in _RECORDED_TOKEN.findall(expr):
        assert name in recorded, f"{where}: unknown recording rule {name}"


def test_rules_use_only_known_metrics() -> None:
    rules = _rules()
    recorded = {r["record"] for r in rules if "record" in r}
    alerts = {r["alert"] for r in rules if "alert" in r}
    assert {
        "MedkioskDLQRejects",
        "MedkioskOutboxGrowing",
        "MedkioskOutboxStale",
        "MedkioskConsumerLagHigh",
        "MedkioskE2ELatencyHigh",
    } <= alerts
    for rule in rules:
        _check_names(rule["expr"], rule.get("record") or rule["alert"], recorded)
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert rule["annotations"]["summary"]


def test_promtool_check_config_and_rules() -> None:
    promtool = _tool("promtool")
    _run(promtool, "check", "config", "prometheus.yml", cwd=PROMETHEUS_DIR)
    _run(promtool, "check", "rules", "rules.yml", cwd=PROMETHEUS_DIR)


def test_promtool_rule_unit_tests() -> None:
    promtool = _tool("promtool")
    _run(promtool, "test", "rules", "rules_test.yml", cwd=PROMETHEUS_DIR)


# -------------------------------------------------------------------------------------------------- Grafana


def _dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    out = [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            out.append((f"${var['name']}", var["definition"]))
    return out


def test_dashboard_uses_only_known_metrics() -> None:
    exprs = _dashboard_exprs()
    used = set()
    for title, expr in exprs:
        _check_names(expr, title, recorded=set())
        used |= set(_METRIC_TOKEN.findall(expr))
    # Throughput in/out, rejects, latency (from the histogram), outbox, lag and kiosk load are all on it.
    assert {
        "medkiosk_events_in_total",
        "medkiosk_events_out_total",
        "medkiosk_rejects_total",
        "medkiosk_e2e_latency_seconds_bucket",
        "medkiosk_outbox_depth",
        "medkiosk_consumer_lag",
        "medkiosk_kiosk_load",
    } <= used
    quantiles = {m.group(1) for _, e in exprs for m in re.finditer(r"histogram_quantile\((0\.\d+)", e)}
    assert quantiles == {"0.50", "0.99"}


def test_dashboard_promql_is_valid(tmp_path: Path) -> None:
    """Every panel query, with Grafana's variables filled in, compiles as a PromQL expression."""
    promtool = _tool("promtool")
    rules = [
        {
            "record": f"dashboard:query_{i}",
            "expr": expr.replace("$__rate_interval", "1m").replace("$service", ".*").replace("$topic", ".*"),
        }
        for i, (_, expr) in enumerate(_dashboard_exprs())
        if not expr.startswith("label_values(")
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    _run(promtool, "check", "rules", str(path))


def test_grafana_provisioning_matches_compose(services: dict[str, dict[str, Any]]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    datasources = _load_yaml(INFRA / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    (prom,) = datasources
    assert prom["type"] == "prometheus"
    assert prom["url"] == "http://prometheus:9090" and "prometheus" in services
    ds_var = next(v for v in dashboard["templating"]["list"] if v["type"] == "datasource")
    assert ds_var["current"]["value"] == prom["uid"]
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    provider = _load_yaml(INFRA / "grafana" / "provisioning" / "dashboards" / "medkiosk.yml")["providers"][0]
    mounts = _volume_mounts(services["grafana"])
    assert mounts[provider["options"]["path"]][0] == "./infra/grafana/dashboards"
    assert mounts["/etc/grafana/provisioning/datasources"][0] == "./infra/grafana/provisioning/datasources"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


# ------------------------------------------------------------------------------------------------ Kubernetes


def _k8s_docs() -> list[dict[str, Any]]:
    kustomization = _load_yaml(K8S / "kustomization.yaml")
    docs = []
    for resource in kustomization["resources"]:
        docs.extend(_yaml_docs(K8S / resource))
    return docs


def test_k8s_manifests_are_consistent() -> None:
    docs = _k8s_docs()
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    workloads = {**by_kind["Deployment"], **by_kind["StatefulSet"]}
    assert set(by_kind["StatefulSet"]) == {"medkiosk-gateway"}
    assert {f"medkiosk-subscriber-{h}" for h in HOSPITALS} <= set(by_kind["Deployment"])
    settings = by_kind["ConfigMap"]["medkiosk-settings"]["data"]
    assert all(key.startswith("MEDKIOSK_") for key in settings)
    assert settings["MEDKIOSK_METRICS_HOST"] == "0.0.0.0"
    for name, dep in workloads.items():
        spec = dep["spec"]["template"]["spec"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
        (container,) = spec["containers"]
        assert container["envFrom"] == [{"configMapRef": {"name": "medkiosk-settings"}}], name
        assert container["ports"][0]["containerPort"] == int(settings["MEDKIOSK_METRICS_PORT"])
        secrets = {v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
        hospital = name.removeprefix("medkiosk-subscriber-")
        own = {"medkiosk-gateway": "medkiosk-keys-gateway", "medkiosk-autoscaler": "medkiosk-keys-autoscaler"}
        expected_keys = own.get(name, f"medkiosk-keys-{hospital}")
        assert expected_keys in secrets, name
        assert not any(s.startswith("medkiosk-keys-") and s != expected_keys for s in secrets), name
    # Each gateway replica is a producer of its own: its pod name is its producer id.
    gateway = workloads["medkiosk-gateway"]
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    assert container["args"][:3] == ["gateway", "--gateway-id", "$(POD_NAME)"]
    assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container["env"]
    assert [t["metadata"]["name"] for t in gateway["spec"]["volumeClaimTemplates"]] == ["state"]
    service = by_kind["Service"]["medkiosk-gateway"]
    assert gateway["spec"]["serviceName"] == "medkiosk-gateway"
    gateway_labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= gateway_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


#: Principals of the plan with no workload in infra/k8s: kiosks and hospitals' FL clients run on their own
#: machines, the FL service roles, the auditor and the registry reader wherever the operator runs them.
K8S_ELSEWHERE = {*KIOSKS, "auditor", "registry", "fl-coordinator", "fl-aggregator", "fl-keyholder"} | {
    f"fl-client-{h}" for h in HOSPITALS
}


def _pod_containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def _sasl_secret(container: dict[str, Any]) -> str | None:
    """The Secret a container's MEDKIOSK_SASL_USERNAME and _PASSWORD come from (asserted to be one)."""
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container.get("env", [])
        if e["name"] in {"MEDKIOSK_SASL_USERNAME", "MEDKIOSK_SASL_PASSWORD"}
    }
    if not refs:
        return None
    user, password = refs["MEDKIOSK_SASL_USERNAME"], refs["MEDKIOSK_SASL_PASSWORD"]
    assert (user["key"], password["key"]) == ("username", "password")
    assert user["name"] == password["name"] and not user.get("optional") and not password.get("optional")
    return str(user["name"])


def test_k8s_each_workload_has_its_own_kafka_principal(tmp_path: Path) -> None:
    from streams import Keyring
    from streams._keys import init_dev_keys
    from streams.broker import principals_from_keyring

    docs = [*_k8s_docs(), *_yaml_docs(K8S / "drain-orphan-job.yaml")]
    settings = _load_yaml(K8S / "configmap.yaml")["data"]
    assert settings["MEDKIOSK_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert settings["MEDKIOSK_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert "MEDKIOSK_SASL_USERNAME" not in settings and "MEDKIOSK_SASL_PASSWORD" not in settings
    # The example registry of these manifests: gateway.yaml's medkiosk-gateway-0..11, the autoscaler.
    init_dev_keys(
        tmp_path,
        hospitals=HOSPITALS,
        kiosks=KIOSKS,
        services=[*(f"medkiosk-gateway-{i}" for i in range(12)), "autoscaler-1"],
    )
    (job,) = [d for d in docs if d["kind"] == "Job" and d["metadata"]["name"] == "medkiosk-acls"]
    (acls,) = job["spec"]["template"]["spec"]["containers"]
    pools = [a.split("=", 1)[1] for a in acls["args"] if a.startswith("--gateway-pool=")]
    assert acls["args"][:2] == ["acls", "apply"] and "--create-users" in acls["args"] and pools
    plan_users = set(principals_from_keyring(Keyring.load(tmp_path), gateway_pools=pools).all_users())
    by_workload: dict[str, str] = {}
    users_holders: set[str] = set()
    for doc in docs:
        if doc["kind"] not in {"Deployment", "StatefulSet", "Job"}:
            continue
        name = doc["metadata"]["name"]
        pod = doc["spec"]["template"]["spec"]
        if any(v.get("secret", {}).get("secretName") == "medkiosk-kafka-users" for v in pod["volumes"]):
            users_holders.add(name)
        secrets = {s for c in _pod_containers(doc) if (s := _sasl_secret(c))}
        if not secrets:
            assert name == "medkiosk-acls", f"{name} talks to Kafka without credentials"
            continue
        (secret,) = secrets
        assert secret.startswith("medkiosk-kafka-"), name
        by_workload[name] = secret.removeprefix("medkiosk-kafka-")
        if doc["kind"] != "Job":
            # It starts once its principal can log in, i.e. once the ACL Job has made it (users after ACLs).
            (wait,) = [c for c in pod["initContainers"] if c.get("args", [])[:2] == ["acls", "wait"]]
            assert _sasl_secret(wait) == secret, name
    assert users_holders == {"medkiosk-acls"}, "users.json holds every password"
    assert by_workload["medkiosk-gateway"] == pools[0] == "medkiosk-gateway"
    assert by_workload["medkiosk-topics"] == "admin"
    assert by_workload["medkiosk-autoscaler"] == "autoscaler-1"
    for hospital in HOSPITALS:
        assert by_workload[f"medkiosk-subscriber-{hospital}"] == f"hospital-{hospital}"
    # The drain Job sends a gateway replica's outbox: the gateway's principal; nobody else shares one.
    owners: dict[str, set[str]] = {}
    for name, user in by_workload.items():
        owners.setdefault(user, set()).add(name.removeprefix("medkiosk-drain-"))
    for user, names in owners.items():
        assert len(names) == 1 or names == {"medkiosk-gateway", "gateway-5"}, (user, names)
    (auth,) = [d for d in docs if d["kind"] == "TriggerAuthentication"]
    keda_secrets = {p["name"] for p in auth["spec"]["secretTargetRef"]}
    assert keda_secrets == {"medkiosk-kafka-keda"}
    named = (set(by_workload.values()) - {"admin"}) | {"keda"}
    assert named <= plan_users and plan_users - named == K8S_ELSEWHERE
    # The gateway pool's ACLs cover every replica's transactional id and private groups, and no other role's.
    from streams.broker import plan_acls
    from streams.broker._acls import Principals

    plan = plan_acls(principals_from_keyring(Keyring.load(tmp_path), gateway_pools=pools))
    txn = [a for a in plan.for_principal("medkiosk-gateway") if a.resource_type.name == "TRANSACTIONAL_ID"]
    assert {(a.name, a.pattern.name) for a in txn} == {("medkiosk-medkiosk-gateway-", "PREFIXED")}
    assert not any(
        a.name.startswith("hospital.") for a in plan.for_principal("medkiosk-gateway") if a.operation.name == "READ"
    )
    assert not any(a.operation.name == "READ" for a in plan.for_principal("keda"))
    assert Principals.hospital_user("hospital-a") in plan_users


def test_keda_scales_gateway_on_lag_and_kiosk_load() -> None:
    docs = _k8s_docs()
    scaled = [d for d in docs if d["kind"] == "ScaledObject"]
    targets = [s["spec"]["scaleTargetRef"]["name"] for s in scaled]
    assert len(targets) == len(set(targets)), "KEDA allows one ScaledObject per workload"
    gateway = next(s for s in scaled if s["spec"]["scaleTargetRef"]["name"] == "medkiosk-gateway")
    ref = gateway["spec"]["scaleTargetRef"]
    assert any(d["kind"] == ref["kind"] and d["metadata"]["name"] == ref["name"] for d in docs)
    triggers = {t["type"]: t["metadata"] for t in gateway["spec"]["triggers"]}
    assert set(triggers) == {"kafka", "prometheus", "external"}
    # The predictive trigger calls the autoscaler's KEDA scaler for a target the autoscaler actually has.
    host, port = triggers["external"]["scalerAddress"].rsplit(":", 1)
    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "medkiosk-autoscaler")
    assert host.split(".")[0] == "medkiosk-autoscaler" and int(port) in {p["port"] for p in service["spec"]["ports"]}
    scaler = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "medkiosk-autoscaler")
    args = scaler["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--keda-port={port}" in args
    assert any(a.startswith("--deployment=") and f'"name": "{triggers["external"]["target"]}"' in a for a in args)
    for trigger in gateway["spec"]["triggers"]:
        for key, value in trigger["metadata"].items():
            assert isinstance(value, str), f"KEDA trigger metadata must be strings: {key}={value!r}"
    from medkiosk.__main__ import build_parser

    assert triggers["kafka"]["consumerGroup"] == build_parser().parse_args(["gateway"]).group
    assert int(triggers["kafka"]["lagThreshold"]) > 0
    assert "medkiosk_kiosk_load" in triggers["prometheus"]["query"]
    _check_names(triggers["prometheus"]["query"], "keda", recorded=set())
    assert float(triggers["prometheus"]["threshold"]) == pytest.approx(0.8)


def test_kustomize_builds() -> None:
    kubectl = _tool("kubectl")
    out = _run(kubectl, "kustomize", str(K8S)).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    kinds = {d["kind"] for d in docs}
    assert kinds >= {"Namespace", "ConfigMap", "Deployment", "StatefulSet", "Service", "ScaledObject"}
    assert all(d["metadata"].get("namespace") == "medkiosk" for d in docs if d["kind"] != "Namespace")


# --------------------------------------------------------------------------------------- images, supervisord


def _dockerfile(name: str) -> list[tuple[str, str]]:
    text = (INFRA / "docker" / name).read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            instruction, _, rest = stripped.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def _copy_sources_exist(instructions: list[tuple[str, str]]) -> None:
    for instruction, rest in instructions:
        if instruction == "COPY" and not rest.startswith("--from"):
            *sources, _dest = rest.split()
            matched = [s for s in sources if list(ROOT.glob(s.rstrip("/")))]
            assert matched, f"COPY {rest}: nothing to copy"
            for source in sources:
                if not any(ch in source for ch in "*?["):
                    assert (ROOT / source).exists(), f"COPY source {source} missing"


def test_cloud_dockerfile() -> None:
    instructions = _dockerfile("cloud.Dockerfile")
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = [rest for ins, rest in instructions if ins == "RUN"]
    torch_at = next(i for i, r in enumerate(runs) if "download.pytorch.org/whl/cpu" in r)
    project_at = next(i for i, r in enumerate(runs) if '".[cloud,autoscaler]"' in r)
    assert torch_at < project_at, "CPU torch must be installed before the cloud extra pulls a CUDA build"
    assert ("ARG", "TORCH_VERSION=2.13.0") in instructions
    assert ("ENTRYPOINT", '["medkiosk"]') in instructions
    assert any(ins == "USER" and rest != "root" for ins, rest in instructions)
    _copy_sources_exist(instructions)


def test_edge_dockerfile_and_supervisord() -> None:
    instructions = _dockerfile("edge.Dockerfile")
    # JetPack 6.1+ (r36.4): TensorRT 10, the API the engine is written against; its bindings are for the
    # base's Python 3.10, so the venv is that Python's, with the system site-packages, not a PPA's 3.11.
    assert instructions[0] == ("FROM", "nvcr.io/nvidia/l4t-jetpack:r36.4.0")
    assert ("ARG", "EXTRAS=edge,gpu") in instructions
    runs = " ".join(rest for ins, rest in instructions if ins == "RUN")
    assert "python3 -m venv --system-site-packages /opt/medkiosk/venv" in runs
    assert "deadsnakes" not in runs and "python3.11" not in runs
    assert "tensorrt.__version__.startswith('10.')" in runs
    assert any(ins == "COPY" and "infra/supervisord/edge.conf" in rest for ins, rest in instructions)
    assert instructions[-1][0] == "CMD" and "supervisord" in instructions[-1][1]
    _copy_sources_exist(instructions)
    cpu = _dockerfile("edge-cpu.Dockerfile")
    assert cpu[0] == ("FROM", "python:3.11-slim")
    assert any(ins == "RUN" and 'pip install ".[edge]"' in rest for ins, rest in cpu)
    assert any(ins == "COPY" and "infra/supervisord/edge.conf" in rest for ins, rest in cpu)
    _copy_sources_exist(cpu)

    conf = configparser.ConfigParser(interpolation=None)
    conf.read(INFRA / "supervisord" / "edge.conf")
    assert conf["supervisord"]["nodaemon"] == "true"
    programs = [s for s in conf.sections() if s.startswith("program:")]
    assert programs == ["program:edge-agent"]
    agent = conf["program:edge-agent"]
    assert agent["command"].endswith("medkiosk edge --config /etc/medkiosk/kiosk.toml")
    assert agent["autorestart"] == "true"
    assert agent["stdout_logfile"] == "/dev/stdout" and agent["stdout_logfile_maxbytes"] == "0"
    assert agent["stderr_logfile"] == "/dev/stderr" and agent["stderr_logfile_maxbytes"] == "0"


def test_dockerignore_keeps_secrets_and_venvs_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", ".tools", ".medkiosk"} <= ignored
    # Key files at any depth, not only at the context root.
    assert {"**/*.pem", "**/*.key", "**/keys.tar.gz", "**/.medkiosk"} <= ignored
    assert not ({"*.pem", "*.key"} & ignored), "root-only key patterns give a false sense of safety"


def test_drain_orphan_job_mounts_a_gateway_claim() -> None:
    """The hand-run drain Job mounts a claim named as the StatefulSet names its volumes, at the state dir."""
    (job,) = _yaml_docs(K8S / "drain-orphan-job.yaml")
    assert "drain-orphan-job.yaml" not in _load_yaml(K8S / "kustomization.yaml")["resources"]
    (gateway,) = [d for d in _k8s_docs() if d["kind"] == "StatefulSet"]
    (template,) = gateway["spec"]["volumeClaimTemplates"]
    spec = job["spec"]["template"]["spec"]
    claim = next(v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if v["name"] == "state")
    assert re.fullmatch(rf"{template['metadata']['name']}-{gateway['metadata']['name']}-\d+", claim)
    (container,) = spec["containers"]
    settings = _load_yaml(K8S / "configmap.yaml")["data"]
    assert container["args"][:2] == ["outbox", "drain"]
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "state")
    assert mount == settings["MEDKIOSK_STATE_DIR"] == container["args"][container["args"].index("--state-dir") + 1]


def test_k8s_scale_in_and_privacy_settings() -> None:
    """KEDA owns the gateway's replicas; its grace period covers the drain; readiness is /ready; subscribers
    write decrypted events to a persistent volume, never to stdout."""
    docs = _k8s_docs()
    workloads = {d["metadata"]["name"]: d for d in docs if d["kind"] in {"Deployment", "StatefulSet"}}
    gateway = workloads["medkiosk-gateway"]
    assert "replicas" not in gateway["spec"], "a replicas: here resets KEDA's count on every apply"
    spec = gateway["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    drain = float(container["args"][container["args"].index("--drain") + 1])
    assert spec["terminationGracePeriodSeconds"] >= drain + 15
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    for name, workload in workloads.items():
        pod = workload["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        if c["args"][0] in {"gateway", "subscribe"}:
            assert c["readinessProbe"]["httpGet"]["path"] == "/ready", name
        if c["args"][0] != "subscribe":
            continue
        output = Path(c["args"][c["args"].index("--output") + 1])
        mount = next(m for m in c["volumeMounts"] if output.is_relative_to(m["mountPath"]))
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        assert volume["persistentVolumeClaim"]["claimName"] in claims, name
        assert workload["spec"]["strategy"]["type"] == "Recreate", f"{name}: one writer per RWO volume"
    jobs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Job"}
    (topics,) = jobs["medkiosk-topics"]["spec"]["template"]["spec"]["containers"]
    assert topics["args"][:2] == ["topics", "apply"]
    auth = {d["metadata"]["name"]: d for d in docs if d["kind"] == "TriggerAuthentication"}
    scaled = next(
        d for d in docs if d["kind"] == "ScaledObject" and d["spec"]["scaleTargetRef"]["name"] == "medkiosk-gateway"
    )
    lag = next(t for t in scaled["spec"]["triggers"] if t["type"] == "kafka")
    ref = auth[lag["authenticationRef"]["name"]]
    assert {p["parameter"] for p in ref["spec"]["secretTargetRef"]} >= {"sasl", "username", "password", "tls", "ca"}


@pytest.mark.parametrize("password", ['with"quote', "with space", "a,b", ""])
def test_compose_kafka_script_refuses_credentials_it_cannot_quote(tmp_path: Path, password: str) -> None:
    """The broker's script writes the admin's password into JAAS and --add-scram: it refuses what would break
    out of them, before it formats or starts anything."""
    if shutil.which("sh") is None:
        pytest.skip("needs a POSIX shell")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "username").write_text("admin")
    (creds / "password").write_text(password)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MEDKIOSK_KAFKA_ADMIN_DIR": str(creds),
        "KAFKA_BIN": str(tmp_path / "no-such-bin"),
        "KAFKA_PROPERTIES_FILE": str(tmp_path / "server.properties"),
        "KAFKA_CLIENT_PROPERTIES": str(tmp_path / "client.properties"),
        "CLUSTER_ID": "x",
    }
    script = INFRA / "kafka" / "compose-kafka.sh"
    proc = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 1 and "may not" in proc.stderr
    assert not (tmp_path / "server.properties").exists()
