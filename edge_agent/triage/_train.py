"""Train the triage model on the knowledge graph plus SYNTHETIC presentations, evaluate, export.

    python -m edge_agent.triage.train --out DIR [--seed 0] [--epochs 15]

Writes ``triage-kg.onnx`` (input ``symptoms`` float32 [batch, n_symptoms], output ``department_scores``
[batch, n_departments]), ``triage-kg.pt2`` (torch.export) and ``triage-kg.pt`` (TorchScript) for the Torch
CUDA engine, and ``triage-kg.vocab.json``; prints one JSON line with the held-out metrics.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge_agent.inference import export_onnx, save_torch_program, save_torchscript
from edge_agent.triage._graph import KnowledgeGraph, load_graph
from edge_agent.triage._model import TriageKGModel, kg_loss
from edge_agent.triage._synthetic import PresentationConfig, Presentations, generate_presentations, unseen_rows
from edge_agent.triage._vocab import TriageVocab

__all__ = ["MODEL_NAME", "TrainConfig", "TrainResult", "main", "train"]

MODEL_NAME = "triage-kg"
INPUT_NAME = "symptoms"
OUTPUT_NAME = "department_scores"


@dataclass(frozen=True, slots=True)
class TrainConfig:
    seed: int = 0
    epochs: int = 15
    dim: int = 32
    lr: float = 0.01
    weight_decay: float = 1e-5
    batch_size: int = 512
    train_per_condition: int = 400
    test_per_condition: int = 100
    kg_weight: float = 1.0
    condition_weight: float = 0.5
    version: str = "1.0.0"


@dataclass(frozen=True)
class TrainResult:
    model: TriageKGModel
    vocab: TriageVocab
    metrics: dict[str, Any]
    files: dict[str, Path]


def _topk_accuracy(scores: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], k: int) -> float:
    if labels.size == 0:
        return float("nan")
    top = np.argsort(-scores, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def _fit(graph: KnowledgeGraph, data: Presentations, cfg: TrainConfig, gen: torch.Generator) -> TriageKGModel:
    model = TriageKGModel(
        len(graph.symptoms), len(graph.conditions), len(graph.departments), dim=cfg.dim, generator=gen
    )
    has_symptom = torch.zeros(len(graph.conditions), len(graph.symptoms))
    for ci, c in enumerate(graph.conditions):
        has_symptom[ci, [graph.symptom_index[s] for s in c.symptoms]] = 1.0
    department_of = torch.tensor([graph.department_index[c.department] for c in graph.conditions])
    x, cond, dept = (torch.from_numpy(a) for a in (data.x, data.condition, data.department))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(x.shape[0], generator=gen)
        for start in range(0, x.shape[0], cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            probs = model(x[idx])
            loss = torch.nn.functional.nll_loss(torch.log(probs + 1e-8), dept[idx])
            aux = torch.nn.functional.cross_entropy(model.condition_logits(x[idx]), cond[idx])
            loss = loss + cfg.condition_weight * aux
            loss = loss + cfg.kg_weight * kg_loss(model, has_symptom, department_of)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    model.eval()
    return model


def _nll(probs: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]) -> float:
    return float(-np.mean(np.log(probs[np.arange(labels.size), labels] + 1e-8)))


def _ece(probs: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], bins: int = 10) -> float:
    """Expected calibration error of the top-1 score (10 equal-width bins)."""
    conf, hit = probs.max(axis=1), probs.argmax(axis=1) == labels
    which = np.minimum((conf * bins).astype(int), bins - 1)
    return float(
        sum(
            abs(conf[which == b].mean() - hit[which == b].mean()) * np.mean(which == b)
            for b in range(bins)
            if np.any(which == b)
        )
    )


def _calibrate(model: TriageKGModel, val: Presentations) -> float:
    """Temperature scaling: the condition-softmax temperature with the lowest department NLL on ``val``."""
    best = (float("inf"), 1.0)
    x = torch.from_numpy(val.x)
    with torch.inference_mode():
        for t in np.geomspace(0.25, 8.0, 41):
            model.temperature.fill_(float(t))
            best = min(best, (_nll(model(x).numpy(), val.department), float(t)))
        model.temperature.fill_(best[1])
    return best[1]


def _evaluate(model: TriageKGModel, graph: KnowledgeGraph, train: Presentations, test: Presentations) -> dict[str, Any]:
    mask = unseen_rows(train.x, test.x)
    with torch.inference_mode():
        all_scores = model(torch.from_numpy(test.x)).numpy()
        scores = all_scores[mask]
        full = np.zeros((len(graph.conditions), len(graph.symptoms)), dtype=np.float32)
        for ci, c in enumerate(graph.conditions):
            full[ci, [graph.symptom_index[s] for s in c.symptoms]] = 1.0
        full_scores = model(torch.from_numpy(full)).numpy()
    labels = test.department[mask]
    full_labels = np.array([graph.department_index[c.department] for c in graph.conditions])
    majority = float(np.bincount(test.department, minlength=len(graph.departments)).max() / test.department.size)
    return {
        "heldout_presentations": int(mask.sum()),
        "heldout_top1": round(_topk_accuracy(scores, labels, 1), 4),
        "heldout_top3": round(_topk_accuracy(scores, labels, 3), 4),
        "test_presentations": int(test.department.size),
        "test_top1": round(_topk_accuracy(all_scores, test.department, 1), 4),
        "test_top3": round(_topk_accuracy(all_scores, test.department, 3), 4),
        "test_nll": round(_nll(all_scores, test.department), 4),
        "test_ece": round(_ece(all_scores, test.department), 4),
        "full_symptom_list_top1": round(_topk_accuracy(full_scores, full_labels, 1), 4),
        "majority_class_top1": round(majority, 4),
        "note": "all presentations are synthetic; test = a separately drawn set (a third set calibrates the "
        "temperature), heldout = the test presentations whose exact symptom set never occurs in training; model "
        "only, before the red-flag rule",
    }


def train(out_dir: Path, config: TrainConfig | None = None, graph: KnowledgeGraph | None = None) -> TrainResult:
    """Train with ``config.seed`` (every random draw comes from generators seeded by it), evaluate, export."""
    cfg = config or TrainConfig()
    graph = graph or load_graph()
    train_rng, val_rng, test_rng = np.random.default_rng(cfg.seed).spawn(3)
    gen = torch.Generator().manual_seed(cfg.seed)
    presentation = PresentationConfig()
    train_set = generate_presentations(graph, cfg.train_per_condition, train_rng, presentation)
    val_set = generate_presentations(graph, cfg.test_per_condition, val_rng, presentation)
    test_set = generate_presentations(graph, cfg.test_per_condition, test_rng, presentation)
    started = time.perf_counter()
    model = _fit(graph, train_set, cfg, gen)
    temperature = _calibrate(model, val_set)
    metrics = {
        **_evaluate(model, graph, train_set, test_set),
        "temperature": round(temperature, 4),
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    example = {INPUT_NAME: np.zeros((2, len(graph.symptoms)), np.float32)}
    files = {
        "onnx": export_onnx(model, example, out / f"{MODEL_NAME}.onnx", output_names=[OUTPUT_NAME]),
        "torch_export": save_torch_program(model, example, out / f"{MODEL_NAME}.pt2", output_names=[OUTPUT_NAME]),
        "torchscript": save_torchscript(model, example, out / f"{MODEL_NAME}.pt", output_names=[OUTPUT_NAME]),
    }
    vocab = TriageVocab(
        model_name=MODEL_NAME,
        model_version=f"{cfg.version}+g{graph.sha256[:8]}.s{cfg.seed}",
        symptoms=graph.symptoms,
        departments=graph.departments,
        red_flags=graph.red_flags,
        emergency_department="Emergency",
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        files={k: p.name for k, p in files.items()},
        body_areas=graph.body_areas,
        metrics=metrics,
        synthetic={
            "training_presentations": True,
            "evaluation_presentations": True,
            "note": "trained and evaluated on presentations generated from the knowledge graph, not on patients",
        },
        provenance={
            "graph_sha256": graph.sha256,
            "sources": "MedlinePlus health-topic pages, one per condition (edge_agent/triage/data/conditions.csv)",
            "config": asdict(cfg),
            "presentations": asdict(presentation),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    )
    vocab_path = vocab.save(out / f"{MODEL_NAME}.vocab.json")
    return TrainResult(model, vocab, metrics, {**files, "vocab": vocab_path})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the knowledge-graph triage model (synthetic presentations).")
    defaults = TrainConfig()
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--dim", type=int, default=defaults.dim)
    parser.add_argument("--train-per-condition", type=int, default=defaults.train_per_condition)
    parser.add_argument("--version", default=defaults.version)
    args = parser.parse_args(argv)
    cfg = TrainConfig(
        seed=args.seed,
        epochs=args.epochs,
        dim=args.dim,
        train_per_condition=args.train_per_condition,
        version=args.version,
    )
    result = train(args.out, cfg)
    print(
        json.dumps(
            {
                "model_version": result.vocab.model_version,
                **result.metrics,
                "files": {k: str(v) for k, v in result.files.items()},
            }
        )
    )
    return 0
