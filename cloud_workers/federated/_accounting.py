"""Privacy accounting the coordinator (and any auditor) does itself, from the log: no one's word is taken.

Record level (DP-SGD at each hospital): every round a hospital took part in costs it the round's announced
policy, one ``(noise_multiplier, max_sample_rate, max_steps_per_round)`` RDP entry. The rounds counted are the
larger of the rounds it contributed to (the coordinator's closes) and the rounds its own signed accountant says it
trained (as the keyholder verified them), so neither a lost receipt nor a lying client lowers the figure. A round
contributed to without a DP policy makes that hospital's epsilon infinite.

Client level (noise on the sum: the coordinator's central noise plus the contributors' distributed shares): each
round a hospital contributed to is one Gaussian mechanism of sensitivity ``clip_norm`` with the noise multiplier
:func:`~streams.federated.sum_noise_multiplier` gives. A round without such noise makes it infinite.

The ledger travels in every ``ModelVersion`` (``privacy.clients``, ``central_privacy.clients``), so a restarted
coordinator continues from the latest version and an auditor can recompute each figure
(``medkiosk fl privacy-report``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from schemas import ClientPrivacy, DpStep, ModelVersion, PrivacySpent, RoundAnnouncement
from streams.federated import history_epsilon, policy_entry, policy_violation, sum_noise_multiplier

__all__ = ["RECORD_LEVEL", "SUM_NOISE", "PrivacyLedger"]

RECORD_LEVEL = "dp-sgd record-level at each hospital (sampled Gaussian), epsilon = max over hospitals"
SUM_NOISE = "gaussian noise on the round sum (central + client shares), client-level, epsilon = max over hospitals"
_ACCOUNTANT = "rdp (opacus analysis at streams.federated.RDP_ORDERS), recomputed from the announced policies"

Entry = tuple[float, float, int]


@dataclass
class _Account:
    rounds: int = 0
    history: list[Entry] = field(default_factory=list)
    unbounded: bool = False

    def epsilon(self, delta: float) -> float:
        if self.unbounded:
            return math.inf
        return history_epsilon(self.history, delta) if self.history else 0.0


def _restore(spent: PrivacySpent) -> dict[str, _Account]:
    return {
        c.client_id: _Account(
            c.rounds,
            [(h.noise_multiplier, h.sample_rate, h.steps) for h in c.history],
            math.isinf(c.epsilon),
        )
        for c in spent.clients
    }


def _spent(accounts: Mapping[str, _Account], delta: float, mechanism: str) -> PrivacySpent:
    clients = [
        ClientPrivacy(
            client_id=cid,
            rounds=acc.rounds,
            epsilon=acc.epsilon(delta),
            history=[DpStep(noise_multiplier=z, sample_rate=q, steps=t) for z, q, t in acc.history],
        )
        for cid, acc in sorted(accounts.items())
    ]
    return PrivacySpent(
        epsilon=max((c.epsilon for c in clients), default=0.0),
        delta=delta,
        accountant=_ACCOUNTANT,
        mechanism=mechanism,
        clients=clients,
    )


@dataclass
class PrivacyLedger:
    """Per hospital: the rounds charged and the accountant history, record level and client level."""

    record: dict[str, _Account] = field(default_factory=dict)
    sums: dict[str, _Account] = field(default_factory=dict)
    record_delta: float = 0.0
    sum_delta: float = 0.0

    @classmethod
    def from_model(cls, mv: ModelVersion) -> PrivacyLedger:
        """The ledger a published model version carries."""
        return cls(
            record=_restore(mv.privacy),
            sums=_restore(mv.central_privacy) if mv.HasField("central_privacy") else {},
            record_delta=mv.privacy.delta,
            sum_delta=mv.central_privacy.delta if mv.HasField("central_privacy") else 0.0,
        )

    def charge(
        self,
        ann: RoundAnnouncement,
        contributors: Iterable[str],
        declared_rounds: Mapping[str, int],
    ) -> None:
        """Charge one applied round to its contributors (central noise as the announcement states it)."""
        central_noise_multiplier, central_delta = ann.central_noise_multiplier, ann.central_delta
        who = sorted(set(contributors))
        has_policy = ann.HasField("dp_policy") and policy_violation(ann.dp_policy) is None
        entry = policy_entry(ann.dp_policy) if has_policy else None
        if has_policy:
            self.record_delta = max(self.record_delta, ann.dp_policy.delta)
        z_sum = sum_noise_multiplier(
            central_noise_multiplier=central_noise_multiplier,
            client_noise_std=ann.noise_std,
            contributors=len(who),
            clip_norm=ann.clip_norm,
        )
        if z_sum > 0:
            self.sum_delta = max(self.sum_delta, central_delta)
        for cid in who:
            acc = self.record.setdefault(cid, _Account())
            rounds = max(acc.rounds + 1, int(declared_rounds.get(cid, 0)))
            if entry is None:
                acc.unbounded = True
            else:
                acc.history.extend([entry] * (rounds - acc.rounds))
            acc.rounds = rounds
            s = self.sums.setdefault(cid, _Account())
            s.rounds += 1
            if z_sum > 0:
                s.history.append((z_sum, 1.0, 1))
            else:
                s.unbounded = True

    def record_privacy(self) -> PrivacySpent:
        """Record-level privacy (DP-SGD) per hospital and its maximum."""
        return _spent(self.record, self.record_delta, RECORD_LEVEL)

    def sum_privacy(self) -> PrivacySpent | None:
        """Client-level privacy of the noise on the sums, when any round had such noise."""
        if not any(acc.history for acc in self.sums.values()):
            return None
        return _spent(self.sums, self.sum_delta, SUM_NOISE)
