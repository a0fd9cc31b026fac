"""Crash safety: coordinator, aggregator and keyholder run as OS processes; each is killed with SIGKILL mid-round
(at a hold point: before the close, after decrypting, before the sum, before applying) and restarted. Every
round still completes with exactly the aggregate of an uninterrupted run (the plaintext twin)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import numpy as np
import pytest

from streams.broker import EmbeddedBroker
from streams.federated import paillier_private_files
from tests.cloud_workers.federated.harness import (
    CLIENTS,
    DIM,
    Harness,
    config,
    make_keys,
    params_of,
    read_models,
    running,
    trainers,
    twin,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROUNDS = 3


def _private_key_files_of(pid: int) -> list[Path]:
    """Paillier private keys a process could read: in the keys dir on its command line, or open."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    keys_dir = Path(argv[argv.index(b"--keys-dir") + 1].decode())
    found = paillier_private_files(keys_dir)
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = Path(os.readlink(fd))
            if target.is_file() and target in paillier_private_files(target.parent):
                found.append(target)
    return found


class Role:
    """One role process; ``start`` again after ``kill`` is the restart."""

    def __init__(self, h: Harness, name: str, keys: str, argv: list[str], logs: Path) -> None:
        self.name, self.h, self.argv, self.logs = name, h, argv, logs
        self.stats = logs / f"{name}.json"
        self.keys = h.keys.dirs[keys]
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    def start(self, hold: str | None = None) -> None:
        self.starts += 1
        self.stats.unlink(missing_ok=True)
        self._log = open(self.logs / f"{self.name}.{self.starts}.log", "wb")  # noqa: SIM115
        argv = [
            sys.executable, "-m", "medkiosk", "fl", *self.argv, "--model", self.h.model,
            "--topic-suffix", self.h.topics.rounds.rsplit(".", 1)[1], "--bootstrap", self.h.bootstrap,
            "--keys-dir", str(self.keys), "--state-dir", str(self.h.state_dir), "--stats-file", str(self.stats),
            "--aggregator", "fl-aggregator-0", "--keyholder", "fl-keyholder",
        ]  # fmt: skip
        if hold:
            argv += ["--hold-at", hold]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def phase(self) -> str:
        try:
            return str(json.loads(self.stats.read_text()).get("phase", ""))
        except (OSError, ValueError):
            return ""

    async def wait_phase(self, phase: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.phase() != phase:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}; see {self.logs}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} never reached {phase!r} (phase {self.phase()!r}); see {self.logs}")
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            if self._log is not None:
                self._log.close()


async def test_kill_9_mid_round_then_restart_gives_the_exact_aggregate(broker: EmbeddedBroker, tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    h = Harness(broker.bootstrap, keys, tmp_path / "state")
    cfg = config(keys, h.model, rounds=ROUNDS)
    logs = tmp_path / "logs"
    logs.mkdir()
    coordinator = Role(
        h, "coordinator", "coordinator",
        ["coordinator", "--rounds", str(ROUNDS), "--client", ",".join(sorted(CLIENTS)), "--min-clients", "3",
         "--deadline", "20", "--num-params", str(DIM), "--clip-norm", "2", "--quant-bits", "16", "--mask", "random-k",
         "--dp-noise-multiplier", "2.0", "--dp-max-sample-rate", "0.4", "--dp-max-steps", "4"],
        logs,
    )  # fmt: skip
    aggregator = Role(h, "aggregator", "aggregator", ["aggregator", "--aggregator-id", "fl-aggregator-0"], logs)
    keyholder = Role(h, "keyholder", "keyholder", ["keyholder", "--keyholder-id", "fl-keyholder"], logs)
    roles = [coordinator, aggregator, keyholder]
    tr = trainers()
    try:
        async with running(h):
            keyholder.start(hold="after_decrypt:2")
            aggregator.start(hold="before_sum:3")
            coordinator.start(hold="before_close:1")
            for cid in sorted(CLIENTS):
                await h.launch(h.client(cid, tr[cid]))

            await coordinator.wait_phase("holding:before_close:1")
            coordinator.kill()
            coordinator.start(hold="before_apply:3")

            await keyholder.wait_phase("holding:after_decrypt:2")
            keyholder.kill()
            keyholder.start()

            await aggregator.wait_phase("holding:before_sum:3")
            assert aggregator.proc is not None
            assert _private_key_files_of(aggregator.proc.pid) == []
            assert keyholder.proc is not None
            assert _private_key_files_of(keyholder.proc.pid) != []
            aggregator.kill()
            aggregator.start()

            await coordinator.wait_phase("holding:before_apply:3")
            coordinator.kill()
            coordinator.start()

            models = await read_models(h, ROUNDS + 1, timeout_s=90)
            assert coordinator.proc is not None
            assert await asyncio.to_thread(coordinator.proc.wait, 30) == 0  # finished its rounds and exited
    finally:
        codes = {r.name: r.stop() for r in roles}
    assert codes["coordinator"] == 0, codes
    assert [m.version for m in models] == list(range(ROUNDS + 1))
    expected = twin(cfg, trainers(), [sorted(CLIENTS)] * ROUNDS)
    for got, want in zip(params_of(models), expected, strict=True):
        np.testing.assert_array_equal(got, want)
