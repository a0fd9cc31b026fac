"""The coordinator as a pure state machine: fed what the log holds, it says what to publish next.

Its whole state is rebuilt from the log on every start: the latest ``ModelVersion`` (exact float64
weights), the latest round's announcement and close, the aggregator's receipts and the keyholder's
aggregates for that round. Every decision is a function of that state (and of the clock only for the
deadline), so a restarted coordinator continues exactly where the log says it was.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from cloud_workers.federated._accounting import PrivacyLedger
from cloud_workers.federated._coordinator_config import (
    WEIGHTS_FORMAT,
    CoordinatorConfig,
    apply_mean,
    decode_weights,
    encode_weights,
)
from schemas import (
    MaskKind,
    ModelVersion,
    PartitionOffset,
    PlainAggregate,
    RoundAnnouncement,
    RoundClose,
    RoundContributor,
    UpdateReceipt,
)
from streams.federated import (
    STATS_ROUND,
    RoundSpec,
    decode_moment_sums,
    dp_step_violation,
    standardiser_from_moments,
    standardiser_metrics,
    update_ema,
)

__all__ = ["CoordinatorState"]


@dataclass
class _Model:
    version: int
    round_id: int
    params: NDArray[np.float64]
    ledger: PrivacyLedger
    #: The mask EMA published with this version (None: none published).
    ema: NDArray[np.float64] | None = None


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
        ema = decode_weights(bytes(mv.mask_ema)) if mv.mask_ema else None
        self.model = _Model(mv.version, mv.round_id, params, PrivacyLedger.from_model(mv), ema)

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
        ann = rnd.announcement
        if ann.HasField("dp_policy"):  # re-check what the signed updates declared, as the keyholder read them
            declared = {p.client_id: p for p in agg.privacy}
            if sorted(declared) != self._contributor_ids(rnd.close):
                return False
            for p in declared.values():
                if dp_step_violation(ann.dp_policy, p.round_dp if p.HasField("round_dp") else None) is not None:
                    return False
        rnd.aggregates.setdefault(agg.shard, agg)
        return True

    # --- decisions ----------------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Every planned round has been applied."""
        return self.model is not None and self.model.round_id >= self.config.rounds

    def initial_model_due(self) -> ModelVersion | None:
        """Version 0 when nothing was ever published (and the run has no statistics round, whose result is
        version 0: :meth:`stats_apply_due`)."""
        if self.model is not None or self.config.stats_features:
            return None
        mv = self._model_version(0, 0, self._initial, PrivacyLedger(), [], {})
        self.on_model(mv)
        return mv

    def stats_announcement_due(self) -> bool:
        """The statistics round is due: the run has one and nothing was announced or published yet."""
        return bool(self.config.stats_features) and self.model is None and self.round is None

    def announce_stats(self, now_ns: int, start_offsets: list[PartitionOffset]) -> RoundAnnouncement:
        """Build (and record) the statistics round's announcement."""
        ann = self.config.stats_announcement(now_ns)
        ann.start_offsets.extend(start_offsets)
        self.on_announcement(ann)
        return ann

    def stats_apply_ready(self) -> bool:
        """The statistics round is closed and its aggregate is in, and version 0 is not yet published."""
        rnd = self.round
        if rnd is None or rnd.close is None or self.model is not None:
            return False
        return rnd.announcement.round_id == STATS_ROUND and len(rnd.aggregates) >= rnd.spec.num_shards

    def stats_apply_due(self, now_ns: int) -> ModelVersion | None:
        """Version 0 (the initial parameters) carrying the federation's standardiser, computed from the exact
        secure sum of the contributors' moments, once the statistics round's aggregate is in."""
        if not self.stats_apply_ready():
            return None
        rnd = self.round
        assert rnd is not None and rnd.close is not None
        values = np.concatenate([np.asarray(rnd.aggregates[s].values) for s in range(rnd.spec.num_shards)])
        contributors = [c.client_id for c in rnd.close.contributors]
        moments = decode_moment_sums(values, len(contributors))
        if len(moments) != 2 * self.config.stats_features + 1:
            raise ValueError(f"the statistics sum has {len(moments)} moments, not {2 * self.config.stats_features + 1}")
        mean, std = standardiser_from_moments(moments)
        metrics = standardiser_metrics(mean, std, rows=float(moments[0]), hospitals=len(contributors))
        metrics["round_s"] = max(0.0, (now_ns - rnd.announcement.announced_at) / 1e9)
        mv = self._model_version(0, STATS_ROUND, self._initial, PrivacyLedger(), contributors, metrics)
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
        mask = spec.mask(prev_update, ema=model.ema)
        total_weight = sum(spec.example_weight(c.num_examples) for c in close.contributors)
        noise = self._central_noise(spec.round_id, spec.mask_k)
        params = apply_mean(model.params, mask, masked_sum, total_weight, rnd.announcement.server_lr, noise)
        ledger = copy.deepcopy(model.ledger)
        declared: dict[str, int] = {}
        for agg in rnd.aggregates.values():
            for p in agg.privacy:
                declared[p.client_id] = max(declared.get(p.client_id, 0), p.rounds_trained)
        ledger.charge(rnd.announcement, [c.client_id for c in close.contributors], declared)
        metrics = {
            "round_s": max(0.0, (now_ns - rnd.announcement.announced_at) / 1e9),
            "contributors": float(len(close.contributors)),
            "total_weight": float(total_weight),
        }
        contributors = [c.client_id for c in close.contributors]
        mv = self._model_version(model.version + 1, spec.round_id, params, ledger, contributors, metrics)
        if spec.mask_kind == MaskKind.MASK_KIND_EMA_EXPLORE:
            mv.mask_ema = encode_weights(update_ema(model.ema, params - model.params, spec.mask_ema_decay, mask))
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
        ledger: PrivacyLedger,
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
            contributors=contributors,
            metrics=metrics,
        )
        mv.privacy.CopyFrom(ledger.record_privacy())
        if (sums := ledger.sum_privacy()) is not None:
            mv.central_privacy.CopyFrom(sums)
        return mv
