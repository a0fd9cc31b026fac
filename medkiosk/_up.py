"""``medkiosk up``: the whole system on one machine, every role its own OS process, as in production.

Timeline: broker (embedded unless a bootstrap is given) -> topics -> keys (role-scoped copies) ->
gateway + one subscriber per hospital -> kiosks for ``duration`` s (optionally with a broker outage)
-> kiosks stop and drain their outboxes -> wait for delivery -> workers stop -> summary.
The summary is computed from what the subscribers actually printed, not from counters.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from streams import BusSettings, apply_topics, export_role, init_dev_keys, topics_for
from streams.broker import free_port

__all__ = ["UpOptions", "UpResult", "run_up"]


@dataclass(kw_only=True)
class UpOptions:
    hospitals: int = 2
    kiosks_per_hospital: int = 2
    rate_hz: float = 5.0
    duration_s: float = 20.0
    bootstrap: str | None = None
    storage: str = "memory"
    #: The local broker when no bootstrap is given: "tansu" (embedded) or "kafka" (Apache Kafka 4).
    engine: str = "tansu"
    #: Kafka only: SASL/SCRAM per role and the ACLs of ``medkiosk acls plan``, applied before any role starts.
    secured: bool = False
    port: int = 0
    state_dir: Path = Path(".medkiosk")
    keys_dir: Path | None = None
    metrics_base_port: int = 0
    #: (at seconds, for seconds): stop the embedded broker for a while mid-run.
    outage: tuple[float, float] | None = None
    drain_timeout_s: float = 90.0
    #: "edge": real kiosk agents on emulated devices; "simulated": synthetic events, no devices.
    kiosk_mode: str = "edge"
    #: Federated-learning rounds to run alongside the kiosks (0: none).
    fl_rounds: int = 0
    #: Run the predictive autoscaler on the kiosks' telemetry (its actions go in the summary).
    autoscaler: bool = True
    #: A trained LSTM checkpoint (file or directory) for it; default: exponential smoothing.
    autoscaler_checkpoint: Path | None = None
    #: Run a real Prometheus on loopback that finds every process through the registry's SD endpoint.
    prometheus: bool = False
    prometheus_interval_s: float = 5.0
    #: Alert rules for that Prometheus (default: infra/prometheus/rules.yml).
    prometheus_rules: Path | None = None
    seed: int = 0
    progress: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr, flush=True))


@dataclass
class UpResult:
    summary: dict[str, Any]
    run_dir: Path


class _Proc:
    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, registry: list[_Proc] | None = None
    ) -> None:
        self.name = name
        self._log: IO[bytes] = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed in wait()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "medkiosk", *argv], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        if registry is not None:
            registry.append(self)

    def terminate(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        try:
            rc = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            rc = self.popen.wait()
        self._log.close()
        return rc


class _Outputs:
    """Tails the subscribers' JSON-lines files."""

    def __init__(self, files: dict[str, Path]) -> None:
        self._files = files
        self._pos = dict.fromkeys(files, 0)
        self.seen: Counter[tuple[str, str, int]] = Counter()
        self.where: dict[tuple[str, str, int], set[str]] = {}
        self.e2e_ms: list[float] = []

    def poll(self) -> None:
        for hospital, path in self._files.items():
            if not path.exists():
                continue
            with path.open("rb") as fh:
                fh.seek(self._pos[hospital])
                data = fh.read()
            end = data.rfind(b"\n") + 1
            self._pos[hospital] += end
            for line in data[:end].splitlines():
                obj = json.loads(line)
                key = (obj["producer_id"], obj.get("stream", ""), int(obj["seq"]))
                self.seen[key] += 1
                self.where.setdefault(key, set()).add(hospital)
                self.e2e_ms.append(float(obj["e2e_ms"]))


def _read_stats(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return {}


def _published(kiosk: str, stats: dict[str, Any]) -> set[tuple[str, str, int]]:
    """(producer, stream, seq) of every event a kiosk published to its hospital in this run (not telemetry)."""
    return {
        (kiosk, stream, seq)
        for stream, ranges in stats.get("published_seqs", {}).items()
        for first, last in ranges
        for seq in range(int(first), int(last) + 1)
    }


def _last_json(path: Path) -> dict[str, Any]:
    """The last JSON object line a process printed."""
    for line in reversed(path.read_text().splitlines()):
        if line.startswith("{"):
            try:
                data: dict[str, Any] = json.loads(line)
                return data
            except ValueError:
                continue
    return {}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[idx], 2)


def run_up(opts: UpOptions) -> UpResult:
    say = opts.progress
    state_dir = opts.state_dir
    run_dir = state_dir / "up"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    for sub in ("logs", "stats", "out", "keys"):
        (run_dir / sub).mkdir(parents=True)
    keys_dir = opts.keys_dir or state_dir / "keys"
    hospitals = [f"H{i + 1:02d}" for i in range(opts.hospitals)]
    kiosks = {f"kiosk-{h}-{j + 1:02d}": h for h in hospitals for j in range(opts.kiosks_per_hospital)}

    broker = None
    bootstrap = opts.bootstrap
    secured = None
    if opts.secured:
        from medkiosk._up_secured import SecuredLaunch

        secured = SecuredLaunch(kiosks=list(kiosks), hospitals=hospitals)
    if bootstrap is None:
        from streams.broker import make_local_broker

        broker = make_local_broker(
            "kafka" if opts.engine == "kafka" else "tansu",
            port=opts.port or free_port(),
            state_dir=state_dir / "up-broker",
            storage=opts.storage,  # type: ignore[arg-type]
            security=secured.security if secured is not None else None,
        )
        broker.start()
        bootstrap = broker.bootstrap
        if opts.engine == "kafka":
            say(f"broker: Apache Kafka (KRaft) on {bootstrap} (log dir under {state_dir / 'up-broker'})")
        else:
            say(f"broker: embedded Tansu on {bootstrap} ({opts.storage} storage)")
    procs: list[_Proc] = []
    observe = None
    try:
        settings = BusSettings(bootstrap_servers=bootstrap, keys_dir=keys_dir, state_dir=state_dir / "state")
        admin = settings if secured is None else secured.admin(settings)
        reports = asyncio.run(apply_topics(admin, topics_for(hospitals)))
        if secured is not None:
            from streams.broker import apply_acls, plan_acls

            n_acls = asyncio.run(apply_acls(admin, plan_acls(secured.principals)))
            say(f"acls: {n_acls} applied for {len(secured.security.users)} principals (SASL/SCRAM-SHA-512)")
        counts = Counter(r.status for r in reports)
        say(f"topics: {counts['created']} created, {counts['ok']} ok, {counts['mismatch']} mismatched")
        # Subscribers sign registry heartbeats; the autoscaler signs scaling commands.
        services = ["gateway-1", "autoscaler-1", *(f"subscriber-{h}" for h in hospitals)]
        created = init_dev_keys(keys_dir, hospitals=hospitals, kiosks=kiosks, services=services)
        say(f"keys: {keys_dir} ({len(created)} new files)")
        role_keys = run_dir / "keys"
        export_role(keys_dir, role_keys / "gateway-1", producer_id="gateway-1")
        export_role(keys_dir, role_keys / "autoscaler-1", producer_id="autoscaler-1")
        for h in hospitals:
            export_role(keys_dir, role_keys / f"hospital-{h}", producer_id=f"subscriber-{h}", hospitals=[h])
        for k, h in kiosks.items():
            export_role(keys_dir, role_keys / k, producer_id=k, hospitals=[h])

        env = {
            **os.environ,
            "MEDKIOSK_BOOTSTRAP_SERVERS": bootstrap,
            "MEDKIOSK_STATE_DIR": str(settings.state_dir),
            "PYTHONUNBUFFERED": "1",
        }
        if broker is not None:
            # Idempotent producers where our own broker grants them (Apache Kafka; Tansu refuses them).
            env["MEDKIOSK_ENABLE_IDEMPOTENCE"] = "true" if broker.engine == "kafka" else "false"
        ports = iter(range(opts.metrics_base_port, opts.metrics_base_port + 1000)) if opts.metrics_base_port else None
        if ports is None and opts.prometheus:
            ports = iter(free_port, None)  # Prometheus finds each process's port through the registry
        logs = run_dir / "logs"

        def penv(name: str) -> dict[str, str]:
            """The environment of process *name*: in secured mode with its own principal's credentials."""
            return env if secured is None else secured.env_for(name, env)

        def common(name: str, keys: str) -> list[str]:
            argv = ["--keys-dir", str(role_keys / keys), "--stats-file", str(run_dir / "stats" / f"{name}.json")]
            if ports is not None:
                argv += ["--metrics-port", str(next(ports))]
            return argv

        gateway = _Proc("gateway-1", ["gateway", *common("gateway-1", "gateway-1")], penv("gateway-1"), logs, procs)
        subs = [
            _Proc(
                f"subscriber-{h}",
                [
                    "subscribe",
                    "--hospital",
                    h,
                    "--output",
                    str(run_dir / "out" / f"{h}.jsonl"),
                    *common(f"subscriber-{h}", f"hospital-{h}"),
                ],
                penv(f"subscriber-{h}"),
                logs,
                procs,
            )
            for h in hospitals
        ]
        workers = [gateway, *subs]
        scaler = None
        if opts.autoscaler:
            from medkiosk._up_autoscaler import AutoscalerLaunch

            argv = AutoscalerLaunch(checkpoint=opts.autoscaler_checkpoint).argv(common("autoscaler-1", "autoscaler-1"))
            scaler = _Proc("autoscaler-1", argv, penv("autoscaler-1"), logs, procs)
            workers.append(scaler)
        stats_dir = run_dir / "stats"
        ready_deadline = time.monotonic() + 60
        while not all(_read_stats(stats_dir / f"{p.name}.json").get("ready") for p in workers):
            for p in workers:
                if p.popen.poll() is not None:
                    raise RuntimeError(f"{p.name} exited early (code {p.popen.returncode}); see {logs / p.name}.log")
            if time.monotonic() > ready_deadline:
                raise RuntimeError(f"workers not ready after 60 s; see {logs}")
            time.sleep(0.1)
        say("gateway and subscribers have their partitions")
        if opts.prometheus:
            from medkiosk._up_prometheus import PrometheusLaunch

            observe = PrometheusLaunch(run_dir, interval_s=opts.prometheus_interval_s, rules=opts.prometheus_rules)
            export_role(keys_dir, role_keys / "registry")
            url = observe.start(lambda name, argv: _Proc(name, argv, penv(name), logs, procs), role_keys / "registry")
            say(f"prometheus: {url} (targets from the registry; rules {observe.rules})")
        emulators: list[_Proc] = []
        if opts.kiosk_mode == "edge":
            from medkiosk._up_edge import EdgeLaunch

            launch = EdgeLaunch(run_dir, kiosks, rate_hz=opts.rate_hz, duration_s=opts.duration_s, seed=opts.seed)
            kiosk_procs = [
                _Proc(
                    k, [*launch.agent_argv(k, common(k, k)), "--drain", str(opts.drain_timeout_s)], penv(k), logs, procs
                )
                for k in kiosks
            ]
            say("kiosk agents starting (camera warm-up)")
            launch.wait_warm(lambda k: _read_stats(stats_dir / f"{k}.json"), [*workers, *kiosk_procs])
            emulators = [_Proc(name, argv, env, logs, procs) for name, argv in launch.emulator_argvs().items()]
            say("card readers and kiosk UIs emulated")
        else:
            kiosk_procs = [
                _Proc(
                    k,
                    [
                        "kiosk",
                        "simulate",
                        "--kiosk-id",
                        k,
                        "--hospital",
                        h,
                        "--rate",
                        str(opts.rate_hz),
                        "--seed",
                        str(opts.seed),
                        "--drain",
                        str(opts.drain_timeout_s),
                        *common(k, k),
                    ],
                    penv(k),
                    logs,
                    procs,
                )
                for k, h in kiosks.items()
            ]
        if opts.metrics_base_port:
            say(f"metrics: http://127.0.0.1:{opts.metrics_base_port}-{opts.metrics_base_port + len(procs) - 1}/metrics")
        say(f"running {len(kiosk_procs)} kiosks for {len(hospitals)} hospitals for {opts.duration_s:g}s")

        fl_proc = None
        if opts.fl_rounds:
            fl_argv = [
                "fl",
                "run",
                "--bootstrap",
                bootstrap,
                "--hospitals",
                str(max(2, opts.hospitals)),
                "--rounds",
                str(opts.fl_rounds),
                "--state-dir",
                str(run_dir / "fl"),
                "--seed",
                str(opts.seed),
            ]
            fl_proc = _Proc("fl", fl_argv, env, logs, procs)
            say(f"federated learning: {opts.fl_rounds} rounds, {max(2, opts.hospitals)} hospitals (log: {logs}/fl.log)")
        outputs = _Outputs({h: run_dir / "out" / f"{h}.jsonl" for h in hospitals})

        def published() -> int:
            total = 0
            for k in kiosks:
                st = _read_stats(stats_dir / f"{k}.json")
                total += int(st.get("published", st.get("identity_checks", 0) + st.get("inferences", 0)))
            return total

        def rejected() -> int:
            names = ["gateway-1", *(f"subscriber-{h}" for h in hospitals)]
            return sum(int(_read_stats(stats_dir / f"{n}.json").get("rejected", 0)) for n in names)

        start = time.monotonic()
        outage_done = False
        last_report = 0.0
        while (elapsed := time.monotonic() - start) < opts.duration_s:
            for p in [gateway, *subs, *kiosk_procs]:
                if p.popen.poll() is not None:
                    raise RuntimeError(f"{p.name} exited early (code {p.popen.returncode}); see {logs / p.name}.log")
            if opts.outage and broker is not None and not outage_done and elapsed >= opts.outage[0]:
                say(f"[{elapsed:5.1f}s] chaos: stopping the broker for {opts.outage[1]:g}s")
                broker.restart(down_s=opts.outage[1])
                outage_done = True
                say(f"[{time.monotonic() - start:5.1f}s] chaos: broker is back")
                continue
            if elapsed - last_report >= 2.0:
                outputs.poll()
                say(f"[{elapsed:5.1f}s] published {published()}  delivered {len(outputs.seen)}  rejected {rejected()}")
                last_report = elapsed
            time.sleep(0.2)

        for p in emulators:
            p.terminate()
        for p in emulators:
            p.wait(15)
        say("stopping kiosks (draining outboxes)")
        for p in kiosk_procs:
            p.terminate()
        for p in kiosk_procs:
            p.wait(opts.drain_timeout_s + 30)
        kiosk_stats = {k: _read_stats(stats_dir / f"{k}.json") for k in kiosks}
        expected = set().union(*(_published(k, st) for k, st in kiosk_stats.items()))
        deadline = time.monotonic() + opts.drain_timeout_s
        while time.monotonic() < deadline:
            outputs.poll()
            if expected <= set(outputs.seen):
                break
            time.sleep(0.2)
        time.sleep(0.5)  # let any late duplicate show itself before we count
        outputs.poll()
        for p in [gateway, *subs]:
            p.terminate()
        for p in [gateway, *subs]:
            p.wait(30)
        delivered = expected & set(outputs.seen)
        misrouted = sum(1 for key in delivered if outputs.where[key] != {kiosks[key[0]]})
        summary: dict[str, Any] = {
            "published": len(expected),
            "delivered": len(delivered),
            "lost": len(expected - delivered),
            "duplicates": sum(n - 1 for n in outputs.seen.values()),
            "rejected": rejected(),
            "misrouted": misrouted,
            "e2e_p50_ms": _percentile(outputs.e2e_ms, 50),
            "e2e_p99_ms": _percentile(outputs.e2e_ms, 99),
        }
        if scaler is not None:
            scaler.terminate()
            scaler.wait(30)
            summary["autoscaler"] = AutoscalerLaunch.summary(_read_stats(stats_dir / "autoscaler-1.json"), kiosk_stats)
        if fl_proc is not None:
            say("waiting for the federated-learning rounds to finish")
            rc = fl_proc.wait(opts.drain_timeout_s * 3)
            summary["fl"] = (
                _last_json(logs / "fl.log") if rc == 0 else {"error": f"fl run exited {rc}; see {logs}/fl.log"}
            )
        return UpResult(summary, run_dir)
    finally:
        if observe is not None:
            observe.stop()
        for p in procs:
            p.terminate()
        for p in procs:
            if p.popen.returncode is None:
                p.wait(15)
        if broker is not None:
            broker.stop()
