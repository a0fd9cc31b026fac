"""``medkiosk trainer``: signed training requests in, signed chunked model versions out.

The service reads ``training.requests.v1`` from the beginning. A request is dead-lettered (never trained) when
its producer is not an allowed requester (UNAUTHORIZED), it has expired (STALE), or it names a manifest outside
the configured data root or a bad ROI (MALFORMED). An accepted request is trained in a worker thread, exported
as a MONAI bundle (ONNX included) and published on ``fl.models.v1`` as a :class:`~schemas.ModelVersion` whose
``weights`` are the bundle's zip (``format = "monai-bundle-zip"``), split into signed chunks, with the
validation metrics; the bundle carries the data card. Finished (and failed) request ids and the version
counter are saved in the state directory, after the version is durably in the outbox, so a restarted trainer
neither trains a finished request twice nor reuses a version number. Known window: a crash after the outbox
commit and before the state file is written retrains that request on restart and publishes its version number
a second time (at-least-once; the two carry different bundle digests, readers keep the later one).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cloud_workers.federated._publish import Publisher, check_producer
from cloud_workers.trainer._train import TrainConfig
from schemas import ModelVersion, RejectReason, TrainingRequest
from streams import FL_MODELS, BusMetrics, BusSettings, EnvelopeRejected, Keyring, LogEvent, LogReader
from streams._chunking import DEFAULT_CHUNK_SIZE

__all__ = ["BUNDLE_FORMAT", "TRAINING_REQUESTS_TOPIC", "TrainerService", "TrainerServiceConfig"]

log = logging.getLogger(__name__)

BUNDLE_FORMAT = "monai-bundle-zip"
#: The catalog's ``training.requests.v1``.
TRAINING_REQUESTS_TOPIC = "training.requests.v1"


@dataclass(kw_only=True)
class TrainerServiceConfig:
    """Who the trainer is, whom it obeys, where it reads data and how it trains by default."""

    trainer_id: str = "trainer"
    #: Producers allowed to request training; ``None``: any registered cloud service (no hospital).
    requesters: tuple[str, ...] | None = None
    requests_topic: str = TRAINING_REQUESTS_TOPIC
    models_topic: str = FL_MODELS.name
    #: Manifests must lie under this folder (a request cannot make the trainer read anything else).
    data_root: Path = Path("data")
    #: The text encoder used when a request names none (must also lie under ``data_root`` when a request names one).
    text_encoder_dir: Path | None = None
    #: Defaults of every run; a request overrides epochs, ROI, learning rate, seed and fine-tuning.
    defaults: dict[str, Any] = field(default_factory=dict)
    chunk_size: int = DEFAULT_CHUNK_SIZE


@dataclass
class _State:
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_version: int = 1

    @classmethod
    def load(cls, path: Path) -> _State:
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        return cls(done=dict(data["done"]), next_version=int(data["next_version"]))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"done": self.done, "next_version": self.next_version}, indent=1))
        os.replace(tmp, path)


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


class TrainerService:
    """The trainer role (see the module docstring)."""

    def __init__(self, config: TrainerServiceConfig, settings: BusSettings, keyring: Keyring, metrics: BusMetrics):
        self.config = config
        self.keyring = keyring
        self.metrics = metrics
        root = settings.state_dir / config.trainer_id
        self._state_path = root / "trainer_state.json"
        self._runs = root / "runs"
        self.state = _State.load(self._state_path)
        self.reader = LogReader(settings, keyring, metrics, worker=config.trainer_id)
        self.publisher = Publisher(root / "outbox.db", config.trainer_id, settings, keyring, metrics)
        self.published: list[ModelVersion] = []
        self.failed = 0
        self.trained = 0
        self.busy = False

    async def start(self, stop: asyncio.Event | None = None) -> None:
        """Ship what an earlier run left in the outbox, then read the requests topic from the beginning."""
        await self.publisher.start(stop)
        await self.reader.start()
        tps = await self.reader.partitions(self.config.requests_topic)
        await self.reader.assign(dict.fromkeys(tps))

    async def stop(self) -> None:
        """Ship what is left and disconnect."""
        await self.publisher.stop()
        await self.reader.stop()

    async def run(self, stop: asyncio.Event) -> None:
        """Handle requests until ``stop``."""
        while not stop.is_set():
            for event in await self.reader.poll(timeout_ms=200):
                await self.handle(event)

    async def handle(self, event: LogEvent) -> None:
        """One verified envelope from the requests topic."""
        try:
            request = self._check(event)
        except EnvelopeRejected as exc:
            await self.reader.reject(event.record, exc)
            return
        if request is None:
            return
        self.busy = True
        try:
            await self._train_and_publish(request)
        finally:
            self.busy = False

    def _check(self, event: LogEvent) -> TrainingRequest | None:
        check_producer(event, self.keyring, self.config.requesters, "training requests")
        msg = event.message
        env = event.envelope
        if not isinstance(msg, TrainingRequest):
            raise EnvelopeRejected(RejectReason.REJECT_REASON_MALFORMED, f"not a TrainingRequest: {env.schema}")
        if msg.request_id in self.state.done:
            log.info("%s: request %s already handled", self.config.trainer_id, msg.request_id)
            return None
        if not msg.request_id or not msg.model_name or not msg.manifest:
            raise EnvelopeRejected(RejectReason.REJECT_REASON_MALFORMED, "request_id, model_name and manifest needed")
        if msg.expires_at and msg.expires_at < time.time_ns():
            raise EnvelopeRejected(RejectReason.REJECT_REASON_STALE, f"request {msg.request_id} expired")
        root = self.config.data_root
        for name, value in (("manifest", msg.manifest), ("text_encoder_dir", msg.text_encoder_dir)):
            if value and not _inside(root / value, root):
                raise EnvelopeRejected(
                    RejectReason.REJECT_REASON_MALFORMED, f"{name} {value!r} is outside the data root"
                )
        if msg.roi and (len(msg.roi) != 3 or min(msg.roi) < 8 or max(msg.roi) > 1024):
            raise EnvelopeRejected(RejectReason.REJECT_REASON_MALFORMED, f"bad roi {list(msg.roi)}")
        if msg.epochs > 1000 or not 0 <= msg.learning_rate < 1:
            raise EnvelopeRejected(RejectReason.REJECT_REASON_MALFORMED, "epochs or learning_rate out of range")
        return msg

    def train_config(self, req: TrainingRequest) -> TrainConfig:
        """The run a request asks for, on top of the service defaults."""
        root = self.config.data_root
        text = root / req.text_encoder_dir if req.text_encoder_dir else self.config.text_encoder_dir
        if text is None:
            raise ValueError("no text encoder: the request names none and the trainer has no default")
        base = TrainConfig(manifest=root / req.manifest, text_encoder_dir=text, out=self._runs / req.request_id,
                           progress_bar=False)  # fmt: skip
        cfg = replace(base, **self.config.defaults)
        overrides: dict[str, Any] = {"fine_tune": req.fine_tune_encoders, "seed": int(req.seed)}
        if req.epochs:
            overrides["epochs"] = int(req.epochs)
        if req.roi:
            overrides["roi"] = tuple(int(v) for v in req.roi)
        if req.learning_rate:
            overrides["lr"] = float(req.learning_rate)
        return replace(cfg, **overrides)

    async def _train_and_publish(self, req: TrainingRequest) -> None:
        started = time.monotonic()
        try:
            cfg = self.train_config(req)
            version = self.state.next_version
            mv = await asyncio.to_thread(_train_export, cfg, req.model_name, version)
        except Exception as exc:  # a bad manifest or a failed run must not stop the service
            log.error("%s: request %s failed: %s", self.config.trainer_id, req.request_id, exc)
            self.failed += 1
            self.metrics.reject(self.config.requests_topic, "training_failed")
            self.state.done[req.request_id] = {"status": "failed", "error": str(exc)[:2000]}
            await asyncio.to_thread(self.state.save, self._state_path)
            return
        requests = Publisher.chunked(
            self.config.models_topic, req.model_name.encode(), mv, chunk_size=self.config.chunk_size
        )
        await self.publisher.put(requests)  # durable before the request counts as done
        self.state.done[req.request_id] = {"status": "published", "version": mv.version}
        self.state.next_version = mv.version + 1
        await asyncio.to_thread(self.state.save, self._state_path)
        self.published.append(mv)
        self.trained += 1
        log.info("%s: published %s v%d (%d chunks) in %.1fs", self.config.trainer_id, req.model_name, mv.version,
                 len(requests), time.monotonic() - started)  # fmt: skip

    def stats(self) -> dict[str, object]:
        """Counters for the stats file."""
        return {
            "service": self.config.trainer_id,
            "trained": self.trained,
            "failed": self.failed,
            "busy": self.busy,
            "next_version": self.state.next_version,
            "rejected": self.reader.rejected,
            "outbox_depth": self.publisher.depth(),
        }


def _train_export(cfg: TrainConfig, model_name: str, version: int) -> ModelVersion:
    """Train, export the best checkpoint as a bundle, and wrap its zip in a model version."""
    from cloud_workers.trainer._export import bundle_zip, save_bundle
    from cloud_workers.trainer._lightning import MultimodalModule
    from cloud_workers.trainer._train import train_multimodal

    result = train_multimodal(cfg)
    module = MultimodalModule.load_from_checkpoint(str(result.best_checkpoint), weights_only=False)
    card = cfg.manifest.parent / "DATA_CARD.md"
    bundle = save_bundle(module.net.eval(), cfg.out / "bundle", version=f"{version}.0.0", metrics=result.metrics,
                         data_card=card if card.is_file() else None)  # fmt: skip
    data = bundle_zip(bundle)
    metrics = dict(result.metrics)
    metrics["synthetic_data"] = 1.0 if card.is_file() and "SYNTHETIC" in card.read_text() else 0.0
    metrics["epochs_run"] = float(result.epochs_run)
    return ModelVersion(
        model_name=model_name,
        version=version,
        weights=data,
        weights_sha256=hashlib.sha256(data).digest(),
        format=BUNDLE_FORMAT,
        metrics=metrics,
    )
