"""A hospital's side of the protocol without any transport: model versions in, encrypted shard updates out.

Per round: train from the announced model version; scale by the example weight; add the error-feedback
residual (and, in fold mode, earlier late updates times their staleness weight); take the round's shared
mask; clip; add the noise share; quantise with stochastic rounding; pack; encrypt with precomputed
obfuscators; cut into shards. Every random choice comes from generators seeded by (client seed, round), so a
round's quantised update is a pure function of the model, the data and the residual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from edge_agent.federated._trainer import LocalResult, LocalTrainer
from schemas import ModelUpdate, ModelVersion, RoundAnnouncement
from streams.federated import (
    EncodeSpec,
    ErrorFeedback,
    ObfuscatorPool,
    PublicKey,
    RoundSpec,
    as_mask,
    ciphertext_to_bytes,
    clip_by_l2,
    encrypt_packed,
    pack,
    scatter_masked,
    staleness_weight,
    stochastic_quantize,
)

__all__ = ["ClientCore", "QuantizedUpdate", "quantize_update", "round_rngs"]


def round_rngs(seed: int, round_id: int) -> tuple[np.random.Generator, np.random.Generator]:
    """(training generator, codec generator) of one client's round."""
    return (
        np.random.default_rng(np.random.SeedSequence([seed, round_id, 0])),
        np.random.default_rng(np.random.SeedSequence([seed, round_id, 1])),
    )


def quantize_update(
    update: NDArray[np.float64],
    mask: NDArray[np.int64],
    ef: ErrorFeedback,
    spec: EncodeSpec,
    rng: np.random.Generator,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """``client_encode`` up to the quantised integers: returns them and what was taken from the residual
    (``compensated[mask]`` scattered to full length). Updates ``ef`` in place."""
    compensated = ef.compensate(update)
    idx = as_mask(mask, ef.dim)
    taken = compensated[idx]
    ef.record_sent(compensated, idx)
    values = clip_by_l2(taken, spec.clip_norm)
    if spec.noise_std > 0:
        values = values + rng.normal(0.0, spec.noise_std, size=values.shape)
    return stochastic_quantize(values, spec.quant, rng), scatter_masked(taken, idx, ef.dim)


@dataclass(frozen=True, slots=True)
class QuantizedUpdate:
    """One round's update before encryption."""

    round_id: int
    quantized: NDArray[np.int64]
    result: LocalResult


@dataclass
class _Submitted:
    """A round this client sent an update for, until a model version says whether it was applied."""

    taken: NDArray[np.float64]
    fold: bool
    alpha: float
    max_staleness: int


@dataclass
class ClientCore:
    """See the module docstring. Feed it model versions; ask it for a round's update."""

    client_id: str
    trainer: LocalTrainer
    seed: int = 0
    ef: ErrorFeedback | None = None
    #: version -> (round id, params) of the last few model versions.
    models: dict[int, tuple[int, NDArray[np.float64]]] = field(default_factory=dict)
    submitted: dict[int, _Submitted] = field(default_factory=dict)
    #: Late updates waiting to be folded in: (round, taken vector, alpha, max staleness).
    stale: list[tuple[int, NDArray[np.float64], float, int]] = field(default_factory=list)
    last_round: int = 0
    late_rounds: list[int] = field(default_factory=list)

    def on_model(self, mv: ModelVersion, params: NDArray[np.float64]) -> None:
        """A global model version; it names the contributors of the round it came from."""
        self.models[mv.version] = (mv.round_id, params)
        for old in sorted(self.models)[:-3]:
            del self.models[old]
        sub = self.submitted.pop(mv.round_id, None)
        if sub is not None and self.client_id not in mv.contributors:
            self.late_rounds.append(mv.round_id)
            if sub.fold:
                self.stale.append((mv.round_id, sub.taken, sub.alpha, sub.max_staleness))

    def ready_for(self, ann: RoundAnnouncement) -> bool:
        """Whether this client should (and can) take part in ``ann``'s round now."""
        return self.client_id in ann.invited and ann.round_id > self.last_round and ann.model_version in self.models

    def _prev_update(self, version: int) -> NDArray[np.float64] | None:
        if version - 1 not in self.models:
            return None
        return self.models[version][1] - self.models[version - 1][1]

    def _fold(self, round_id: int, dim: int) -> NDArray[np.float64]:
        total = np.zeros(dim, dtype=np.float64)
        for late_round, taken, alpha, max_staleness in self.stale:
            staleness = round_id - late_round
            if staleness <= max(max_staleness, 1):
                total += staleness_weight(staleness, alpha) * taken
        self.stale.clear()
        return total

    def quantize(self, ann: RoundAnnouncement) -> QuantizedUpdate:
        """Train and quantise this client's update for ``ann``'s round (records it as submitted)."""
        spec = RoundSpec.from_announcement(ann)
        _, params = self.models[ann.model_version]
        if params.size != spec.num_params:
            raise ValueError(f"model has {params.size} parameters, the round says {spec.num_params}")
        if self.ef is None or self.ef.dim != spec.num_params:
            self.ef = ErrorFeedback(spec.num_params)
        train_rng, codec_rng = round_rngs(self.seed, ann.round_id)
        result = self.trainer.train(params, ann.round_id, train_rng)
        update = result.update * spec.example_weight(result.num_examples) + self._fold(ann.round_id, spec.num_params)
        mask = spec.mask(self._prev_update(ann.model_version))
        q, taken = quantize_update(update, mask, self.ef, spec.encode_spec, codec_rng)
        self.submitted[ann.round_id] = _Submitted(taken, spec.fold_late, spec.staleness_alpha, spec.max_staleness)
        self.last_round = ann.round_id
        return QuantizedUpdate(ann.round_id, q, result)

    def encrypt(
        self, ann: RoundAnnouncement, q: QuantizedUpdate, public_key: PublicKey, pool: ObfuscatorPool | None
    ) -> list[ModelUpdate]:
        """Pack, encrypt and cut ``q`` into the round's shards."""
        spec = RoundSpec.from_announcement(ann)
        cts = [encrypt_packed(public_key, p, pool) for p in pack(q.quantized, spec.packing)]
        return shard_updates(ann, spec, self.client_id, cts, public_key, q.result)


def shard_updates(
    ann: RoundAnnouncement,
    spec: RoundSpec,
    client_id: str,
    ciphertexts: Sequence[int],
    public_key: PublicKey,
    result: LocalResult,
) -> list[ModelUpdate]:
    """One ``ModelUpdate`` per shard of the round."""
    out = []
    for shard in range(spec.num_shards):
        start, stop = spec.shard_ciphertexts(shard)
        out.append(
            ModelUpdate(
                model_name=ann.model_name,
                round_id=ann.round_id,
                client_id=client_id,
                shard=shard,
                num_shards=spec.num_shards,
                ciphertexts=[ciphertext_to_bytes(public_key, c) for c in ciphertexts[start:stop]],
                num_examples=result.num_examples,
                paillier_key_id=ann.paillier_key_id,
                epsilon=result.epsilon,
                delta=result.delta,
            )
        )
    return out
