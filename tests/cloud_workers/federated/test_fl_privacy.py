"""The audit's reproductions, each on the real broker with every role running:

1. a hospital's round-1 update read off the log (decrypted here with the test's copy of the private key) is
   reproduced by its own secret and by nothing public;
2. the keyholder refuses to decrypt a round announced with fewer contributors than its own minimum, and a
   round without the DP policy it requires;
3. the published epsilon is the coordinator's own computation from the announced policy and participation,
   whatever updates and receipts claim; client noise shares are accounted (client level).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from cloud_workers.federated import CoordinatorConfig, KeyholderPolicy, UpdateAssembler
from edge_agent.federated._client_core import ClientCore
from edge_agent.federated._trainer import LocalResult
from schemas import ModelUpdate, ModelVersion, RejectReason
from streams import BusMetrics, LogReader
from streams.broker import EmbeddedBroker
from streams.federated import RoundSpec, decrypt_aggregate, history_epsilon, pack, sum_noise_multiplier
from tests.cloud_workers.federated.harness import (
    CLIENTS,
    DIM,
    DP_ROUND,
    Harness,
    LinearTrainer,
    config,
    dead_letters,
    make_keys,
    read_models,
    running,
    secret_of,
    trainers,
)

pytestmark = [pytest.mark.broker]

R = RejectReason
A, B, C, D = sorted(CLIENTS)


async def _updates(h: Harness, want: int, timeout_s: float = 30.0) -> list[ModelUpdate]:
    reader = LogReader(h.settings("coordinator"), h.keyring("coordinator"), BusMetrics("t"), worker="t-updates")
    await reader.start()
    assembler, out = UpdateAssembler(), list[ModelUpdate]()
    try:
        await reader.assign(dict.fromkeys(await reader.partitions(h.topics.updates)))
        deadline = time.monotonic() + timeout_s
        while len(out) < want and time.monotonic() < deadline:
            for event in await reader.poll(timeout_ms=200):
                done = assembler.add(event)
                if done is not None:
                    out.append(done.update)
    finally:
        await reader.stop()
    return out


async def test_an_update_is_reproduced_by_its_secret_and_by_nothing_public(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    keys = make_keys(tmp_path / "keys")
    h = Harness(broker.bootstrap, keys, tmp_path / "state")
    cfg = config(keys, h.model, rounds=1)
    tr = trainers()
    async with running(h):
        await h.launch(h.keyholder())
        await h.launch(h.aggregator())
        for cid in sorted(CLIENTS):
            await h.launch(h.client(cid, tr[cid]))
        await h.launch(h.coordinator(cfg))
        models = await read_models(h, 2)
        updates = await _updates(h, len(CLIENTS))
    assert len(models) == 2
    (mine,) = [u for u in updates if u.client_id == C]
    on_the_log = decrypt_aggregate(keys.private_key, [int.from_bytes(c, "big") for c in mine.ciphertexts])
    ann = cfg.announcement(1, 0, DIM, 0)

    def recompute(secret: bytes) -> list[int]:
        core = ClientCore(C, trainers()[C], secret)
        core.on_model(ModelVersion(model_name=h.model, version=0), np.zeros(DIM))
        return pack(core.quantize(ann).quantized, RoundSpec.from_announcement(ann).packing)

    assert recompute(secret_of(C)) == on_the_log  # the hospital itself recomputes its round exactly
    # everything public (code, data, trainer seed 7, hospital index, round, the old default seed 0): no match
    for guess in (bytes(32), (0).to_bytes(32, "big"), b"\x0b" * 32, secret_of(D)):
        assert recompute(guess) != on_the_log


@pytest.mark.parametrize("case", ["two_contributors", "no_dp_policy"])
async def test_the_keyholder_refuses_rounds_below_its_own_policy(
    broker: EmbeddedBroker, tmp_path: Path, case: str
) -> None:
    keys = make_keys(tmp_path / "keys")
    h = Harness(broker.bootstrap, keys, tmp_path / "state")
    if case == "two_contributors":  # the coordinator announces min_clients = 2; two hospitals take part
        cfg, clients, reason = (
            config(keys, h.model, rounds=1, min_clients=2, deadline_s=1.0),
            [A, B],
            R.REJECT_REASON_TOO_FEW_CONTRIBUTORS,
        )
    else:
        cfg, clients, reason = (
            config(keys, h.model, rounds=1, dp_noise_multiplier=0.0, deadline_s=1.0),
            [A, B, C],
            R.REJECT_REASON_INVALID_UPDATE,
        )
    tr = trainers()
    async with running(h):
        await h.launch(h.keyholder())  # its own policy: the default (3 contributors, DP policy required)
        await h.launch(h.aggregator())
        for cid in clients:
            await h.launch(h.client(cid, tr[cid]))
        await h.launch(h.coordinator(cfg))
        letters = await dead_letters(h.bootstrap, [h.topics.sums], want=1, timeout_s=40.0)
        models = await read_models(h, 2, timeout_s=3.0)
    assert [d.reason for d in letters] == [reason]
    assert [m.version for m in models] == [0]  # nothing was decrypted, so nothing was applied


def test_the_keyholder_minimum_is_never_below_two() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        KeyholderPolicy(min_contributors=1)
    with pytest.raises(ValueError, match=r"\[2, "):
        CoordinatorConfig(model_name="m", rounds=1, invited=("a", "b"), min_clients=1, paillier_key_id="k")


class _QuietTrainer(LinearTrainer):
    """Trains with more noise than the policy asks (so its own epsilon, on its updates, is lower)."""

    def train(self, global_params: NDArray[np.float64], round_id: int, rng: np.random.Generator) -> LocalResult:
        r = super().train(global_params, round_id, rng)
        return dataclasses.replace(r, round_dp=(3.0, 0.2, 2))


async def test_published_epsilon_is_computed_from_the_policy_not_taken_from_anyone(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    keys = make_keys(tmp_path / "keys")
    h = Harness(broker.bootstrap, keys, tmp_path / "state")
    cfg = config(keys, h.model, rounds=2, client_noise_std=0.05)
    tr: dict[str, LinearTrainer] = {**trainers(), A: _QuietTrainer(0)}
    async with running(h):
        await h.launch(h.keyholder())
        await h.launch(h.aggregator())
        for cid in sorted(CLIENTS):
            await h.launch(h.client(cid, tr[cid]))
        await h.launch(h.coordinator(cfg))
        models = await read_models(h, 3)
        updates = await _updates(h, 2 * len(CLIENTS))
    assert [m.version for m in models] == [0, 1, 2]
    final = models[-1]
    policy_eps = history_epsilon([DP_ROUND, DP_ROUND], 1e-5)
    assert final.privacy.epsilon == pytest.approx(policy_eps, rel=1e-12)
    per_client = {c.client_id: (c.rounds, c.epsilon) for c in final.privacy.clients}
    assert sorted(per_client) == sorted(CLIENTS)
    assert all(r == 2 and e == pytest.approx(policy_eps, rel=1e-12) for r, e in per_client.values())
    claimed = {u.client_id: u.epsilon for u in updates if u.round_id == 2}
    assert 0 < claimed[A] < policy_eps  # A says it spent less: not what is published
    assert final.privacy.mechanism.startswith("dp-sgd record-level")
    # the clients' noise shares on the sum, accounted client level: 4 shares of std 0.05 per round, clip 2
    z = sum_noise_multiplier(central_noise_multiplier=0.0, client_noise_std=0.05, contributors=4, clip_norm=2.0)
    assert final.central_privacy.epsilon == pytest.approx(history_epsilon([(z, 1.0, 1)] * 2, 1e-5), rel=1e-12)

    # an auditor with public keys only recomputes every figure from the log
    argv = [
        sys.executable, "-m", "medkiosk", "fl", "privacy-report", "--model", h.model, "--topic-suffix",
        h.topics.rounds.rsplit(".", 1)[1], "--bootstrap", h.bootstrap, "--keys-dir", str(keys.dirs["aggregator"]),
        "--state-dir", str(tmp_path / "auditor"),
    ]  # fmt: skip
    proc = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["ok"] and [v["version"] for v in report["versions"]] == [0, 1, 2]
    assert report["versions"][-1]["record_level"]["recomputed"][B] == pytest.approx(policy_eps, rel=1e-9)
