"""Shared pieces of the FL protocol tests: a deterministic trainer, keys, roles in-process, a plaintext twin."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer
from numpy.typing import NDArray

from cloud_workers.federated import (
    Aggregator,
    Coordinator,
    CoordinatorConfig,
    FlIdentities,
    Keyholder,
    apply_mean,
    decode_weights,
    export_fl_role,
    init_fl_keys,
)
from edge_agent.federated._client import ClientConfig, FlClient
from edge_agent.federated._client_core import ClientCore
from edge_agent.federated._trainer import LocalResult
from schemas import Chunk, DeadLetter, ModelVersion, StragglerMode
from streams import DLQ, BusMetrics, BusSettings, FlTopics, Keyring, LogReader, Reassembler, apply_topics
from streams.federated import (
    PAILLIER_PRIVATE_FILE,
    PAILLIER_PUBLIC_FILE,
    PrivateKey,
    PublicKey,
    RoundSpec,
    dequantize_sum,
    key_id,
    load_private_key,
    load_public_key,
)

KEY_BITS = 1024
DIM = 6
IDS = FlIdentities(aggregators=("fl-aggregator-0", "fl-aggregator-1"), keyholders=("fl-keyholder",))
CLIENTS = {"fl-client-a": "HA", "fl-client-b": "HB", "fl-client-c": "HC", "fl-client-d": "HD"}
#: The DP policy the harness coordinator announces, and the round every LinearTrainer declares.
DP_POLICY = {"dp_noise_multiplier": 2.0, "dp_max_sample_rate": 0.4, "dp_max_steps_per_round": 4}
DP_ROUND = (2.0, 0.4, 4)
SERVICES = [IDS.coordinator, IDS.models, "fl-aggregator-0", "fl-aggregator-1", "fl-keyholder"]


class LinearTrainer:
    """Least squares by a few SGD steps on a seeded synthetic dataset (each hospital's data shifted)."""

    def __init__(self, index: int, *, dim: int = DIM, n: int = 40, seed: int = 7, epsilon_per_round: float = 0.5):
        rng = np.random.default_rng([seed, index])
        w_true = np.random.default_rng(seed).normal(size=dim)
        self._x = rng.normal(size=(n, dim)) + 0.2 * index
        self._y = self._x @ w_true + rng.normal(scale=0.1, size=n)
        self._eps = epsilon_per_round

    @property
    def num_params(self) -> int:
        return int(self._x.shape[1])

    def initial_params(self, seed: int) -> NDArray[np.float64]:
        return np.zeros(self.num_params)

    def train(self, global_params: NDArray[np.float64], round_id: int, rng: np.random.Generator) -> LocalResult:
        w = np.array(global_params, dtype=np.float64)
        for _ in range(4):
            idx = rng.choice(len(self._y), size=16, replace=False)
            xb, yb = self._x[idx], self._y[idx]
            w -= 0.05 * xb.T @ (xb @ w - yb) / len(idx)
        update = w - global_params
        # Declares the DP-SGD round the harness policy allows (a stand-in for a DP trainer: the protocol under test
        # checks and accounts what is declared; the noise itself is DpSgdTrainer's business, tested on its own).
        return LocalResult(
            update, len(self._y), self._eps * round_id, 1e-5, {"loss": self.evaluate(w)["loss"]}, round_dp=DP_ROUND
        )

    def evaluate(self, params: NDArray[np.float64]) -> dict[str, float]:
        return {"loss": float(np.mean((self._x @ params - self._y) ** 2))}


def secret_of(client_id: str) -> bytes:
    """A fixed test secret per client (the twin recomputes the clients' rounds with it)."""
    return hashlib.sha256(b"medkiosk-test-secret/" + client_id.encode()).digest()


def trainers(dim: int = DIM) -> dict[str, LinearTrainer]:
    return {cid: LinearTrainer(i, dim=dim) for i, cid in enumerate(sorted(CLIENTS))}


@dataclass
class FlKeys:
    root: Path
    dirs: dict[str, Path]
    public_key: PublicKey
    private_key: PrivateKey


def make_keys(root: Path) -> FlKeys:
    init_fl_keys(root, clients=CLIENTS, services=SERVICES, key_bits=KEY_BITS)
    dirs = {
        name: root / "roles" / name for name in ("coordinator", "aggregator", "aggregator-1", "keyholder", *CLIENTS)
    }
    export_fl_role(root, dirs["coordinator"], producers=[IDS.coordinator, IDS.models], domains=["fl"])
    export_fl_role(root, dirs["aggregator"], producers=["fl-aggregator-0"])
    export_fl_role(root, dirs["aggregator-1"], producers=["fl-aggregator-1"])
    export_fl_role(root, dirs["keyholder"], producers=["fl-keyholder"], domains=["fl"], private_key=True)
    for cid in CLIENTS:
        export_fl_role(root, dirs[cid], producers=[cid], client_secret=True)
    return FlKeys(
        root, dirs, load_public_key(root / PAILLIER_PUBLIC_FILE), load_private_key(root / PAILLIER_PRIVATE_FILE)
    )


def config(keys: FlKeys, model: str, **overrides: Any) -> CoordinatorConfig:
    base: dict[str, Any] = {
        "model_name": model,
        "rounds": 2,
        "invited": tuple(sorted(CLIENTS)),
        "min_clients": 3,
        "paillier_key_id": key_id(keys.public_key),
        "key_bits": KEY_BITS,
        "deadline_s": 20.0,
        "clip_norm": 2.0,
        "quant_bits": 16,
        "straggler_mode": StragglerMode.STRAGGLER_MODE_DROP,
        **DP_POLICY,
    }
    base.update(overrides)
    return CoordinatorConfig(**base)


@dataclass
class Harness:
    """One isolated FL run on the session broker: its own topics, model name and state directory."""

    bootstrap: str
    keys: FlKeys
    state_dir: Path
    topics: FlTopics = field(default_factory=lambda: FlTopics.suffixed(uuid.uuid4().hex[:8]))
    model: str = field(default_factory=lambda: f"m-{uuid.uuid4().hex[:6]}")
    tasks: list[tuple[Any, asyncio.Task[None], asyncio.Event]] = field(default_factory=list)

    def settings(self, role: str) -> BusSettings:
        return BusSettings(
            bootstrap_servers=self.bootstrap,
            keys_dir=self.keys.dirs[role],
            state_dir=self.state_dir,
            topic_partitions=2,
        )

    def keyring(self, role: str) -> Keyring:
        return Keyring.load(self.keys.dirs[role])

    async def create_topics(self) -> None:
        await apply_topics(self.settings("coordinator"), [*self.topics.specs(), DLQ])

    def coordinator(self, cfg: CoordinatorConfig, *, dim: int = DIM, **kw: Any) -> Coordinator:
        init = np.zeros(dim)
        return Coordinator(
            cfg, init, self.settings("coordinator"), self.keyring("coordinator"), BusMetrics("coordinator"),
            topics=self.topics, ids=IDS, **kw,
        )  # fmt: skip

    def aggregator(self, instance: int = 0, instances: int = 1, **kw: Any) -> Aggregator:
        role = "aggregator" if instance == 0 else f"aggregator-{instance}"
        return Aggregator(
            self.model, f"fl-aggregator-{instance}", self.keys.public_key, self.settings(role), self.keyring(role),
            BusMetrics(role), instance=instance, instances=instances, topics=self.topics, ids=IDS, **kw,
        )  # fmt: skip

    def keyholder(self, **kw: Any) -> Keyholder:
        return Keyholder(
            self.model, "fl-keyholder", self.keys.private_key, self.settings("keyholder"), self.keyring("keyholder"),
            BusMetrics("keyholder"), topics=self.topics, ids=IDS, **kw,
        )  # fmt: skip

    def client(self, cid: str, trainer: Any, *, delays: Mapping[int, float] | None = None, **kw: Any) -> FlClient:
        cfg = ClientConfig(
            client_id=cid, hospital_id=CLIENTS[cid], model_name=self.model, secret=secret_of(cid), topics=self.topics,
            delays=dict(delays or {}), chunk_size=kw.pop("chunk_size", 96), hold_at=kw.pop("hold_at", None),
            chunk_ttl_s=kw.pop("chunk_ttl_s", 600.0),
        )  # fmt: skip
        return FlClient(cfg, trainer, self.keys.public_key, self.settings(cid), self.keyring(cid), BusMetrics(cid))

    async def launch(self, role: Any) -> asyncio.Task[None]:
        stop = asyncio.Event()
        await role.start()
        task = asyncio.create_task(role.run(stop))
        self.tasks.append((role, task, stop))
        return task

    async def halt(self, role: Any) -> None:
        for i, (r, task, stop) in enumerate(self.tasks):
            if r is role:
                stop.set()
                await asyncio.wait_for(task, 30)
                await r.stop()
                del self.tasks[i]
                return

    async def halt_all(self) -> None:
        for role, _, _ in list(reversed(self.tasks)):
            await self.halt(role)


@contextlib.asynccontextmanager
async def running(h: Harness) -> AsyncIterator[Harness]:
    await h.create_topics()
    try:
        yield h
    finally:
        await h.halt_all()


async def read_models(h: Harness, versions: int, timeout_s: float = 60.0) -> list[ModelVersion]:
    """Model versions 0 .. versions-1 of the run, read from the models topic."""
    settings = h.settings("coordinator")
    reader = LogReader(settings, h.keyring("coordinator"), BusMetrics("test-models"), worker="test-models")
    await reader.start()
    found: dict[int, ModelVersion] = {}
    reassembler = Reassembler()
    try:
        await reader.assign(dict.fromkeys(await reader.partitions(h.topics.models)))
        deadline = time.monotonic() + timeout_s
        while len(found) < versions and time.monotonic() < deadline:
            for event in await reader.poll(timeout_ms=200):
                msg = event.message
                if isinstance(msg, Chunk):
                    done = reassembler.add(msg)
                    if done is not None:
                        mv = ModelVersion.FromString(done.payload)
                        if mv.model_name == h.model:
                            found[mv.version] = mv
    finally:
        await reader.stop()
    return [found[v] for v in sorted(found)]


async def dead_letters(bootstrap: str, topics: Sequence[str], want: int, timeout_s: float = 20.0) -> list[DeadLetter]:
    """Dead letters whose source topic is one of ``topics`` (waits for at least ``want``)."""
    consumer = AIOKafkaConsumer(DLQ.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[DeadLetter] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    letter = DeadLetter.FromString(r.value)
                    if letter.source_topic in topics:
                        found.append(letter)
            if len(found) >= want:
                await asyncio.sleep(0.5)  # let stragglers show
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    found += [
                        d for d in map(DeadLetter.FromString, (r.value for r in records)) if d.source_topic in topics
                    ]
                break
    finally:
        await consumer.stop()
    return found


def twin(
    cfg: CoordinatorConfig,
    trainer_map: Mapping[str, Any],
    contributors: Sequence[Sequence[str]],
    *,
    trained: Sequence[Sequence[str]] | None = None,
    dim: int = DIM,
) -> list[NDArray[np.float64]]:
    """The parameters after each round as the protocol must compute them, without encryption or Kafka:
    round r is trained by ``trained[r]`` (default: its contributors) and summed over ``contributors[r]``."""
    params = np.zeros(dim)
    cores = {cid: ClientCore(cid, t, secret_of(cid)) for cid, t in trainer_map.items()}
    out = [params]
    prev_contributors: list[str] = []
    for r, who in enumerate(contributors, start=1):
        mv = ModelVersion(model_name=cfg.model_name, version=r - 1, round_id=r - 1, contributors=prev_contributors)
        for core in cores.values():
            core.on_model(mv, params)
        ann = cfg.announcement(r, r - 1, dim, 0)
        spec = RoundSpec.from_announcement(ann)
        qs = {cid: cores[cid].quantize(ann) for cid in (trained[r - 1] if trained else who)}
        total = np.sum([qs[cid].quantized for cid in who], axis=0)
        masked_sum = dequantize_sum(total, spec.quant, len(who))
        weight = sum(spec.example_weight(qs[cid].result.num_examples) for cid in who)
        params = apply_mean(params, spec.mask(), masked_sum, weight, cfg.server_lr)
        out.append(params)
        prev_contributors = list(who)
    return out


def params_of(models: Sequence[ModelVersion]) -> list[NDArray[np.float64]]:
    return [decode_weights(bytes(m.weights)) for m in models]
