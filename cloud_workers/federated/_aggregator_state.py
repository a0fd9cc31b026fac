"""The aggregator as a pure state machine: validate and dedupe updates, receipt them, add the closed set.

It holds only the Paillier public key. Per (round, shard, client) the first valid update in log order
wins; a byte-identical repeat is a duplicate and a different second update is CONFLICTING_UPDATE. Once a
round is closed only the updates its close names are taken (a restarted aggregator reads the close before
re-reading the round's updates); any other is STALE. When
the coordinator's close names the contributors, it multiplies exactly their ciphertexts, shard by shard,
and names the signed envelopes they came in, for the keyholder to check.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from cloud_workers.federated._updates import AssembledUpdate
from schemas import ContributorRef, EncryptedSum, RejectReason, RoundAnnouncement, RoundClose, UpdateReceipt
from streams import EnvelopeRejected
from streams.federated import (
    EncryptedAccumulator,
    PublicKey,
    RoundSpec,
    ciphertext_from_bytes,
    ciphertext_to_bytes,
)

__all__ = ["AggregatorState", "UpdateVerdict"]


class UpdateVerdict(enum.Enum):
    ACCEPTED = "accepted"
    #: The same update again (at-least-once delivery, or a replay): dropped, counted.
    DUPLICATE = "duplicate"
    #: For a round not announced yet as far as this reader knows: hold until the rounds topic is read up.
    PENDING = "pending"
    #: Another model's update: not this aggregator's business.
    IGNORED = "ignored"


@dataclass
class _Round:
    announcement: RoundAnnouncement
    spec: RoundSpec
    close: RoundClose | None = None


@dataclass
class _Accepted:
    update: AssembledUpdate
    ciphertexts: list[int]


def _listed(close: RoundClose, client_id: str, shard: int, u: AssembledUpdate) -> bool:
    """Whether the close names this very update (a restarted aggregator reads the close before the updates)."""
    for c in close.contributors:
        if c.client_id == client_id:
            return shard < len(c.update_sha256) and bytes(c.update_sha256[shard]) == u.sha256
    return False


def _reject(reason: int, detail: str, u: AssembledUpdate) -> EnvelopeRejected:
    return EnvelopeRejected(reason, detail, producer_id=u.producer_id, seq=0)


@dataclass
class AggregatorState:
    """See the module docstring. ``owns(round_id, shard)`` says which shards this instance adds up."""

    model_name: str
    public_key: PublicKey
    owns: Callable[[int, int], bool]
    rounds: dict[int, _Round] = field(default_factory=dict)
    latest: int = 0
    updates: dict[tuple[int, int, str], _Accepted] = field(default_factory=dict)
    receipted: set[tuple[int, int, str]] = field(default_factory=set)
    summed: set[tuple[int, int]] = field(default_factory=set)

    # --- what the log says --------------------------------------------------------------------------------

    def on_announcement(self, ann: RoundAnnouncement) -> None:
        if ann.model_name != self.model_name or ann.round_id in self.rounds:
            return
        self.rounds[ann.round_id] = _Round(ann, RoundSpec.from_announcement(ann))
        if ann.round_id > self.latest:
            self.latest = ann.round_id
            for key in [k for k in self.updates if k[0] < ann.round_id]:
                del self.updates[key]

    def on_close(self, close: RoundClose) -> None:
        if close.model_name != self.model_name:
            return
        self.on_announcement(close.announcement)
        rnd = self.rounds.get(close.round_id)
        if rnd is not None and rnd.close is None:
            rnd.close = close

    def on_receipt(self, receipt: UpdateReceipt) -> None:
        """One of our receipts, read back: not to be sent again."""
        if receipt.model_name == self.model_name:
            self.receipted.add((receipt.round_id, receipt.shard, receipt.client_id))

    def on_sum(self, s: EncryptedSum) -> None:
        """One of our sums, read back: not to be sent again."""
        if s.model_name == self.model_name:
            self.summed.add((s.round_id, s.shard))

    def on_update(self, u: AssembledUpdate) -> UpdateVerdict:
        """Validate one complete update; raises ``EnvelopeRejected`` with the reason it is refused."""
        upd = u.update
        if not upd.model_name:
            raise _reject(RejectReason.REJECT_REASON_MALFORMED, "the update names no model", u)
        if upd.model_name != self.model_name:
            return UpdateVerdict.IGNORED
        rnd = self.rounds.get(upd.round_id)
        if rnd is None:
            if upd.round_id > self.latest or not self.rounds:  # not one announcement read yet: round 0 too
                return UpdateVerdict.PENDING
            raise _reject(RejectReason.REJECT_REASON_WRONG_ROUND, f"round {upd.round_id} was never announced", u)
        if upd.round_id < self.latest or (
            rnd.close is not None and not _listed(rnd.close, upd.client_id, upd.shard, u)
        ):
            raise _reject(RejectReason.REJECT_REASON_STALE, f"round {upd.round_id} is closed", u)
        ann, spec = rnd.announcement, rnd.spec
        if upd.client_id != u.producer_id:
            raise _reject(
                RejectReason.REJECT_REASON_INVALID_UPDATE, f"client {upd.client_id} but signed by {u.producer_id}", u
            )
        if upd.client_id not in ann.invited:
            raise _reject(RejectReason.REJECT_REASON_UNAUTHORIZED, f"{upd.client_id} is not invited", u)
        if upd.paillier_key_id != ann.paillier_key_id or upd.num_shards != spec.num_shards:
            raise _reject(RejectReason.REJECT_REASON_INVALID_UPDATE, "key id or shard count differs from the round", u)
        if upd.shard >= spec.num_shards or not self.owns(upd.round_id, upd.shard):
            raise _reject(RejectReason.REJECT_REASON_INVALID_UPDATE, f"shard {upd.shard} does not belong here", u)
        start, stop = spec.shard_ciphertexts(upd.shard)
        if len(upd.ciphertexts) != stop - start:
            raise _reject(
                RejectReason.REJECT_REASON_INVALID_UPDATE,
                f"shard {upd.shard} needs {stop - start} ciphertexts, got {len(upd.ciphertexts)}",
                u,
            )
        try:
            cts = [ciphertext_from_bytes(self.public_key, bytes(c)) for c in upd.ciphertexts]
        except ValueError as exc:
            raise _reject(RejectReason.REJECT_REASON_INVALID_UPDATE, f"bad ciphertext: {exc}", u) from None
        key = (upd.round_id, upd.shard, upd.client_id)
        existing = self.updates.get(key)
        if existing is not None:
            if existing.update.sha256 == u.sha256:
                return UpdateVerdict.DUPLICATE
            raise _reject(
                RejectReason.REJECT_REASON_CONFLICTING_UPDATE,
                f"{upd.client_id} already sent another update for round {upd.round_id} shard {upd.shard}",
                u,
            )
        self.updates[key] = _Accepted(u, cts)
        return UpdateVerdict.ACCEPTED

    # --- decisions ----------------------------------------------------------------------------------------

    def receipts_due(self) -> list[UpdateReceipt]:
        """Receipts for accepted updates of open rounds not yet receipted (recorded as sent)."""
        out: list[UpdateReceipt] = []
        for key, acc in sorted(self.updates.items()):
            rnd = self.rounds.get(key[0])
            if key in self.receipted or rnd is None or rnd.close is not None:
                continue
            upd = acc.update.update
            out.append(
                UpdateReceipt(
                    model_name=self.model_name,
                    round_id=upd.round_id,
                    shard=upd.shard,
                    client_id=upd.client_id,
                    hospital_id=acc.update.hospital_id,
                    update_sha256=acc.update.sha256,
                    num_examples=upd.num_examples,
                    epsilon=upd.epsilon,
                    delta=upd.delta,
                    parts=list(acc.update.parts),
                )
            )
            self.receipted.add(key)
        return out

    def missing(self, round_id: int, shard: int) -> list[str]:
        """Contributors the close names whose update for ``shard`` this aggregator does not hold (yet)."""
        rnd = self.rounds.get(round_id)
        if rnd is None or rnd.close is None:
            return []
        out = []
        for c in rnd.close.contributors:
            acc = self.updates.get((round_id, shard, c.client_id))
            if acc is None or shard >= len(c.update_sha256) or acc.update.sha256 != c.update_sha256[shard]:
                out.append(c.client_id)
        return out

    def sums_due(self) -> list[EncryptedSum]:
        """Encrypted sums of the latest round's owned shards, once it is closed and every named update is here."""
        rnd = self.rounds.get(self.latest)
        if rnd is None or rnd.close is None:
            return []
        out: list[EncryptedSum] = []
        r, spec = self.latest, rnd.spec
        for shard in range(spec.num_shards):
            if (r, shard) in self.summed or not self.owns(r, shard) or self.missing(r, shard):
                continue
            start, stop = spec.shard_ciphertexts(shard)
            contributors = rnd.close.contributors
            acc = EncryptedAccumulator(self.public_key, stop - start, max(1, len(contributors)))
            refs: list[ContributorRef] = []
            for c in sorted(contributors, key=lambda c: c.client_id):
                accepted = self.updates[(r, shard, c.client_id)]
                acc.add(accepted.ciphertexts)
                refs.append(
                    ContributorRef(
                        client_id=c.client_id, update_sha256=accepted.update.sha256, parts=accepted.update.parts
                    )
                )
            out.append(
                EncryptedSum(
                    model_name=self.model_name,
                    round_id=r,
                    shard=shard,
                    paillier_key_id=spec.paillier_key_id,
                    ciphertexts=[ciphertext_to_bytes(self.public_key, c) for c in acc.ciphertexts],
                    contributors=refs,
                )
            )
            self.summed.add((r, shard))
        return out
