"""Stragglers on the real broker: a round closes at quorum + deadline without the late hospital; its late update
is dead-lettered as stale and either dropped or folded, times its staleness weight, into its next update."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from schemas import RejectReason, StragglerMode
from streams.broker import EmbeddedBroker
from tests.cloud_workers.federated.harness import (
    CLIENTS,
    Harness,
    config,
    dead_letters,
    make_keys,
    params_of,
    read_models,
    running,
    trainers,
    twin,
)

pytestmark = [pytest.mark.broker]

LATE = "fl-client-d"
ON_TIME = ["fl-client-a", "fl-client-b", "fl-client-c"]


@pytest.mark.parametrize("mode", ["drop", "fold"])
async def test_late_update_is_dropped_or_folded(broker: EmbeddedBroker, tmp_path: Path, mode: str) -> None:
    keys = make_keys(tmp_path / "keys")
    h = Harness(broker.bootstrap, keys, tmp_path / "state")
    straggler = StragglerMode.STRAGGLER_MODE_FOLD if mode == "fold" else StragglerMode.STRAGGLER_MODE_DROP
    cfg = config(keys, h.model, rounds=2, deadline_s=3.0, straggler_mode=straggler, staleness_alpha=0.5)
    tr = trainers()
    async with running(h):
        await h.launch(h.keyholder())
        await h.launch(h.aggregator())
        late = h.client(LATE, tr[LATE], delays={1: 4.0})
        for cid in ON_TIME:
            await h.launch(h.client(cid, tr[cid]))
        await h.launch(late)
        await h.launch(h.coordinator(cfg))
        models = await read_models(h, 3, timeout_s=60)
        letters = await dead_letters(h.bootstrap, [h.topics.updates], want=1)

    assert [list(m.contributors) for m in models[1:]] == [ON_TIME, sorted(CLIENTS)]
    assert [(d.reason, d.producer_id) for d in letters] == [(RejectReason.REJECT_REASON_STALE, LATE)]
    assert late.core.late_rounds == [1]
    expected = twin(cfg, trainers(), [ON_TIME, sorted(CLIENTS)], trained=[sorted(CLIENTS), sorted(CLIENTS)])
    for got, want in zip(params_of(models), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    # The two modes differ exactly by what the fold adds: the late round-1 update, weighted (1 + 1)^-0.5.
    other = twin(
        config(keys, h.model, rounds=2, deadline_s=3.0, straggler_mode=(
            StragglerMode.STRAGGLER_MODE_DROP if mode == "fold" else StragglerMode.STRAGGLER_MODE_FOLD)),
        trainers(), [ON_TIME, sorted(CLIENTS)], trained=[sorted(CLIENTS), sorted(CLIENTS)],
    )  # fmt: skip
    np.testing.assert_array_equal(expected[1], other[1])
    assert not np.allclose(expected[2], other[2])
