"""The keyholder process: holds the Paillier private key and decrypts nothing but verified round sums.

Each ``EncryptedSum`` is checked (``_keyholder_check``: round, quorum of distinct hospitals, the
coordinator's close, every contributor's signed envelopes read back from the log, the homomorphic
product) and held against the keyholder's own policy (``_keyholder_policy``: its minimum of contributors, the DP
policy it requires, each contributor's epsilon as it computes it); only then is it decrypted, unpacked and
dequantised, and the plaintext shard sum is sealed,
encrypted for the coordinator, on the aggregates topic. At most one contributor set per (round, shard) is
ever decrypted: the set already released is read back from that topic after a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from cloud_workers.federated._keyholder_check import check_claims, referenced_offsets, verify_sum
from cloud_workers.federated._keyholder_policy import KeyholderPolicy
from cloud_workers.federated._publish import Publisher, check_producer
from cloud_workers.federated._role import FlIdentities, FlRole, PartitionFilter
from cloud_workers.federated._updates import contributors_digest
from schemas import EncryptedSum, PlainAggregate, RejectReason, RoundAnnouncement, RoundClose
from streams import BusMetrics, BusSettings, EnvelopeRejected, FlTopics, Keyring, LogEvent
from streams.federated import STATS_ROUND, PrivateKey, RoundSpec, decode_aggregate, decrypt_aggregate

__all__ = ["Keyholder"]

R = RejectReason


@dataclass
class _Round:
    announcement: RoundAnnouncement
    close: RoundClose | None = None


def _digests(s: EncryptedSum) -> tuple[bytes, bytes]:
    """(contributor-set digest, digest of the whole sum message: ciphertexts and references)."""
    pairs = ((c.client_id, bytes(c.update_sha256)) for c in s.contributors)
    return contributors_digest(pairs), hashlib.sha256(s.SerializeToString(deterministic=True)).digest()


class Keyholder(FlRole):
    """Wiring around the keyholder's check (see ``cloud_workers.federated._role`` for the loop)."""

    def __init__(
        self,
        model_name: str,
        keyholder_id: str,
        private_key: PrivateKey,
        settings: BusSettings,
        keyring: Keyring,
        metrics: BusMetrics,
        *,
        topics: FlTopics | None = None,
        ids: FlIdentities | None = None,
        hold_at: str | None = None,
        policy: KeyholderPolicy | None = None,
    ) -> None:
        super().__init__(keyholder_id, settings, keyring, metrics, topics or FlTopics(), hold_at=hold_at)
        self.ids = ids or FlIdentities()
        self.policy = policy or KeyholderPolicy()
        self.model_name = model_name
        self._priv = private_key
        self._aggregate_key = keyring.latest_data_key(self.ids.aggregate_domain)
        self.rounds: dict[int, _Round] = {}
        self.latest = 0
        #: (round, shard) -> (contributor-set digest, sum digest) of what was decrypted for it.
        self.decrypted: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        self.pending: list[tuple[LogEvent, EncryptedSum]] = []
        self.out = Publisher(settings.state_dir / keyholder_id / "outbox.db", keyholder_id, settings, keyring, metrics)

    def inputs(self) -> Mapping[str, PartitionFilter | None]:
        return {self.topics.sums: None, self.topics.aggregates: None}

    def latest_announcement(self) -> RoundAnnouncement | None:
        rnd = self.rounds.get(self.latest)
        return rnd.announcement if rnd is not None else None

    async def start_outputs(self, stop: asyncio.Event) -> None:
        await self.out.start(stop)

    async def stop_outputs(self) -> None:
        await self.out.stop()

    def _on_announcement(self, ann: RoundAnnouncement) -> None:
        if ann.model_name == self.model_name and ann.round_id not in self.rounds:
            self.rounds[ann.round_id] = _Round(ann)
            self.latest = max(self.latest, ann.round_id)

    async def handle(self, event: LogEvent) -> None:
        topic, msg = event.record.topic, event.message
        if topic == self.topics.rounds:
            check_producer(event, self.keyring, {self.ids.coordinator}, "rounds")
            if isinstance(msg, RoundAnnouncement):
                self._on_announcement(msg)
            elif isinstance(msg, RoundClose) and msg.model_name == self.model_name:
                self._on_announcement(msg.announcement)
                rnd = self.rounds[msg.round_id]
                rnd.close = rnd.close or msg
        elif topic == self.topics.sums and isinstance(msg, EncryptedSum):
            check_producer(event, self.keyring, self.ids.aggregators, "encrypted sums")
            if msg.model_name == self.model_name:
                self.pending.append((event, msg))
        elif (
            topic == self.topics.aggregates
            and event.envelope.producer_id == self.name
            and isinstance(msg, PlainAggregate)
            and msg.model_name == self.model_name
        ):
            self.decrypted.setdefault(
                (msg.round_id, msg.shard), (bytes(msg.contributors_sha256), bytes(msg.sum_sha256))
            )

    def _classify(self, s: EncryptedSum) -> str:
        """ "check", "skip" (this very set was already decrypted), "wait" (round or close not read yet);
        raises ``EnvelopeRejected`` for a sum that can never be decrypted."""
        rnd = self.rounds.get(s.round_id)
        if rnd is None or rnd.close is None:
            if rnd is None and s.round_id < self.latest:
                raise EnvelopeRejected(R.REJECT_REASON_WRONG_ROUND, f"round {s.round_id} was never announced")
            return "wait"
        if s.round_id < self.latest:
            raise EnvelopeRejected(R.REJECT_REASON_STALE, f"round {s.round_id} is over")
        if self.decrypted.get((s.round_id, s.shard)) == _digests(s):
            return "skip"  # this very sum was released already (an aggregator resent it)
        return "check"

    async def _process(self, s: EncryptedSum) -> None:
        rnd = self.rounds[s.round_id]
        assert rnd.close is not None
        self.policy.check_round(rnd.announcement)
        check_claims(s, rnd.announcement, rnd.close, self.keyring)  # cheap refusals before reading the log
        found = await self.reader.fetch(referenced_offsets(s))
        records = {(tp.topic, tp.partition, off): rec.value or b"" for (tp, off), rec in found.items()}
        checked = verify_sum(
            s,
            rnd.announcement,
            rnd.close,
            records,
            self.keyring,
            self._priv.public_key,
            updates_topic=self.topics.updates,
        )
        hospitals = {self.keyring.producers[c].hospital_id for c in checked.contributors}
        self.policy.check_contributors(rnd.announcement, len(hospitals), checked.privacy, self._past_rounds(s.round_id))
        if (s.round_id, s.shard) in self.decrypted:  # a genuine sum of the closed set is unique: this is not it
            raise EnvelopeRejected(
                R.REJECT_REASON_CONTRIBUTORS_MISMATCH,
                f"round {s.round_id} shard {s.shard} was already decrypted with another sum",
            )
        spec = RoundSpec.from_announcement(rnd.announcement)
        start, stop = spec.shard_values(s.shard)
        plaintexts = decrypt_aggregate(self._priv, checked.ciphertexts)
        self.fl.decryption()
        try:
            values = decode_aggregate(plaintexts, spec.encode_spec, len(checked.contributors), stop - start)
        except ValueError as exc:
            raise EnvelopeRejected(R.REJECT_REASON_INVALID_UPDATE, f"decrypted slots out of range: {exc}") from None
        await self.hold("after_decrypt", s.round_id)
        agg = PlainAggregate(
            model_name=s.model_name,
            round_id=s.round_id,
            shard=s.shard,
            values=values.tolist(),
            contributors=checked.contributors,
            contributors_sha256=checked.digest,
            sum_sha256=_digests(s)[1],
            privacy=list(checked.privacy),
        )
        domain = self.ids.aggregate_domain
        req = self.out.request(
            self.topics.aggregates, s.model_name.encode(), agg, hospital_id=domain, data_key=self._aggregate_key
        )
        await self.out.put([req])
        self.decrypted[(s.round_id, s.shard)] = _digests(s)
        self.phase = f"round {s.round_id}: released shard {s.shard}"

    def _past_rounds(self, round_id: int) -> dict[str, list[RoundAnnouncement]]:
        """Per client, the announcements of the earlier closed training rounds it contributed to (the statistics
        round trains nothing)."""
        out: dict[str, list[RoundAnnouncement]] = {}
        for r, rnd in sorted(self.rounds.items()):
            if STATS_ROUND < r < round_id and rnd.close is not None:
                for c in rnd.close.contributors:
                    out.setdefault(c.client_id, []).append(rnd.announcement)
        return out

    async def act(self) -> None:
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        read_up: bool | None = None
        for event, s in pending:
            try:
                verdict = self._classify(s)
                if verdict == "wait":
                    if read_up is None:
                        read_up = await self.rounds_read_up()
                    if read_up:
                        raise EnvelopeRejected(R.REJECT_REASON_WRONG_ROUND, f"round {s.round_id} is not closed")
                    self.pending.append((event, s))
                elif verdict == "check":
                    await self._process(s)
            except EnvelopeRejected as exc:
                await self._refuse(event, exc.reason, exc.detail)
            except ValueError as exc:  # e.g. round parameters that do not decode: refuse, never crash
                await self._refuse(event, R.REJECT_REASON_HANDLER_FAILED, f"{type(exc).__name__}: {exc}")

    async def _refuse(self, event: LogEvent, reason: int, detail: str) -> None:
        rejected = EnvelopeRejected(reason, detail, producer_id=event.envelope.producer_id, seq=event.envelope.seq)
        self.fl.refusal(rejected.label)
        await self.reader.reject(event.record, rejected)

    def stats(self) -> dict[str, object]:
        out = super().stats()
        out["decrypted"] = len(self.decrypted)
        return out
