"""The coordinator as a pure state machine: fed what the log holds, it says what to publish next.

Its whole state is rebuilt from the log on every start: the latest ``ModelVersion`` (exact float64
weights), the latest round's announcement and close, the aggregator's receipts and the keyholder's
aggregates for that round. Every decision is a function of that state (and of the clock only for the
deadline), so a restarted coordinator continues exactly where the log says it was.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from cloud_workers.federated._coordinator_config import (
    WEIGHTS_FORMAT,
    CoordinatorConfig,
    apply_mean,
    decode_weights,
    encode_weights,
)
from schemas import (
    ModelVersion,
    PartitionOffset,
    PlainAggregate,
    PrivacySpent,
    RoundAnnouncement,
    RoundClose,
    RoundContributor,
    UpdateReceipt,
)
from streams.federated import RoundSpec

__all__ = ["CoordinatorState"]


@dataclass
class _Model:
    version: int
    round_id: int
    params: NDArray[np.float64]
    epsilon: float
    delta: float


@dataclass
class _Round:
    announcement: RoundAnnouncement
    spec: RoundSpec
    close: RoundClose | None = None
    receipts: dict[tuple[int, str], UpdateReceipt] = field(default_factory=dict)
    aggregates: dict[int, PlainAggregate] = field(default_factory=dict)


class CoordinatorState:
    """See the module docstring. ``on_*`` feed it; ``*_due`` return what to publish (and record it)."""

    def __init__(self, config: CoordinatorConfig, initial_params: NDArray[np.float64]) -> None:
        self.config = config
        self._initial = np.asarray(initial_params, dtype=np.float64)
        self.model: _Model | None = None
        self._prev_params: NDArray[np.float64] | None = None
        self.round: _Round | None = None

    # --- what the log says --------------------------------------------------------------------------------

    def on_model(self, mv: ModelVersion) -> None:
        """A published model version (ours, read back)."""
        if mv.model_name != self.config.model_name or (self.model is not None and mv.version <= self.model.version):
            return
        params = decode_weights(bytes(mv.weights))
        if self.model is not None and mv.version == self.model.version + 1:
            self._prev_params = self.model.params
        else:
            self._prev_params = None
        self.model = _Model(mv.version, mv.round_id, params, mv.privacy.epsilon, mv.privacy.delta)

    def on_announcement(self, ann: RoundAnnouncement) -> None:
        """A round announcement (ours, read back)."""
        if ann.model_name != self.config.model_name:
            return
        if self.round is None or ann.round_id > self.round.announcement.round_id:
            self.round = _Round(ann, RoundSpec.from_announcement(ann))

    def on_close(self, close: RoundClose) -> None:
        """A round close (ours, read back)."""
        if close.model_name != self.config.model_name:
            return
        self.on_announcement(close.announcement)
        if self.round is not None and self.round.announcement.round_id == close.round_id and self.round.close is None:
            self.round.close = close

    def on_receipt(self, receipt: UpdateReceipt) -> bool:
        """An aggregator's receipt; False when it is not for the open round (ignored)."""
        rnd = self.round
        if rnd is None or receipt.model_name != self.config.model_name or rnd.close is not None:
            return False
        if receipt.round_id != rnd.announcement.round_id or receipt.shard >= rnd.spec.num_shards:
            return False
        if receipt.client_id not in rnd.announcement.invited:
            return False
        rnd.receipts.setdefault((receipt.shard, receipt.client_id), receipt)
        return True

    def on_aggregate(self, agg: PlainAggregate) -> bool:
        """The keyholder's decrypted shard sum; False when it does not fit the closed round."""
        rnd = self.round
        if rnd is None or rnd.close is None or agg.model_name != self.config.model_name:
            return False
        if agg.round_id != rnd.announcement.round_id or agg.shard >= rnd.spec.num_shards:
            return False
        start, stop = rnd.spec.shard_values(agg.shard)
        if len(agg.values) != stop - start or sorted(agg.contributors) != self._contributor_ids(rnd.close):
            return False
        rnd.aggregates.setdefault(agg.shard, agg)
        return True

    # --- decisions ----------------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Every planned round has been applied."""
        return self.model is not None and self.model.round_id >= self.config.rounds

    def initial_model_due(self) -> ModelVersion | None:
        """Version 0 when nothing was ever published."""
        if self.model is not None:
            return None
        mv = self._model_version(0, 0, self._initial, 0.0, 0.0, [], {})
        self.on_model(mv)
        return mv

    def announcement_due(self) -> int | None:
        """The round id to announce next, when the latest round has been applied and rounds remain."""
        model = self.model
        if model is None or self.finished:
            return None
        if self.round is not None and self.round.announcement.round_id > model.round_id:
            return None
        return model.round_id + 1

    def announce(self, round_id: int, now_ns: int, start_offsets: list[PartitionOffset]) -> RoundAnnouncement:
        """Build (and record) the announcement of ``round_id``."""
        assert self.model is not None
        ann = self.config.announcement(round_id, self.model.version, self.model.params.size, now_ns)
        ann.start_offsets.extend(start_offsets)
        self.on_announcement(ann)
        return ann

    def complete_clients(self) -> list[str]:
        """Invited clients with a receipt for every shard of the open round."""
        rnd = self.round
        if rnd is None:
            return []
        shards = rnd.spec.num_shards
        clients = {c for (_, c) in rnd.receipts}
        return sorted(c for c in clients if all((s, c) in rnd.receipts for s in range(shards)))

    def close_ready(self, now_ns: int) -> bool:
        """Quorum is reached and the deadline has passed (or everyone invited is in)."""
        rnd = self.round
        if rnd is None or rnd.close is not None:
            return False
        ann = rnd.announcement
        complete = self.complete_clients()
        if len(complete) < ann.min_clients:
            return False
        return now_ns >= ann.deadline or len(complete) >= len(ann.invited)

    def close_due(self, now_ns: int) -> RoundClose | None:
        """Close the open round at quorum once its deadline has passed (or everyone invited is in)."""
        if not self.close_ready(now_ns):
            return None
        rnd = self.round
        assert rnd is not None
        ann = rnd.announcement
        complete = self.complete_clients()
        close = RoundClose(model_name=ann.model_name, round_id=ann.round_id, closed_at=now_ns)
        close.announcement.CopyFrom(ann)
        for client in complete[: ann.max_clients]:
            first = rnd.receipts[(0, client)]
            close.contributors.append(
                RoundContributor(
                    client_id=client,
                    update_sha256=[rnd.receipts[(s, client)].update_sha256 for s in range(rnd.spec.num_shards)],
                    num_examples=first.num_examples,
                    epsilon=first.epsilon,
                    delta=first.delta,
                )
            )
        self.on_close(close)
        return close

    def apply_ready(self) -> bool:
        """The round is closed, not applied yet, and every shard's aggregate is in."""
        rnd, model = self.round, self.model
        if rnd is None or rnd.close is None or model is None or model.round_id >= rnd.announcement.round_id:
            return False
        return len(rnd.aggregates) >= rnd.spec.num_shards

    def apply_due(self, now_ns: int) -> ModelVersion | None:
        """The next model version, once every shard's aggregate of the closed round is in."""
        if not self.apply_ready():
            return None
        rnd, model = self.round, self.model
        assert rnd is not None and rnd.close is not None and model is not None
        spec, close = rnd.spec, rnd.close
        masked_sum = np.concatenate([np.asarray(rnd.aggregates[s].values) for s in range(spec.num_shards)])
        prev_update = model.params - self._prev_params if self._prev_params is not None else None
        mask = spec.mask(prev_update)
        total_weight = sum(spec.example_weight(c.num_examples) for c in close.contributors)
        noise = self._central_noise(spec.round_id, spec.mask_k)
        params = apply_mean(model.params, mask, masked_sum, total_weight, rnd.announcement.server_lr, noise)
        epsilon = max([model.epsilon, *(c.epsilon for c in close.contributors)])
        delta = max([model.delta, *(c.delta for c in close.contributors)])
        metrics = {
            "round_s": max(0.0, (now_ns - rnd.announcement.announced_at) / 1e9),
            "contributors": float(len(close.contributors)),
            "total_weight": float(total_weight),
        }
        contributors = [c.client_id for c in close.contributors]
        mv = self._model_version(model.version + 1, spec.round_id, params, epsilon, delta, contributors, metrics)
        self.on_model(mv)
        return mv

    # --- helpers ------------------------------------------------------------------------------------------

    @staticmethod
    def _contributor_ids(close: RoundClose) -> list[str]:
        return sorted(c.client_id for c in close.contributors)

    def _central_noise(self, round_id: int, k: int) -> NDArray[np.float64] | None:
        z = self.config.central_noise_multiplier
        if z <= 0:
            return None
        rng = np.random.default_rng(np.random.SeedSequence([self.config.noise_seed, 0xCE17, round_id]))
        return rng.normal(0.0, z * self.config.clip_norm, size=k)

    def _model_version(
        self,
        version: int,
        round_id: int,
        params: NDArray[np.float64],
        epsilon: float,
        delta: float,
        contributors: list[str],
        metrics: dict[str, float],
    ) -> ModelVersion:
        weights = encode_weights(params)
        mv = ModelVersion(
            model_name=self.config.model_name,
            version=version,
            round_id=round_id,
            weights=weights,
            weights_sha256=hashlib.sha256(weights).digest(),
            format=WEIGHTS_FORMAT,
            privacy=PrivacySpent(epsilon=epsilon, delta=delta, accountant="rdp: dp-sgd per hospital, max"),
            contributors=contributors,
            metrics=metrics,
        )
        z = self.config.central_noise_multiplier
        if z > 0 and round_id > 0:
            from streams.federated import epsilon_for  # opacus (torch) only when central noise is on

            mv.central_privacy.CopyFrom(
                PrivacySpent(
                    epsilon=epsilon_for(z, 1.0, round_id, self.config.central_delta),
                    delta=self.config.central_delta,
                    accountant="rdp: gaussian on the sum, client-level",
                )
            )
        return mv
