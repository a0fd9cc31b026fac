"""A hospital's side of the protocol without any transport: model versions in, encrypted shard updates out.

Per round: train from the announced model version; scale by the example weight; add the error-feedback
residual (and, in fold mode, earlier late updates times their staleness weight); take the round's shared
mask; clip (what clipping removes stays in the residual); add the noise share; quantise with stochastic
rounding; pack; encrypt with precomputed obfuscators; cut into shards. Every random choice is keyed by
``HMAC(client secret, purpose, round)`` (``_randomness``), so a round's quantised update is a pure function of
the secret, the model, the data and the residual: the client itself can recompute it, nobody else can.

The client's own RDP accountant (one ``(noise_multiplier, sample_rate, steps)`` entry per round trained) is kept
here, checked against the round's announced DP policy before anything is sent, and carried in the update.

The statistics round (round 0, ``streams.federated._moments``): a trainer that holds raw features
(:class:`FederationStandardised`) sends its row count, feature sums and sums of squares as exact fixed-point
limbs (no training, nothing added to the accountant), and trains only once model version 0 brings the
federation's standardiser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from edge_agent.federated._randomness import KeyedStream, derive_key, keyed_generator
from edge_agent.federated._trainer import (
    DpAccounted,
    FederationStandardised,
    KeyedTrainer,
    LocalResult,
    LocalTrainer,
)
from schemas import AccountantState, DpPolicy, DpStep, ModelUpdate, ModelVersion, RoundAnnouncement
from streams.federated import (
    STATS_ROUND,
    EncodeSpec,
    ErrorFeedback,
    ObfuscatorPool,
    PublicKey,
    RoundSpec,
    as_mask,
    ciphertext_to_bytes,
    clip_by_l2,
    dp_step_violation,
    encode_moments,
    encrypt_packed,
    pack,
    scatter_masked,
    staleness_weight,
    standardiser_from_metrics,
    stats_round_violation,
    stochastic_quantize,
)

__all__ = ["ClientCore", "DpPolicyViolation", "QuantizedUpdate", "check_round_dp", "quantize_update", "round_rngs"]


class DpPolicyViolation(ValueError):
    """The round's training does not meet the announced DP policy: the client sends nothing."""


def round_rngs(secret: bytes, round_id: int) -> tuple[bytes, np.random.Generator, KeyedStream]:
    """(training key, codec generator for stochastic rounding, keystream of the distributed-noise share) of one
    client's round, all keyed by ``secret``."""
    return (
        derive_key(secret, "train", round_id),
        keyed_generator(derive_key(secret, "codec", round_id)),
        KeyedStream(derive_key(secret, "share", round_id)),
    )


def check_round_dp(policy: DpPolicy, round_dp: tuple[float, float, int] | None) -> None:
    """Raise :class:`DpPolicyViolation` unless ``round_dp`` = (noise multiplier, sample rate, steps) is at least
    as private as ``policy``: noise at least, sampling rate and steps at most the policy's."""
    why = dp_step_violation(policy, round_dp)
    if why is not None:
        raise DpPolicyViolation(why)


def quantize_update(
    update: NDArray[np.float64],
    mask: NDArray[np.int64],
    ef: ErrorFeedback,
    spec: EncodeSpec,
    rng: np.random.Generator,
    noise: KeyedStream | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """``client_encode`` up to the quantised integers: returns them and what was sent, before noise and
    rounding (the clipped ``compensated[mask]``, scattered to full length). Updates ``ef`` in place: the
    residual keeps the unsent coordinates and what clipping removed from the sent ones. The noise share is
    drawn from ``noise`` (a keyed CSPRNG stream) when given, else from ``rng``."""
    compensated = ef.compensate(update)
    idx = as_mask(mask, ef.dim)
    values = clip_by_l2(compensated[idx], spec.clip_norm)
    ef.record_sent(compensated, idx, values)
    sent = scatter_masked(values, idx, ef.dim)
    if spec.noise_std > 0:
        z = noise.normal(values.size) if noise is not None else rng.normal(0.0, 1.0, size=values.shape)
        values = values + spec.noise_std * z
    return stochastic_quantize(values, spec.quant, rng), sent


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
    #: This hospital's secret (``fl keys export --role client``): keys every random choice of its rounds.
    secret: bytes
    ef: ErrorFeedback | None = None
    #: version -> (round id, params) of the last few model versions.
    models: dict[int, tuple[int, NDArray[np.float64]]] = field(default_factory=dict)
    #: version -> the mask EMA that version carries (``MASK_KIND_EMA_EXPLORE``).
    emas: dict[int, NDArray[np.float64]] = field(default_factory=dict)
    submitted: dict[int, _Submitted] = field(default_factory=dict)
    #: Late updates waiting to be folded in: (round, taken vector, alpha, max staleness).
    stale: list[tuple[int, NDArray[np.float64], float, int]] = field(default_factory=list)
    last_round: int = 0
    late_rounds: list[int] = field(default_factory=list)
    #: The client's RDP accountant: ``(noise_multiplier, sample_rate, steps)`` per round it trained for.
    history: list[tuple[float, float, int]] = field(default_factory=list)
    rounds_trained: int = 0
    delta: float = 0.0
    #: Whether this client sent its moments in the statistics round.
    stats_sent: bool = False

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise ValueError("the client secret must have at least 128 bits")

    def restore_history(self, history: Sequence[tuple[float, float, int]], rounds_trained: int) -> None:
        """Put back a persisted accountant (and hand it to a trainer that keeps its own)."""
        self.history = [(float(z), float(q), int(t)) for z, q, t in history]
        self.rounds_trained = int(rounds_trained)
        if isinstance(self.trainer, DpAccounted):
            self.trainer.restore_accountant(self.history)

    def accountant(self) -> AccountantState:
        """The accountant as it travels in an update."""
        return AccountantState(
            history=[DpStep(noise_multiplier=z, sample_rate=q, steps=t) for z, q, t in self.history],
            rounds_trained=self.rounds_trained,
            delta=self.delta,
        )

    def epsilon(self) -> float:
        """This client's own cumulative epsilon (informative; the cloud recomputes it from the policies)."""
        if not self.history or not 0 < self.delta < 1:
            return 0.0 if not self.history else float("inf")
        from edge_agent.federated._privacy import accountant_epsilon  # opacus: only when there is DP history

        return accountant_epsilon(self.history, self.delta)

    def _standardisable(self) -> FederationStandardised | None:
        t = self.trainer
        return t if isinstance(t, FederationStandardised) and t.awaits_standardiser else None

    def on_model(self, mv: ModelVersion, params: NDArray[np.float64]) -> None:
        """A global model version; it names the contributors of the round it came from. Version 0 may carry the
        federation's standardiser, which a trainer on raw features takes."""
        if mv.version == 0 and (t := self._standardisable()) is not None and not t.standardised:
            found = standardiser_from_metrics(mv.metrics)
            if found is not None:
                t.set_standardiser(*found)
        self.models[mv.version] = (mv.round_id, params)
        if mv.mask_ema:
            self.emas[mv.version] = np.frombuffer(bytes(mv.mask_ema), dtype="<f8").astype(np.float64)
        for old in sorted(self.models)[:-3]:
            del self.models[old]
            self.emas.pop(old, None)
        sub = self.submitted.pop(mv.round_id, None)
        if sub is not None and self.client_id not in mv.contributors:
            self.late_rounds.append(mv.round_id)
            if sub.fold:
                self.stale.append((mv.round_id, sub.taken, sub.alpha, sub.max_staleness))

    def ready_for(self, ann: RoundAnnouncement) -> bool:
        """Whether this client should (and can) take part in ``ann``'s round now."""
        if self.client_id not in ann.invited:
            return False
        if ann.round_id == STATS_ROUND:
            return self._standardisable() is not None and not self.stats_sent and 0 not in self.models
        return ann.round_id > self.last_round and ann.model_version in self.models

    def stats_update(self, ann: RoundAnnouncement) -> QuantizedUpdate:
        """This hospital's moments for the statistics round, as exact limbs on the round's step-1 grid (records
        the round as sent); ``ValueError`` when ``ann`` is not a well-formed statistics round for its features."""
        if (why := stats_round_violation(ann)) is not None:
            raise ValueError(why)
        t = self._standardisable()
        if t is None:
            raise ValueError("this trainer does not take part in a statistics round")
        moments = t.feature_moments()
        limbs = encode_moments(moments)
        if limbs.size != ann.num_params:
            raise ValueError(f"{limbs.size} moment limbs for {ann.num_params} announced: another feature count")
        self.stats_sent = True
        result = LocalResult(
            update=np.zeros(0), num_examples=moments[0], epsilon=self.epsilon(), delta=self.delta, metrics={}
        )
        return QuantizedUpdate(ann.round_id, limbs, result)

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
        train_key, codec_rng, share = round_rngs(self.secret, ann.round_id)
        if isinstance(self.trainer, KeyedTrainer):
            result = self.trainer.train_keyed(params, ann.round_id, train_key)
        else:
            result = self.trainer.train(params, ann.round_id, keyed_generator(train_key))
        if ann.HasField("dp_policy"):
            check_round_dp(ann.dp_policy, result.round_dp)
        update = result.update * spec.example_weight(result.num_examples) + self._fold(ann.round_id, spec.num_params)
        mask = spec.mask(self._prev_update(ann.model_version), ema=self.emas.get(ann.model_version))
        q, taken = quantize_update(update, mask, self.ef, spec.encode_spec, codec_rng, share)
        self.submitted[ann.round_id] = _Submitted(taken, spec.fold_late, spec.staleness_alpha, spec.max_staleness)
        self.last_round = ann.round_id
        self.rounds_trained += 1
        if result.round_dp is not None:
            self.history.append(result.round_dp)
            self.delta = result.delta
        return QuantizedUpdate(ann.round_id, q, result)

    def encrypt(
        self, ann: RoundAnnouncement, q: QuantizedUpdate, public_key: PublicKey, pool: ObfuscatorPool | None
    ) -> list[ModelUpdate]:
        """Pack, encrypt and cut ``q`` into the round's shards."""
        spec = RoundSpec.from_announcement(ann)
        cts = [encrypt_packed(public_key, p, pool) for p in pack(q.quantized, spec.packing)]
        updates = shard_updates(ann, spec, self.client_id, cts, public_key, q.result)
        accountant = self.accountant()
        for u in updates:
            u.accountant.CopyFrom(accountant)
            u.epsilon = q.result.epsilon  # the trainer's own figure: informative, never trusted
            if q.result.round_dp is not None:
                z, rate, steps = q.result.round_dp
                u.round_dp.CopyFrom(DpStep(noise_multiplier=z, sample_rate=rate, steps=steps))
        return updates


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
