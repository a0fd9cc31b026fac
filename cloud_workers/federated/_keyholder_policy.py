"""The keyholder's own rules: what it will decrypt, whatever the coordinator announces.

The coordinator is not trusted with privacy: a round announced with ``min_clients = 1`` would let one hospital's
update be decrypted, and a round without (or with a weak) DP policy would let an update out with no guarantee.
So the keyholder has a policy of its own and checks every round against it before decrypting anything:

* ``min_contributors`` (default 3, never below 2): the round must be announced with at least that quorum and the
  sum must hold that many distinct hospitals. At 2, the aggregator together with one of the two hospitals can
  subtract that hospital's update from the decrypted sum and learn the other's exactly; 3 is the smallest count
  at which one colluding hospital still leaves two honest updates mixed.
* ``require_dp`` (default on): the round must announce a DP policy whose noise multiplier is at least
  ``min_noise_multiplier``, whose delta is at most ``max_delta``, and every contributor's signed update must
  declare training that meets it.
* ``max_epsilon``: no contributor may end up above this record-level epsilon, computed by the keyholder itself
  from the announced policies of the rounds that hospital took part in (its closes, as the keyholder read them)
  and the rounds its signed accountant declares.

The statistics round (round 0, ``streams.federated._moments``) trains nothing, so it carries no DP policy: it is
held to the same minimum of contributors and must be a well-formed statistics round (every limb, no noise share,
the step-1 grid), and it is never counted as a training round. What its decrypted sum reveals (the federation's
row count and per-feature mean and standard deviation) is stated in the README's threat model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from schemas import ContributorPrivacy, RejectReason, RoundAnnouncement
from streams import EnvelopeRejected
from streams.federated import (
    STATS_ROUND,
    dp_step_violation,
    history_epsilon,
    policy_entry,
    policy_violation,
    stats_round_violation,
)

__all__ = ["KeyholderPolicy"]

R = RejectReason


@dataclass(frozen=True, kw_only=True)
class KeyholderPolicy:
    """See the module docstring."""

    min_contributors: int = 3
    require_dp: bool = True
    min_noise_multiplier: float = 0.0
    max_delta: float = 1e-5
    max_epsilon: float = 8.0

    def __post_init__(self) -> None:
        if self.min_contributors < 2:
            raise ValueError(f"min_contributors must be at least 2, got {self.min_contributors}")
        if not (self.min_noise_multiplier >= 0 and 0 < self.max_delta < 1 and self.max_epsilon > 0):
            raise ValueError("min_noise_multiplier must be >= 0, max_delta in (0, 1) and max_epsilon positive")

    def check_round(self, ann: RoundAnnouncement) -> None:
        """Refuse a round announced below this policy (``EnvelopeRejected`` with the reason)."""
        if ann.min_clients < self.min_contributors:
            raise EnvelopeRejected(
                R.REJECT_REASON_TOO_FEW_CONTRIBUTORS,
                f"round {ann.round_id} was announced with min_clients {ann.min_clients}; this keyholder "
                f"decrypts only sums of at least {self.min_contributors} hospitals",
            )
        if ann.round_id == STATS_ROUND:
            if (why := stats_round_violation(ann)) is not None:
                raise EnvelopeRejected(R.REJECT_REASON_INVALID_UPDATE, why)
            return
        if not self.require_dp:
            return
        if not ann.HasField("dp_policy"):
            raise EnvelopeRejected(R.REJECT_REASON_INVALID_UPDATE, f"round {ann.round_id} announces no DP policy")
        policy = ann.dp_policy
        why = policy_violation(policy)
        if why is None and policy.noise_multiplier < self.min_noise_multiplier:
            why = f"noise multiplier {policy.noise_multiplier:g} < the keyholder's {self.min_noise_multiplier:g}"
        if why is None and policy.delta > self.max_delta:
            why = f"delta {policy.delta:g} > the keyholder's {self.max_delta:g}"
        if why is not None:
            raise EnvelopeRejected(R.REJECT_REASON_INVALID_UPDATE, f"round {ann.round_id}'s DP policy: {why}")

    def check_contributors(
        self,
        ann: RoundAnnouncement,
        hospitals: int,
        declared: Sequence[ContributorPrivacy],
        past_rounds: Mapping[str, Sequence[RoundAnnouncement]],
    ) -> None:
        """Refuse a sum whose contributors fall short of this policy. ``past_rounds``: per client, the
        announcements of the earlier rounds it contributed to (from the closes the keyholder read)."""
        if hospitals < self.min_contributors:
            raise EnvelopeRejected(
                R.REJECT_REASON_TOO_FEW_CONTRIBUTORS,
                f"{hospitals} hospitals; this keyholder decrypts only sums of at least {self.min_contributors}",
            )
        if not self.require_dp or ann.round_id == STATS_ROUND:
            return
        for c in declared:
            why = dp_step_violation(ann.dp_policy, c.round_dp if c.HasField("round_dp") else None)
            if why is not None:
                raise EnvelopeRejected(R.REJECT_REASON_INVALID_UPDATE, f"{c.client_id}: {why}")
            past = past_rounds.get(c.client_id, ())
            history = [policy_entry(a.dp_policy) for a in past if a.HasField("dp_policy")]
            if len(history) < len(past):
                raise EnvelopeRejected(
                    R.REJECT_REASON_INVALID_UPDATE, f"{c.client_id} took part in a round without a DP policy"
                )
            rounds = max(len(past) + 1, int(c.rounds_trained))
            history += [policy_entry(ann.dp_policy)] * (rounds - len(past))
            eps = history_epsilon(history, ann.dp_policy.delta)
            if not (math.isfinite(eps) and eps <= self.max_epsilon):
                raise EnvelopeRejected(
                    R.REJECT_REASON_INVALID_UPDATE,
                    f"{c.client_id} would reach epsilon {eps:.3f} > the keyholder's {self.max_epsilon:g} "
                    f"after {rounds} rounds",
                )
