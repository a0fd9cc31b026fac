"""A hospital client killed with SIGKILL right after its update and state were committed (round 1), and right
before (round 2), then restarted: its state and its update are one durable step, so it neither waits forever nor
sends a round twice, the aggregate of every round is exactly the uninterrupted one, and its privacy accountant
(persisted with the residual) remembers every round it trained."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edge_agent.federated._client_core import ClientCore
from edge_agent.federated._client_state import load_outbox_state
from streams import Outbox
from streams.broker import EmbeddedBroker
from streams.federated import CLIENT_SECRET_FILE
from tests.cloud_workers.federated.harness import (
    CLIENTS,
    DP_ROUND,
    Harness,
    config,
    dead_letters,
    make_keys,
    params_of,
    read_models,
    running,
    secret_of,
    trainers,
    twin,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROUNDS = 2
C = "fl-client-c"


class ClientProcess:
    def __init__(self, h: Harness, logs: Path) -> None:
        self.h, self.logs, self.starts = h, logs, 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Path | None = None

    def start(self, hold: str | None = None) -> None:
        self.starts += 1
        self.log = self.logs / f"client.{self.starts}.log"
        argv = [
            sys.executable, "-m", "medkiosk", "fl", "client", "--client-id", C, "--hospital", CLIENTS[C],
            "--model", self.h.model, "--topic-suffix", self.h.topics.rounds.rsplit(".", 1)[1],
            "--trainer", "tests.cloud_workers.federated.harness:LinearTrainer", "--trainer-arg", "index=2",
            "--chunk-size", "96", "--bootstrap", self.h.bootstrap, "--keys-dir", str(self.h.keys.dirs[C]),
            "--state-dir", str(self.h.state_dir), "--stats-file", str(self.logs / "client.json"),
        ]  # fmt: skip
        if hold:
            argv += ["--hold-at", hold]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ})

    async def wait_hold(self, point: str, round_id: int, timeout_s: float = 90.0) -> None:
        assert self.proc is not None and self.log is not None
        deadline = time.monotonic() + timeout_s
        while f"holding at {point} of round {round_id}" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None:
                raise AssertionError(f"client exited with {self.proc.returncode}; see {self.log}")
            if time.monotonic() > deadline:
                raise AssertionError(f"client never held at {point}:{round_id}; see {self.log}")
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def test_kill_9_around_the_durable_step_neither_loses_nor_repeats_a_round(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    keys = make_keys(tmp_path / "keys")
    secret_file = keys.dirs[C] / CLIENT_SECRET_FILE  # the twin's secret, so the twin can recompute its rounds
    secret_file.write_text(json.dumps({"kind": "medkiosk.fl.client-secret/v1", "secret": secret_of(C).hex()}))
    h = Harness(broker.bootstrap, keys, tmp_path / "state")
    cfg = config(keys, h.model, rounds=ROUNDS, min_clients=4)  # every round needs C
    logs = tmp_path / "logs"
    logs.mkdir()
    client = ClientProcess(h, logs)
    tr = trainers()
    try:
        async with running(h):
            await h.launch(h.keyholder())
            await h.launch(h.aggregator())
            for cid in sorted(CLIENTS):
                if cid != C:
                    await h.launch(h.client(cid, tr[cid]))
            client.start(hold="after_put:1")
            await h.launch(h.coordinator(cfg))

            await client.wait_hold("after_put", 1)  # committed: update + "round 1 sent" + accountant
            client.kill()
            client.start(hold="before_put:2")  # ships round 1 from its outbox, never retrains it
            await client.wait_hold("before_put", 2)  # trained, nothing committed yet
            client.kill()
            client.start()  # retrains round 2 (the same bits: the secret keys every random choice) and sends it
            models = await read_models(h, ROUNDS + 1, timeout_s=120)
            letters = await dead_letters(h.bootstrap, [h.topics.updates], want=0, timeout_s=2.0)
    finally:
        client.stop()
    assert [m.version for m in models] == list(range(ROUNDS + 1))
    assert all(list(m.contributors) == sorted(CLIENTS) for m in models[1:])
    assert [d for d in letters if d.producer_id == C] == []  # no conflicting or repeated update
    for got, want in zip(params_of(models), twin(cfg, trainers(), [sorted(CLIENTS)] * ROUNDS), strict=True):
        np.testing.assert_array_equal(got, want)
    restored = ClientCore(C, trainers()[C], secret_of(C))
    outbox = Outbox(h.state_dir / C / "outbox.db")
    try:
        assert load_outbox_state(restored, outbox)
    finally:
        outbox.close()
    assert restored.last_round == ROUNDS and restored.rounds_trained == ROUNDS
    assert restored.history == [DP_ROUND] * ROUNDS  # the accountant forgot nothing across two kills
