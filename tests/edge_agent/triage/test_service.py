"""The shipped demo model through TriageService: red-flag rule, sanity rankings, errors, async, pool, the
InferenceResult event, and hot swap reporting the version that served a request."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from edge_agent.inference import HotSwapEngine, InferenceWorkerPool, OnnxRuntimeEngine
from edge_agent.triage import MODELS_DIR, TriageService, TriageVocab, load_graph, to_inference_result
from schemas import InferenceResult


@pytest.fixture(scope="module")
def service() -> TriageService:
    return TriageService.load(engine="onnxruntime", threads=1)


def test_shipped_model_is_small_and_matches_the_graph() -> None:
    vocab = TriageVocab.load(MODELS_DIR / "triage-kg.vocab.json")
    graph = load_graph()
    assert vocab.symptoms == graph.symptoms and vocab.departments == graph.departments
    assert vocab.red_flags == graph.red_flags
    assert vocab.provenance["graph_sha256"] == graph.sha256, "retrain: python -m edge_agent.triage.train --out ..."
    assert sum(p.stat().st_size for p in MODELS_DIR.iterdir()) < 2 * 1024 * 1024
    # Reported, and asserted only above a sanity floor: these are synthetic presentations.
    assert vocab.metrics["heldout_top1"] > 0.6 and vocab.metrics["heldout_top3"] > 0.85
    assert vocab.synthetic["training_presentations"] is True


@pytest.mark.parametrize("red_flag", ["chest pain", "slurred speech", "severe bleeding", "thoughts of self-harm"])
def test_red_flags_route_to_emergency_first(service: TriageService, red_flag: str) -> None:
    result = service.assess([red_flag, "itchy skin"])
    assert result.ranking[0] == ("Emergency", 1.0)
    assert result.rule_applied and result.red_flags == (red_flag,)
    assert [d for d, _ in result.ranking].count("Emergency") == 1
    assert service.rank([red_flag])[0][0] == "Emergency"


@pytest.mark.parametrize(
    ("symptoms", "department"),
    [
        (["itchy rash"], "Dermatology"),
        (["itchy skin", "dry skin"], "Dermatology"),
        (["wheezing", "chest tightness"], "Pulmonology"),
        (["red eye", "eye discharge"], "Ophthalmology"),
        (["painful urination", "urgent need to urinate"], "Urology"),
        (["heartburn", "acid regurgitation"], "Gastroenterology"),
        (["low mood", "loss of interest"], "Psychiatry"),
        (["excessive thirst", "frequent urination"], "Endocrinology"),
        (["ear pain", "ear discharge"], "ENT"),
        (["tremor", "slow movement"], "Neurology"),
    ],
)
def test_sanity_rankings(service: TriageService, symptoms: list[str], department: str) -> None:
    top3 = [d for d, _ in service.rank(symptoms, top_k=3)]
    assert department in top3, (symptoms, top3)
    assert not service.assess(symptoms).rule_applied


def test_scores_are_ranked_probabilities(service: TriageService) -> None:
    ranking = service.assess(["fever", "cough"]).ranking
    scores = [s for _, s in ranking]
    assert len(ranking) == 15 and scores == sorted(scores, reverse=True)
    assert abs(sum(scores) - 1.0) < 1e-4


def test_bad_input(service: TriageService) -> None:
    with pytest.raises(ValueError, match=r"unknown symptom.*'chest pian'.*did you mean 'chest pain'"):
        service.rank(["chest pian"])
    with pytest.raises(ValueError, match="at least one"):
        service.rank([])
    with pytest.raises(TypeError):
        service.rank("chest pain")
    assert service.assess([" Itchy  RASH", "itchy rash"]).symptoms == ("itchy rash",)


async def test_async_batch_and_pool_agree(service: TriageService) -> None:
    cases = [["itchy rash"], ["fever", "cough"], ["chest pain"], ["joint pain", "bruising"]]
    sync = [service.assess(c).ranking for c in cases]
    assert [r.ranking for r in service.assess_batch(cases)] == sync
    assert [await service.rank_async(c, top_k=15) for c in cases] == [list(r) for r in sync]
    async with InferenceWorkerPool(service.engine, workers=2, max_batch=8) as pool:
        pooled = TriageService(service.engine, service.vocab, pool=pool)
        results = await asyncio.gather(*(pooled.assess_async(c) for c in cases * 10))
    for i, result in enumerate(results):
        assert [d for d, _ in result.ranking] == [d for d, _ in sync[i % len(cases)]]


def test_inference_result_event(service: TriageService) -> None:
    result = service.assess(["chest pain", "nausea"])
    event = to_inference_result(result, kiosk_id="k1", hospital_id="H1", request_id="r-1", synthetic=True)
    assert isinstance(event, InferenceResult)
    decoded = InferenceResult.FromString(event.SerializeToString())
    assert (decoded.kiosk_id, decoded.hospital_id, decoded.request_id) == ("k1", "H1", "r-1")
    assert decoded.model_name == "triage-kg" and decoded.model_version == service.vocab.model_version
    assert decoded.engine == "onnxruntime" and decoded.synthetic
    assert list(decoded.symptoms) == ["chest pain", "nausea"]
    assert decoded.ranking[0].department == "Emergency" and len(decoded.ranking) == 3
    assert decoded.latency_ns == result.latency_ns > 0


async def test_hot_swapped_model_reports_its_version(tmp_path: Path) -> None:
    vocab = TriageVocab.load(MODELS_DIR / "triage-kg.vocab.json")
    onnx = MODELS_DIR / vocab.files["onnx"]
    copy = tmp_path / "v2" / "triage-kg.onnx"
    copy.parent.mkdir()
    shutil.copy(onnx, copy)
    hot = HotSwapEngine(OnnxRuntimeEngine(onnx), version=vocab.model_version)
    svc = TriageService(hot, vocab)
    assert svc.assess(["itchy rash"]).model_version == vocab.model_version
    await hot.swap(copy, version="2.0.0")
    assert svc.assess(["itchy rash"]).model_version == "2.0.0"
    assert (await svc.assess_async(["itchy rash"])).model_version == "2.0.0"
