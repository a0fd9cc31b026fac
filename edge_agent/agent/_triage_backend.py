"""The kiosk's triage backend: the KG triage model on a hot-swappable engine behind a batching worker pool."""

from __future__ import annotations

from pathlib import Path

from edge_agent.agent._config import TriageSettings
from edge_agent.inference import HotSwapEngine, InferenceWorkerPool
from edge_agent.triage import TriageService, to_inference_result
from schemas import InferenceResult

__all__ = ["KioskTriage"]


class KioskTriage:
    """``TriageBackend`` for ``EdgeAgent``: ``infer``, ``resize``/``set_max_batch`` (cloud commands), and
    ``swap_model`` (new versions from ``fl.models.v1``; the old version keeps serving if the new one fails)."""

    def __init__(
        self,
        service: TriageService,
        pool: InferenceWorkerPool,
        hot: HotSwapEngine,
        *,
        kiosk_id: str,
        hospital_id: str,
        synthetic: bool,
        models_dir: Path,
    ) -> None:
        self.service = service
        self.pool = pool
        self.hot = hot
        self._kiosk_id = kiosk_id
        self._hospital_id = hospital_id
        self._synthetic = synthetic
        self._models_dir = models_dir

    @classmethod
    async def create(
        cls, settings: TriageSettings, *, kiosk_id: str, hospital_id: str, synthetic: bool, state_dir: Path
    ) -> KioskTriage:
        base = TriageService.load(settings.model_dir, engine=settings.engine)  # type: ignore[arg-type]
        hot = HotSwapEngine(base.engine, version=base.vocab.model_version)
        pool = InferenceWorkerPool(hot, workers=settings.workers, max_batch=settings.max_batch)
        await pool.start()
        service = TriageService(hot, base.vocab, pool=pool)
        return cls(
            service,
            pool,
            hot,
            kiosk_id=kiosk_id,
            hospital_id=hospital_id,
            synthetic=synthetic,
            models_dir=state_dir / kiosk_id / "models",
        )

    async def infer(self, request_id: str, symptoms: list[str]) -> InferenceResult:
        result = await self.service.assess_async(symptoms)
        return to_inference_result(
            result,
            kiosk_id=self._kiosk_id,
            hospital_id=self._hospital_id,
            request_id=request_id,
            synthetic=self._synthetic,
        )

    def resize(self, workers: int) -> None:
        self.pool.resize(workers)

    def set_max_batch(self, max_batch: int) -> None:
        self.pool.set_max_batch(max_batch)

    @property
    def queue_depth(self) -> int:
        return self.pool.stats().queue_depth

    @property
    def capacity_per_s(self) -> float:
        """Requests per second the pool can serve at its recent latency (0 until it has served some)."""
        stats = self.pool.stats()
        if not stats.latency_p50_ms:
            return 0.0
        return stats.workers * stats.max_batch * 1000.0 / stats.latency_p50_ms

    async def swap_model(self, name: str, version: int, weights: bytes) -> None:
        """Install ONNX ``weights`` as ``version``: written to disk, loaded and probed off the event loop."""
        self._models_dir.mkdir(parents=True, exist_ok=True)
        path = self._models_dir / f"{name}-v{version}.onnx"
        path.write_bytes(weights)
        await self.hot.swap(path, version=str(version))

    async def aclose(self) -> None:
        await self.pool.stop()
        self.service.close()
