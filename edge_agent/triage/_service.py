"""Rank departments for a set of symptoms: the triage model behind any inference engine, plus the red-flag
rule (any red-flag symptom puts Emergency first, whatever the model says)."""

from __future__ import annotations

import difflib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_agent.inference import EngineKind, HotSwapEngine, InferenceEngine, InferenceWorkerPool, create_engine
from edge_agent.triage._graph import normalize_symptom
from edge_agent.triage._vocab import TriageVocab
from schemas import DepartmentScore, InferenceResult

__all__ = ["MODELS_DIR", "TriageResult", "TriageService", "to_inference_result"]

MODELS_DIR = Path(__file__).resolve().parent / "models"
_VOCAB_FILE = "triage-kg.vocab.json"


@dataclass(frozen=True, slots=True)
class TriageResult:
    """One ranking. ``ranking`` is best first; with ``rule_applied`` Emergency is first with score 1.0."""

    symptoms: tuple[str, ...]
    ranking: tuple[tuple[str, float], ...]
    red_flags: tuple[str, ...]
    rule_applied: bool
    model_name: str
    model_version: str
    engine: str
    latency_ns: int


class TriageService:
    """Symptoms in, departments out. Build with ``TriageService.load()`` (the shipped demo model, engine
    chosen by ``create_engine``) or from an engine and vocabulary. An optional ``pool`` serves the async calls
    (dynamic batching across kiosk sessions); a ``HotSwapEngine`` reports the version that served each call."""

    def __init__(self, engine: InferenceEngine, vocab: TriageVocab, *, pool: InferenceWorkerPool | None = None) -> None:
        if vocab.input_name not in engine.info.inputs or vocab.output_name not in engine.info.outputs:
            raise ValueError(
                f"engine I/O {list(engine.info.inputs)} -> {list(engine.info.outputs)} does not match the vocabulary"
                f" ({vocab.input_name} -> {vocab.output_name})"
            )
        self.engine = engine
        self.vocab = vocab
        self.pool = pool
        self._index = {s: i for i, s in enumerate(vocab.symptoms)}

    @classmethod
    def load(cls, model_dir: Path | None = None, *, engine: EngineKind = "auto", **engine_opts: Any) -> TriageService:
        """The model in ``model_dir`` (default: the shipped demo model) on ``create_engine(engine, ...)``."""
        root = Path(model_dir) if model_dir is not None else MODELS_DIR
        vocab = TriageVocab.load(root / _VOCAB_FILE)
        return cls(create_engine(engine, root / vocab.files["onnx"], **engine_opts), vocab)

    def close(self) -> None:
        self.engine.close()

    # -- encoding ------------------------------------------------------------------------------------------

    def _normalize(self, symptoms: Sequence[str]) -> tuple[str, ...]:
        if isinstance(symptoms, str):
            raise TypeError("symptoms must be a list of names, not one string")
        names = tuple(dict.fromkeys(normalize_symptom(s) for s in symptoms))
        if not names:
            raise ValueError("select at least one symptom")
        unknown = [n for n in names if n not in self._index]
        if unknown:
            hints = {n: difflib.get_close_matches(n, self.vocab.symptoms, n=3) for n in unknown}
            detail = "; ".join(
                f"{n!r} (did you mean {', '.join(map(repr, h))}?)" if h else repr(n) for n, h in hints.items()
            )
            raise ValueError(f"unknown symptom(s): {detail}")
        return names

    def _multi_hot(self, normalized: Sequence[tuple[str, ...]]) -> NDArray[np.float32]:
        x = np.zeros((len(normalized), len(self.vocab.symptoms)), dtype=np.float32)
        for row, names in enumerate(normalized):
            x[row, [self._index[s] for s in names]] = 1.0
        return x

    def encode(self, symptom_sets: Sequence[Sequence[str]]) -> NDArray[np.float32]:
        """Multi-hot float32 [len(symptom_sets), n_symptoms] (raises ``ValueError`` on unknown names)."""
        return self._multi_hot([self._normalize(s) for s in symptom_sets])

    # -- ranking -------------------------------------------------------------------------------------------

    def _result(self, names: tuple[str, ...], scores: NDArray[Any], version: str, started: int) -> TriageResult:
        order = np.argsort(-scores, kind="stable")
        ranking = [(self.vocab.departments[j], float(scores[j])) for j in order]
        flags = tuple(n for n in names if n in self.vocab.red_flags)
        if flags:
            emergency = self.vocab.emergency_department
            ranking = [(emergency, 1.0), *[(d, s) for d, s in ranking if d != emergency]]
        return TriageResult(
            symptoms=names,
            ranking=tuple(ranking),
            red_flags=flags,
            rule_applied=bool(flags),
            model_name=self.vocab.model_name,
            model_version=version,
            engine=self.engine.info.kind,
            latency_ns=time.perf_counter_ns() - started,
        )

    def _feed(self, x: NDArray[np.float32]) -> Mapping[str, NDArray[np.float32]]:
        return {self.vocab.input_name: x}

    def assess_batch(self, symptom_sets: Sequence[Sequence[str]]) -> list[TriageResult]:
        """Rank many symptom sets in one engine call (batch = ``len(symptom_sets)``)."""
        started = time.perf_counter_ns()
        names = [self._normalize(s) for s in symptom_sets]
        x = self._multi_hot(names)
        if isinstance(self.engine, HotSwapEngine):
            outputs, version = self.engine.run_with_version(self._feed(x))
        else:
            outputs, version = self.engine.run(self._feed(x)), self.vocab.model_version
        scores = outputs[self.vocab.output_name]
        return [self._result(n, scores[i], version, started) for i, n in enumerate(names)]

    def assess(self, symptoms: Sequence[str]) -> TriageResult:
        """Rank departments for one set of symptoms (names as in ``vocab.symptoms``, any case)."""
        return self.assess_batch([symptoms])[0]

    async def assess_async(self, symptoms: Sequence[str]) -> TriageResult:
        """``assess`` without blocking the event loop (through ``pool`` when there is one)."""
        started = time.perf_counter_ns()
        names = self._normalize(symptoms)
        feed = self._feed(self._multi_hot([names]))
        version = self.vocab.model_version
        if self.pool is not None:
            outputs = await self.pool.submit(feed)
            if isinstance(self.pool.engine, HotSwapEngine):
                version = self.pool.engine.version  # best effort: the pool does not report per-request versions
        elif isinstance(self.engine, HotSwapEngine):
            outputs, version = await self.engine.run_async_with_version(feed)
        else:
            outputs = await self.engine.run_async(feed)
        return self._result(names, outputs[self.vocab.output_name][0], version, started)

    def rank(self, symptoms: Sequence[str], top_k: int = 3) -> list[tuple[str, float]]:
        """The ``top_k`` best departments as ``(department, score)``; Emergency first on any red flag."""
        return list(self.assess(symptoms).ranking[:top_k])

    async def rank_async(self, symptoms: Sequence[str], top_k: int = 3) -> list[tuple[str, float]]:
        return list((await self.assess_async(symptoms)).ranking[:top_k])


def to_inference_result(
    result: TriageResult,
    *,
    kiosk_id: str,
    hospital_id: str,
    request_id: str,
    synthetic: bool,
    top_k: int = 3,
) -> InferenceResult:
    """The ``schemas.v1.InferenceResult`` event for one ranking (``top_k`` departments).

    ``synthetic`` marks the EVENT as made up (simulator, demo, tests), as on every other kiosk event; a real
    patient's result is ``synthetic=False`` even though the model itself was trained on synthetic
    presentations (that is recorded in the model's vocabulary file, and ``model_version`` points to it).
    """
    return InferenceResult(
        kiosk_id=kiosk_id,
        hospital_id=hospital_id,
        request_id=request_id,
        model_name=result.model_name,
        model_version=result.model_version,
        engine=result.engine,
        symptoms=list(result.symptoms),
        ranking=[DepartmentScore(department=d, score=s) for d, s in result.ranking[:top_k]],
        latency_ns=result.latency_ns,
        synthetic=synthetic,
    )
