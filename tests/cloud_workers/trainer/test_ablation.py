"""Gating ablation on the switch set with a conflicting distractor (``ABLATION_SET``): encoded once with frozen
encoders (a seeded random tiny Swin at the test ROI, the pretrained MiniLM report encoder), then gated fusion and
plain concatenation (which also sees the switch, through the same policy net) train under the same budget and
seeds. Gated fusion is more accurate on held-out cases, and its gates open the modality the switch names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from cloud_workers.trainer._ablation import ABLATION_SET, AblationResult, ablation_features, gating_ablation
from streams.multimodal import CaseFeatures
from tests.streams.multimodal.helpers import minilm_dir, tiny_config

pytestmark = [pytest.mark.slow]
N_TRAIN = 96


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread: these small matrices gain nothing from two, and two contend badly on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> tuple[CaseFeatures, list[dict[str, Any]]]:
    root = tmp_path_factory.mktemp("ablation")
    features = ablation_features(root, tiny_config(minilm_dir(), text_hidden=384))
    return features, [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def result(encoded: tuple[CaseFeatures, list[dict[str, Any]]]) -> AblationResult:
    features, _ = encoded
    cfg = tiny_config(minilm_dir(), text_hidden=384, policy_features=ABLATION_SET.policy_features)
    return gating_ablation(features.subset(np.arange(N_TRAIN)), features.subset(np.arange(N_TRAIN, features.n)), cfg)


def _ridge_accuracy(x: NDArray[np.float32], flag: NDArray[np.int64]) -> float:
    """Held-out accuracy of a ridge probe trained on the first N_TRAIN cases."""
    xc = x.astype(np.float64) - x[:N_TRAIN].mean(axis=0)
    target = 2.0 * flag - 1.0
    w = np.linalg.solve(xc[:N_TRAIN].T @ xc[:N_TRAIN] + np.eye(x.shape[1]), xc[:N_TRAIN].T @ target[:N_TRAIN])
    return float(np.mean((xc[N_TRAIN:] @ w > 0) == (flag[N_TRAIN:] == 1)))


def test_each_frozen_encoder_carries_its_modality(encoded: tuple[CaseFeatures, list[dict[str, Any]]]) -> None:
    """The ablation measures the fusion, not an encoder that sees nothing: a linear probe reads the lesion from the
    image features and the stated finding from the text features of held-out cases, while either modality alone,
    read the same way whatever the switch, agrees with the label only about 1 - 0.8 / 2 = 60 % of the time."""
    features, rows = encoded
    lesion = np.array([r["image_lesion"] for r in rows], dtype=np.int64)
    finding = np.array([r["report_finding"] for r in rows], dtype=np.int64)
    assert _ridge_accuracy(features.img, lesion) >= 0.9
    assert _ridge_accuracy(features.txt, finding) >= 0.9
    assert np.mean(lesion == features.y) < 0.7 and np.mean(finding == features.y) < 0.7
    switch = features.policy[:, 0] == 1
    assert np.array_equal(features.y[switch], lesion[switch]) and np.array_equal(features.y[~switch], finding[~switch])


def test_gated_fusion_beats_concatenation_on_held_out_cases(result: AblationResult) -> None:
    assert result.n_train == N_TRAIN and result.n_test == ABLATION_SET.cases - N_TRAIN
    cap = 1 - ABLATION_SET.distractor_conflict / 2  # the best accuracy without reading the switch
    assert result.gated.test_accuracy >= cap + 0.15, result
    assert result.gated.test_accuracy >= result.concat.test_accuracy + 0.1, result
    assert min(result.gated.test_accuracies) > max(result.concat.test_accuracies) - 0.05, result


def test_gate_values_follow_the_switch(result: AblationResult) -> None:
    image, text = result.gated.gate_image, result.gated.gate_text
    assert image[1] > image[0] + 0.1 and text[0] > text[1] + 0.1, result.gated  # switch 1: the image carries it
    assert image[1] > text[1] and text[0] > image[0], result.gated
    assert result.concat.gate_image == {0: 1.0, 1: 1.0}  # concat has no gate
