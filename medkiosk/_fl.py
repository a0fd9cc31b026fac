"""``medkiosk fl run``: a whole federated training on this machine, every role its own OS process.

Broker (embedded unless a bootstrap is given) -> topics -> keys (role-scoped copies; the Paillier private
key only in the keyholder's) -> keyholder, aggregator, coordinator, one client per hospital -> progress
per model version (test accuracy of the global model, epsilon) -> PNG -> one JSON line.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cloud_workers.federated import decode_weights, export_fl_role, init_fl_keys
from medkiosk._up import _Proc, _read_stats
from schemas import Chunk, ModelVersion
from streams import FL_MODELS, BusMetrics, BusSettings, Keyring, LogReader, Reassembler, apply_topics, topics_for
from streams.broker import free_port
from streams.federated import standardiser_from_metrics

__all__ = ["FlRunOptions", "FlRunResult", "run_fl"]

COORDINATOR, MODELS, AGGREGATOR, KEYHOLDER = (
    "fl-coordinator",
    "fl-coordinator-models",
    "fl-aggregator-0",
    "fl-keyholder",
)


@dataclass(kw_only=True)
class FlRunOptions:
    hospitals: int = 5
    rounds: int = 20
    bootstrap: str | None = None
    storage: str = "memory"
    state_dir: Path = Path(".medkiosk")
    key_bits: int = 2048
    min_clients: int | None = None
    deadline_s: float = 30.0
    straggler: str = "drop"
    mask_fraction: float = 0.5
    shards: int = 1
    central_noise: float = 0.0
    private: bool = True
    seed: int = 0
    model: str = "breast-cancer"
    #: "secure-sum": round 0 is the statistics round and every hospital (and the evaluator) standardises with
    #: the federation's mean/std published with model version 0; "per-hospital": each with its own.
    standardise: str = "secure-sum"
    plot: Path | None = None
    timeout_s: float = 900.0
    progress: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr, flush=True))


@dataclass
class FlRunResult:
    summary: dict[str, Any]
    history: list[dict[str, float]]
    run_dir: Path
    plot: Path


def _plot(history: list[dict[str, float]], centralized: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [h["round"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(rounds, [h["accuracy"] for h in history], marker="o", label="federated (test accuracy)")
    ax.axhline(centralized, color="grey", linestyle="--", label="centralized, non-private")
    ax.set_xlabel("round")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0.0, 1.0)
    eps = [h["epsilon"] for h in history]
    if all(math.isfinite(e) for e in eps):
        ax2 = ax.twinx()
        ax2.plot(rounds, eps, color="tab:red", marker=".", label="ε (max over hospitals)")
        ax2.set_ylabel("ε")
        ax2.legend(loc="lower right")
    ax.legend(loc="lower left")
    ax.set_title("medkiosk federated learning: accuracy and privacy per round")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


async def _watch_models(
    settings: BusSettings, keyring: Keyring, model: str, rounds: int, on_model: Callable[[ModelVersion], None],
    alive: Callable[[], None], timeout_s: float,
) -> None:  # fmt: skip
    reader = LogReader(settings, keyring, BusMetrics("fl-run"), worker="fl-run")
    await reader.start()
    reassembler, seen = Reassembler(), -1
    try:
        await reader.assign(dict.fromkeys(await reader.partitions(FL_MODELS.name)))
        deadline = time.monotonic() + timeout_s
        while seen < rounds:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no model version {seen + 1} after {timeout_s:g} s")
            alive()
            for event in await reader.poll(timeout_ms=200):
                done = reassembler.add(event.message) if isinstance(event.message, Chunk) else None
                mv = ModelVersion.FromString(done.payload) if done is not None else None
                if mv is not None and mv.model_name == model and mv.version > seen:
                    seen = mv.version
                    on_model(mv)
    finally:
        await reader.stop()


def _wait_ready(procs: list[_Proc], stats: Path, logs: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(_read_stats(stats / f"{p.name}.json").get("ready") for p in procs):
        for p in procs:
            if p.popen.poll() is not None:
                raise RuntimeError(f"{p.name} exited early (code {p.popen.returncode}); see {logs / p.name}.log")
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes not ready after {timeout_s:g} s; see {logs}")
        time.sleep(0.2)


def run_fl(opts: FlRunOptions) -> FlRunResult:
    from edge_agent.federated._centralized import centralized_baseline
    from edge_agent.federated._client_cli import breast_cancer_trainer
    from edge_agent.federated._trainer import FederationStandardised

    say = opts.progress
    run_dir = opts.state_dir / "fl"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    for sub in ("logs", "stats", "state"):
        (run_dir / sub).mkdir(parents=True)
    hospitals = [f"H{i + 1:02d}" for i in range(opts.hospitals)]
    clients = {f"fl-client-{h}": h for h in hospitals}
    min_clients = opts.min_clients or min(3, opts.hospitals)
    if opts.hospitals < 2 or min_clients < 2:
        raise ValueError("federated learning needs at least 2 hospitals and min_clients >= 2 (secure aggregation "
                         "of one update is that update in the clear)")  # fmt: skip

    evaluator = breast_cancer_trainer(hospital_index=0, hospitals=opts.hospitals, rounds=opts.rounds, seed=opts.seed,
                                      private=False, standardise=opts.standardise)  # fmt: skip
    init = evaluator.initial_params(opts.seed)
    np.save(run_dir / "init.npy", init)
    from edge_agent.federated._config import FlTrainingConfig
    from edge_agent.federated._data import load_federated_breast_cancer

    cfg = FlTrainingConfig()
    split = load_federated_breast_cancer(
        opts.hospitals,
        alpha=cfg.dirichlet_alpha,
        seed=opts.seed,
        test_fraction=cfg.test_fraction,
        min_per_client=cfg.min_per_client,
        standardise="none",
        validation_fraction=cfg.validation_fraction,
    )
    example_scale = split.train.n / opts.hospitals
    dp_args: list[str] = ["--no-dp-required"]
    policy_args: list[str] = []
    if opts.private:
        from edge_agent.federated._privacy import calibrated_noise_multiplier

        # Every hospital takes batches_per_epoch Poisson batches per epoch, so one policy fits all of them; each
        # calibrates its own noise with these very numbers (so it meets the policy exactly).
        rate, steps = 1.0 / cfg.batches_per_epoch, cfg.local_epochs * cfg.batches_per_epoch
        sigma = calibrated_noise_multiplier(cfg.target_epsilon, cfg.delta, rate, opts.rounds * steps)
        policy_args = [
            "--dp-noise-multiplier", repr(sigma), "--dp-max-sample-rate", repr(rate), "--dp-max-steps", str(steps),
            "--dp-max-grad-norm", repr(cfg.max_grad_norm), "--dp-delta", repr(cfg.delta),
        ]  # fmt: skip
        dp_args = ["--max-epsilon", repr(cfg.target_epsilon * (1 + 1e-9)), "--max-delta", repr(cfg.delta)]
        say(f"DP policy: noise multiplier {sigma:.4f}, sample rate {rate:.4f}, {steps} steps per round, clip "
            f"{cfg.max_grad_norm}: epsilon <= {cfg.target_epsilon}, delta {cfg.delta}")  # fmt: skip
    centralized = centralized_baseline(opts.seed, cfg)
    say(f"data: {split.train.n} training rows over {opts.hospitals} hospitals (Dirichlet α={cfg.dirichlet_alpha}), "
        f"{split.test.n} test rows; centralized non-private accuracy {centralized:.3f}")  # fmt: skip

    broker = None
    bootstrap = opts.bootstrap
    if bootstrap is None:
        from streams.broker import EmbeddedBroker, EmbeddedBrokerConfig

        storage: Any = opts.storage
        broker = EmbeddedBroker(
            EmbeddedBrokerConfig(port=free_port(), state_dir=opts.state_dir / "fl-broker", storage=storage)
        )
        broker.start()
        bootstrap = broker.bootstrap
        say(f"broker: embedded Tansu on {bootstrap} ({opts.storage} storage)")
    procs: list[_Proc] = []
    try:
        keys_root = run_dir / "keys" / "all"
        t0 = time.monotonic()
        init_fl_keys(keys_root, clients=clients, services=[COORDINATOR, MODELS, AGGREGATOR, KEYHOLDER],
                     key_bits=opts.key_bits)  # fmt: skip
        roles = run_dir / "keys"
        export_fl_role(keys_root, roles / "coordinator", producers=[COORDINATOR, MODELS], domains=["fl"])
        export_fl_role(keys_root, roles / "aggregator", producers=[AGGREGATOR])
        export_fl_role(keys_root, roles / "keyholder", producers=[KEYHOLDER], domains=["fl"], private_key=True)
        export_fl_role(keys_root, roles / "observer")
        for cid in clients:
            export_fl_role(keys_root, roles / cid, producers=[cid], client_secret=True)
        say(f"keys: {opts.key_bits}-bit Paillier pair ({time.monotonic() - t0:.1f} s); private key only in "
            f"{roles / 'keyholder'}")  # fmt: skip
        settings = BusSettings(bootstrap_servers=bootstrap, keys_dir=roles / "observer", state_dir=run_dir / "state")
        asyncio.run(apply_topics(settings, topics_for([])))

        # one intra-op thread per process: the models are tiny and every role is its own process
        env = {**os.environ, "MEDKIOSK_BOOTSTRAP_SERVERS": bootstrap, "MEDKIOSK_STATE_DIR": str(run_dir / "state"),
               "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}  # fmt: skip
        allow = ["--aggregator", AGGREGATOR, "--keyholder", KEYHOLDER, "--model", opts.model]

        def common(name: str, keys: str) -> list[str]:
            return ["--keys-dir", str(roles / keys), "--stats-file", str(run_dir / "stats" / f"{name}.json")]

        logs = run_dir / "logs"
        keyholder_argv = ["fl", "keyholder", *allow, "--min-contributors", str(min_clients), *dp_args]
        procs.append(_Proc(KEYHOLDER, [*keyholder_argv, *common(KEYHOLDER, "keyholder")], env, logs))
        procs.append(_Proc(AGGREGATOR, ["fl", "aggregator", *allow, *common(AGGREGATOR, "aggregator")], env, logs))
        coordinator_argv = [
            "fl", "coordinator", *allow, "--rounds", str(opts.rounds), "--client", ",".join(clients),
            "--min-clients", str(min_clients), "--deadline", str(opts.deadline_s), "--init-params",
            str(run_dir / "init.npy"), "--clip-norm", str(cfg.update_clip), "--quant-bits", str(cfg.quant_bits),
            "--mask-fraction", str(opts.mask_fraction), "--shards", str(opts.shards), "--straggler", opts.straggler,
            "--example-scale", str(example_scale), "--server-lr", str(cfg.server_lr), "--central-noise",
            str(opts.central_noise), "--seed", str(opts.seed), "--mask", "ema-explore", *policy_args,
            *common(COORDINATOR, "coordinator"),
        ]  # fmt: skip
        if opts.standardise == "secure-sum":
            coordinator_argv += ["--stats-features", str(split.test.n_features)]
        for i, (cid, hospital) in enumerate(clients.items()):
            argv = [
                "fl", "client", "--client-id", cid, "--hospital", hospital, "--model", opts.model,
                "--trainer-arg", f"hospital_index={i}", "--trainer-arg",
                f"hospitals={opts.hospitals}", "--trainer-arg", f"rounds={opts.rounds}", "--trainer-arg",
                f"seed={opts.seed}", "--trainer-arg", f"private={'true' if opts.private else 'false'}",
                "--trainer-arg", f"standardise={opts.standardise}", *common(cid, cid),
            ]  # fmt: skip
            procs.append(_Proc(cid, argv, env, logs))
        _wait_ready(procs, run_dir / "stats", logs, timeout_s=180.0)
        say(f"keyholder, aggregator and {len(clients)} clients are ready; starting the coordinator")
        coordinator = _Proc(COORDINATOR, coordinator_argv, env, logs)
        procs.append(coordinator)

        history: list[dict[str, float]] = []
        started = time.monotonic()

        def on_model(mv: ModelVersion) -> None:
            if mv.version == 0 and opts.standardise == "secure-sum":  # the test site uses the published standardiser
                found = standardiser_from_metrics(mv.metrics)
                if found is None or not isinstance(evaluator, FederationStandardised):
                    raise RuntimeError("model version 0 carries no standardiser")
                evaluator.set_standardiser(*found)
                rows = mv.metrics["standardiser.rows"]
                say(f"[round  0/{opts.rounds}] statistics round: {rows:.0f} rows of {len(mv.contributors)} "
                    "hospitals, securely summed: the federation's mean and std published")  # fmt: skip
            metrics = evaluator.evaluate(decode_weights(bytes(mv.weights)))
            entry = {
                "round": float(mv.round_id),
                "accuracy": float(metrics["accuracy"]),
                "epsilon": float(mv.privacy.epsilon),
                "delta": float(mv.privacy.delta),
                "round_s": float(mv.metrics.get("round_s", 0.0)),
                "contributors": float(len(mv.contributors)),
            }
            history.append(entry)
            if mv.version == 0:
                say(f"[round  0/{opts.rounds}] accuracy {entry['accuracy']:.3f} (initial model)")
            else:
                say(
                    f"[round {mv.round_id:2d}/{opts.rounds}] accuracy {entry['accuracy']:.3f}"
                    f"  ε {entry['epsilon']:.2f}  contributors {len(mv.contributors)}"
                    f"  round {entry['round_s']:.2f} s  [{time.monotonic() - started:.0f} s]"
                    + (f"  central ε {mv.central_privacy.epsilon:.2f}" if mv.HasField("central_privacy") else "")
                )

        def alive() -> None:
            for p in procs:
                if p.popen.poll() is not None and not (p is coordinator and p.popen.returncode == 0):
                    raise RuntimeError(f"{p.name} exited (code {p.popen.returncode}); see {logs / p.name}.log")

        observer = Keyring.load(roles / "observer")
        asyncio.run(_watch_models(settings, observer, opts.model, opts.rounds, on_model, alive, opts.timeout_s))
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        client_stats = [_read_stats(run_dir / "stats" / f"{cid}.json") for cid in clients]
        rounds_done = [h for h in history if h["round"] > 0]
        final = rounds_done[-1] if rounds_done else history[-1]
        plot = opts.plot or run_dir / "fl_run.png"
        _plot(rounds_done or history, centralized, plot)
        say(f"plot: {plot}")
        summary = {
            "rounds": len(rounds_done),
            "accuracy": round(final["accuracy"], 4),
            "centralized_accuracy": round(centralized, 4),
            "epsilon": round(final["epsilon"], 3) if math.isfinite(final["epsilon"]) else None,
            "delta": final["delta"],
            "bytes_per_update": max((int(s.get("bytes_per_update", 0)) for s in client_stats), default=0),
            "round_s_p50": round(statistics.median(h["round_s"] for h in rounds_done), 3) if rounds_done else 0.0,
        }
        return FlRunResult(summary, history, run_dir, plot)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            if p.popen.returncode is None:
                p.wait(15)
        if broker is not None:
            broker.stop()
