"""Scale-out: updates cut into shards, shards spread over partitions, two aggregator instances each adding up
the shards in their partitions; the keyholder decrypts each shard and the coordinator applies the whole."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from cloud_workers.federated import partition_for
from streams.broker import EmbeddedBroker
from streams.federated import RoundSpec, update_key
from tests.cloud_workers.federated.harness import (
    CLIENTS,
    Harness,
    config,
    make_keys,
    params_of,
    read_models,
    running,
    trainers,
    twin,
)

pytestmark = [pytest.mark.broker]

DIM = 80  # two ciphertexts of a 1024-bit key at 16 bits for 4 clients: two shards


async def test_two_aggregators_add_up_two_shards(broker: EmbeddedBroker, tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    # A model name whose round-1 shards land in different partitions (of 2): one per aggregator instance.
    model = next(
        f"sharded-{i}"
        for i in itertools.count()
        if {partition_for(update_key(f"sharded-{i}", 1, s), 2) for s in (0, 1)} == {0, 1}
    )
    h = Harness(broker.bootstrap, keys, tmp_path / "state", model=model)
    cfg = config(keys, h.model, rounds=2, num_shards=2)
    assert RoundSpec.from_announcement(cfg.announcement(1, 0, DIM, 0)).num_shards == 2
    tr = trainers(DIM)
    aggregators = [h.aggregator(0, 2), h.aggregator(1, 2)]
    async with running(h):
        await h.launch(h.keyholder())
        for a in aggregators:
            await h.launch(a)
        await h.launch(h.coordinator(cfg, dim=DIM))
        for cid in CLIENTS:
            await h.launch(h.client(cid, tr[cid], chunk_size=4096))
        models = await read_models(h, 3)
    for shard in (0, 1):  # each shard of round 1 was added up by exactly the instance owning its partition
        owner = partition_for(update_key(model, 1, shard), 2)
        assert [(1, shard) in a.state.summed for a in aggregators] == [owner == 0, owner == 1]
    expected = twin(cfg, trainers(DIM), [sorted(CLIENTS)] * 2, dim=DIM)
    for got, want in zip(params_of(models), expected, strict=True):
        np.testing.assert_array_equal(got, want)
