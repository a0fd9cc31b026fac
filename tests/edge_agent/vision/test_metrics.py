"""PAD metrics on hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.vision import auc, equal_error_rate, pad_metrics


def test_auc_with_ties_and_extremes() -> None:
    assert auc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert auc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    assert auc([0.5, 0.5], [1, 0]) == 0.5
    assert np.isnan(auc([0.5], [1]))


def test_apcer_bpcer_at_a_strict_threshold() -> None:
    scores = [0.99, 0.98, 0.5, 0.99, 0.1, 0.2]
    live = [1, 1, 1, 0, 0, 0]
    m = pad_metrics(scores, live, threshold=0.98, attack_types=[None, None, None, "print", "replay", "print"])
    assert m["apcer"] == pytest.approx(1 / 3)  # the 0.99 attack is accepted
    assert m["bpcer"] == pytest.approx(2 / 3)  # 0.98 is not *above* 0.98
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["apcer_by_type"] == {"print": 0.5, "replay": 0.0}


def test_eer_of_separable_scores_is_zero() -> None:
    eer, threshold = equal_error_rate([0.9, 0.8, 0.3, 0.2], [1, 1, 0, 0])
    assert eer == 0.0 and 0.3 <= threshold < 0.8
