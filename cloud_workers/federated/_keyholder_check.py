"""The keyholder's check, as pure functions: is this encrypted sum what it claims to be?

An ``EncryptedSum`` names its contributors: per client, the SHA-256 of its update and the envelopes
(topic, partition, offset, envelope hash) the update travelled in. The keyholder decrypts it only when:

1. the round is one it knows (announced and closed by the coordinator), the shard and key are the round's;
2. the contributors are distinct clients of distinct hospitals, at least the round's ``min_clients``;
3. they are exactly the contributors the coordinator's close lists, with the same update digests;
4. every named envelope, read back from the log by the keyholder itself, verifies (signature of that
   client, registered for its hospital), hashes to the named envelope hash, and the parts re-assemble to
   an update with that digest, for this model, round, shard and key, from an invited client;
5. the product of those updates' ciphertexts equals the sum (re-adding is cheap).

It also decrypts at most one contributor set per (round, shard) (the wiring keeps that record), so no two
overlapping sums can be differenced into one hospital's update.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import TopicPartition
from google.protobuf.message import DecodeError, Message

from cloud_workers.federated._updates import assemble_parts, contributors_digest
from schemas import ContributorPrivacy, EncryptedSum, ModelUpdate, RejectReason, RoundAnnouncement, RoundClose
from streams import EnvelopeRejected, Keyring, decode_payload, decrypt, envelope_hash, parse, verify_signature
from streams.federated import EncryptedAccumulator, PublicKey, RoundSpec, ciphertext_from_bytes, key_id

__all__ = ["CheckedSum", "check_claims", "referenced_offsets", "verify_sum"]

R = RejectReason


@dataclass(frozen=True, slots=True)
class CheckedSum:
    """A sum that passed every check: its ciphertexts (as re-added) and the contributor set."""

    round_id: int
    shard: int
    ciphertexts: list[int]
    contributors: list[str]
    digest: bytes
    #: What each contributor's signed update declares about its DP training, in contributor order.
    privacy: tuple[ContributorPrivacy, ...] = ()


def _refuse(reason: int, detail: str) -> EnvelopeRejected:
    return EnvelopeRejected(reason, detail)


def check_claims(s: EncryptedSum, ann: RoundAnnouncement, close: RoundClose, keyring: Keyring) -> None:
    """Checks 1-3, which need nothing from the log. Raises ``EnvelopeRejected`` with the reason."""
    spec = RoundSpec.from_announcement(ann)
    if s.round_id != ann.round_id or close.round_id != ann.round_id or s.model_name != ann.model_name:
        raise _refuse(R.REJECT_REASON_WRONG_ROUND, f"sum for round {s.round_id}, not {ann.round_id}")
    if s.paillier_key_id != ann.paillier_key_id or s.shard >= spec.num_shards:
        raise _refuse(R.REJECT_REASON_INVALID_UPDATE, "key id or shard does not match the round")
    start, stop = spec.shard_ciphertexts(s.shard)
    if len(s.ciphertexts) != stop - start:
        raise _refuse(R.REJECT_REASON_INVALID_UPDATE, f"shard needs {stop - start} ciphertexts")
    clients = [c.client_id for c in s.contributors]
    if len(set(clients)) != len(clients):
        raise _refuse(R.REJECT_REASON_FORGED_CONTRIBUTOR, "a contributor is listed twice")
    hospitals = set()
    for client in clients:
        info = keyring.producers.get(client)
        if info is None or not info.hospital_id:
            raise _refuse(R.REJECT_REASON_FORGED_CONTRIBUTOR, f"{client} is not a registered hospital client")
        hospitals.add(info.hospital_id)
    if len(hospitals) < ann.min_clients:
        raise _refuse(
            R.REJECT_REASON_TOO_FEW_CONTRIBUTORS,
            f"{len(clients)} contributors from {len(hospitals)} hospitals; the round needs {ann.min_clients}",
        )
    claimed = {(c.client_id, bytes(c.update_sha256)) for c in s.contributors}
    closed = {
        (c.client_id, bytes(c.update_sha256[s.shard])) for c in close.contributors if s.shard < len(c.update_sha256)
    }
    if claimed != closed or len(closed) != len(close.contributors):
        raise _refuse(R.REJECT_REASON_CONTRIBUTORS_MISMATCH, "contributors differ from the round's close")


def referenced_offsets(s: EncryptedSum) -> dict[TopicPartition, set[int]]:
    """Where the keyholder must read the named envelopes."""
    out: dict[TopicPartition, set[int]] = {}
    for c in s.contributors:
        for ref in c.parts:
            out.setdefault(TopicPartition(ref.topic, ref.partition), set()).add(ref.offset)
    return out


def _contributor_update(
    client_id: str,
    refs: list[tuple[str, int, int, bytes]],
    records: Mapping[tuple[str, int, int], bytes],
    keyring: Keyring,
) -> tuple[ModelUpdate, bytes]:
    messages: list[Message] = []
    for topic, partition, offset, digest in refs:
        raw = records.get((topic, partition, offset))
        if raw is None:
            raise _refuse(R.REJECT_REASON_FORGED_CONTRIBUTOR, f"{client_id}: nothing at {topic}/{partition}@{offset}")
        try:
            rec = parse(raw)
            verify_signature(rec, keyring)
            if rec.producer_id != client_id or envelope_hash(rec) != digest:
                raise _refuse(
                    R.REJECT_REASON_FORGED_CONTRIBUTOR, f"{client_id}: {topic}/{partition}@{offset} is not its envelope"
                )
            messages.append(decode_payload(rec, decrypt(rec, keyring)))
        except EnvelopeRejected as exc:
            if exc.reason == R.REJECT_REASON_FORGED_CONTRIBUTOR:
                raise
            raise _refuse(
                R.REJECT_REASON_FORGED_CONTRIBUTOR, f"{client_id}: envelope {exc.label}: {exc.detail}"
            ) from None
    try:
        payload, sha = assemble_parts(messages)
        update = ModelUpdate.FromString(payload)
    except (ValueError, DecodeError) as exc:
        raise _refuse(R.REJECT_REASON_FORGED_CONTRIBUTOR, f"{client_id}: parts do not make an update: {exc}") from None
    return update, sha


def verify_sum(
    s: EncryptedSum,
    ann: RoundAnnouncement,
    close: RoundClose,
    records: Mapping[tuple[str, int, int], bytes],
    keyring: Keyring,
    public_key: PublicKey,
    *,
    updates_topic: str,
) -> CheckedSum:
    """All five checks (see the module docstring); ``records`` maps (topic, partition, offset) to the raw
    record values the keyholder read. Raises ``EnvelopeRejected`` with the reason."""
    check_claims(s, ann, close, keyring)
    if ann.paillier_key_id != key_id(public_key):
        raise _refuse(R.REJECT_REASON_INVALID_UPDATE, "the round uses another Paillier key")
    spec = RoundSpec.from_announcement(ann)
    start, stop = spec.shard_ciphertexts(s.shard)
    acc = EncryptedAccumulator(public_key, stop - start, len(s.contributors))
    privacy: list[ContributorPrivacy] = []
    for c in s.contributors:
        if not c.parts or any(ref.topic != updates_topic for ref in c.parts):
            raise _refuse(R.REJECT_REASON_FORGED_CONTRIBUTOR, f"{c.client_id}: parts must lie in {updates_topic}")
        refs = [(r.topic, r.partition, r.offset, bytes(r.envelope_sha256)) for r in c.parts]
        update, sha = _contributor_update(c.client_id, refs, records, keyring)
        if sha != bytes(c.update_sha256):
            raise _refuse(R.REJECT_REASON_FORGED_CONTRIBUTOR, f"{c.client_id}: update digest does not match")
        fields = (update.model_name, update.round_id, update.shard, update.client_id, update.paillier_key_id)
        if fields != (ann.model_name, ann.round_id, s.shard, c.client_id, ann.paillier_key_id):
            raise _refuse(R.REJECT_REASON_FORGED_CONTRIBUTOR, f"{c.client_id}: update is for {fields}")
        if c.client_id not in ann.invited:
            raise _refuse(R.REJECT_REASON_FORGED_CONTRIBUTOR, f"{c.client_id} was not invited")
        declared = ContributorPrivacy(client_id=c.client_id, rounds_trained=update.accountant.rounds_trained)
        if update.HasField("round_dp"):
            declared.round_dp.CopyFrom(update.round_dp)
        privacy.append(declared)
        try:
            acc.add([ciphertext_from_bytes(public_key, bytes(ct)) for ct in update.ciphertexts])
        except ValueError as exc:
            raise _refuse(R.REJECT_REASON_FORGED_CONTRIBUTOR, f"{c.client_id}: bad ciphertexts: {exc}") from None
    try:
        claimed = [ciphertext_from_bytes(public_key, bytes(ct)) for ct in s.ciphertexts]
    except ValueError as exc:
        raise _refuse(R.REJECT_REASON_SUM_MISMATCH, f"bad sum ciphertext: {exc}") from None
    if claimed != acc.ciphertexts:
        raise _refuse(R.REJECT_REASON_SUM_MISMATCH, "the sum is not the product of its contributors' ciphertexts")
    pairs = [(c.client_id, bytes(c.update_sha256)) for c in s.contributors]
    return CheckedSum(
        s.round_id, s.shard, acc.ciphertexts, sorted(p[0] for p in pairs), contributors_digest(pairs), tuple(privacy)
    )
