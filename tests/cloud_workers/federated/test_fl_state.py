"""The round state machines and the keyholder's check as pure functions: no broker, no processes."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from cloud_workers.federated import (
    AggregatorState,
    CoordinatorState,
    UpdateVerdict,
    apply_mean,
    check_claims,
    contributors_digest,
    decode_weights,
    init_fl_keys,
    verify_sum,
)
from schemas import (
    DpStep,
    EncryptedSum,
    MaskKind,
    ModelVersion,
    PlainAggregate,
    RejectReason,
    RoundAnnouncement,
    RoundClose,
    UpdateReceipt,
)
from streams import EnvelopeRejected, Keyring
from streams.federated import (
    RoundSpec,
    decode_aggregate,
    decrypt_aggregate,
    history_epsilon,
    shard_bounds,
    staleness_weight,
)
from tests.cloud_workers.federated.fl_fakes import Log, client_update, send
from tests.cloud_workers.federated.harness import CLIENTS, DIM, DP_ROUND, FlKeys, config, make_keys

R = RejectReason
A, B, C, D = sorted(CLIENTS)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> FlKeys:
    return make_keys(tmp_path_factory.mktemp("flkeys"))


@pytest.fixture(scope="module")
def everyone(keys: FlKeys) -> Keyring:
    return Keyring.load(keys.root)


def _ann(keys: FlKeys, round_id: int = 1, **overrides: object) -> RoundAnnouncement:
    return config(keys, "m", **overrides).announcement(round_id, round_id - 1, DIM, 1_000)


def _agg(values: list[float], *, round_id: int = 1, declared: dict[str, int] | None = None) -> PlainAggregate:
    """A keyholder's aggregate over every client, with what their signed updates declared."""
    agg = PlainAggregate(model_name="m", round_id=round_id, shard=0, values=values, contributors=sorted(CLIENTS))
    for cid in sorted(CLIENTS):
        p = agg.privacy.add(client_id=cid, rounds_trained=(declared or {}).get(cid, round_id))
        p.round_dp.CopyFrom(DpStep(noise_multiplier=DP_ROUND[0], sample_rate=DP_ROUND[1], steps=DP_ROUND[2]))
    return agg


def _receipt(ann: RoundAnnouncement, client: str, shard: int = 0, **kw: object) -> UpdateReceipt:
    return UpdateReceipt(
        model_name=ann.model_name, round_id=ann.round_id, shard=shard, client_id=client,
        update_sha256=bytes([shard]) * 32, num_examples=40, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


# --- the round spec ---------------------------------------------------------------------------------------


def test_shards_cover_the_ciphertexts_exactly() -> None:
    assert shard_bounds(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert all(a < b for a, b in shard_bounds(9, 8))
    assert shard_bounds(1, 1) == [(0, 1)]
    with pytest.raises(ValueError):
        shard_bounds(2, 3)


def test_round_spec_from_an_announcement(keys: FlKeys) -> None:
    ann = config(keys, "m", mask_fraction=0.5, num_shards=8).announcement(3, 2, 1000, 0)
    spec = RoundSpec.from_announcement(ann)
    assert spec.mask_k == 500 and spec.num_shards == min(8, spec.num_ciphertexts)
    covered = [spec.shard_values(s) for s in range(spec.num_shards)]
    assert covered[0][0] == 0 and covered[-1][1] == 500
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))
    np.testing.assert_array_equal(spec.mask(), spec.mask())  # seeded: every party computes the same mask
    top = RoundSpec.from_announcement(
        config(keys, "m", mask_fraction=0.01, mask_kind=MaskKind.MASK_KIND_TOP_K_PREVIOUS).announcement(2, 1, 1000, 0)
    )
    prev = np.random.default_rng(0).normal(scale=0.01, size=1000)
    prev[[7, 70, 700]] = [5.0, -9.0, 1.0]
    assert top.mask_k == 10 and {7, 70, 700} <= set(top.mask(prev).tolist())
    assert set(top.mask(None).tolist()) == set(top.mask(None).tolist())  # first round: seeded random-k
    bad = RoundAnnouncement()
    bad.CopyFrom(ann)
    bad.mask_k = 0
    with pytest.raises(ValueError):
        RoundSpec.from_announcement(bad)


def test_weights() -> None:
    assert staleness_weight(0, 0.5) == 1.0
    assert staleness_weight(3, 0.5) == pytest.approx(0.5)
    spec_uniform = RoundSpec(
        model_name="m", round_id=1, model_version=0, num_params=4, mask_kind=MaskKind.MASK_KIND_RANDOM_K,
        mask_seed=1, mask_k=4, clip_norm=1.0, quant_bits=8, quant_range=1.0, max_clients=4,
        values_per_plaintext=4, key_bits=1024, num_shards=1, paillier_key_id="k",
    )  # fmt: skip
    assert spec_uniform.example_weight(123) == 1.0


# --- the coordinator ----------------------------------------------------------------------------------------


def _coordinator(keys: FlKeys, **overrides: object) -> tuple[CoordinatorState, RoundAnnouncement]:
    state = CoordinatorState(config(keys, "m", **overrides), np.zeros(DIM))
    mv = state.initial_model_due()
    assert mv is not None and mv.version == 0 and state.announcement_due() == 1
    ann = state.announce(1, 1_000, [])
    assert state.announcement_due() is None
    return state, ann


def test_a_round_closes_at_quorum_after_the_deadline_or_when_everyone_is_in(keys: FlKeys) -> None:
    state, ann = _coordinator(keys, deadline_s=10.0)
    before, after = ann.deadline - 1, ann.deadline
    state.on_receipt(_receipt(ann, A))
    state.on_receipt(_receipt(ann, B))
    assert state.close_due(after) is None  # 2 < min_clients = 3
    assert not state.on_receipt(_receipt(ann, "intruder"))
    state.on_receipt(_receipt(ann, C))
    assert state.close_due(before) is None  # quorum, but the deadline has not passed and D may still come
    close = state.close_due(after)
    assert close is not None and [c.client_id for c in close.contributors] == [A, B, C]
    assert not state.on_receipt(_receipt(ann, D))  # too late: the round is closed

    early, ann2 = _coordinator(keys, deadline_s=10.0)
    for client in CLIENTS:
        early.on_receipt(_receipt(ann2, client))
    assert early.close_due(ann2.deadline - 10**9) is not None  # everyone invited is in: no need to wait


def test_only_clients_with_every_shard_count(keys: FlKeys) -> None:
    state = CoordinatorState(config(keys, "m", num_shards=2), np.zeros(1000))
    state.initial_model_due()
    ann = state.announce(1, 0, [])
    assert RoundSpec.from_announcement(ann).num_shards == 2
    for client in (A, B):
        state.on_receipt(_receipt(ann, client, 0))
        state.on_receipt(_receipt(ann, client, 1))
    state.on_receipt(_receipt(ann, C, 0))
    assert state.complete_clients() == [A, B]
    assert state.close_due(ann.deadline) is None
    state.on_receipt(_receipt(ann, C, 1))
    close = state.close_due(ann.deadline)
    assert close is not None and [len(c.update_sha256) for c in close.contributors] == [2, 2, 2]


def test_apply_is_exact_and_a_restart_decides_the_same(keys: FlKeys) -> None:
    state, ann = _coordinator(keys, server_lr=0.5)
    for client in CLIENTS:  # receipts that claim a tiny epsilon: never believed
        state.on_receipt(_receipt(ann, client, epsilon=0.01, delta=1e-5))
    close = state.close_due(ann.deadline)
    assert close is not None
    values = np.arange(DIM, dtype=np.float64)
    agg = _agg(values.tolist())
    assert state.on_aggregate(agg)
    mv = state.apply_due(2_000)
    assert mv is not None and mv.version == 1 and list(mv.contributors) == sorted(CLIENTS)
    np.testing.assert_array_equal(decode_weights(mv.weights), 0.5 * values / 4)
    expected = history_epsilon([DP_ROUND], 1e-5)
    assert mv.privacy.epsilon == pytest.approx(expected, rel=1e-12) and expected > 1  # the policy's, not 0.01
    assert {c.client_id: c.rounds for c in mv.privacy.clients} == dict.fromkeys(CLIENTS, 1)
    assert state.announcement_due() == 2

    # A coordinator restarted before publishing mv rebuilds the same state from the log and decides the same.
    fresh = CoordinatorState(config(keys, "m", server_lr=0.5), np.zeros(DIM))
    fresh.on_model(ModelVersion(model_name="m", version=0, weights=np.zeros(DIM).tobytes()))
    fresh.on_announcement(ann)
    fresh.on_close(close)
    fresh.on_aggregate(agg)
    assert fresh.initial_model_due() is None and fresh.announcement_due() is None
    again = fresh.apply_due(3_000)
    assert again is not None and again.weights == mv.weights


def test_central_noise_is_secret_seeded_and_reproducible(keys: FlKeys) -> None:
    def run(seed: int) -> bytes:
        state, ann = _coordinator(keys, central_noise_multiplier=0.5, noise_seed=seed)
        for client in CLIENTS:
            state.on_receipt(_receipt(ann, client))
        assert state.close_due(ann.deadline) is not None
        state.on_aggregate(_agg([0.0] * DIM))
        mv = state.apply_due(0)
        assert mv is not None and mv.central_privacy.epsilon > 0
        return bytes(mv.weights)

    assert run(1) == run(1) != run(2)


def test_apply_mean() -> None:
    out = apply_mean(np.ones(4), np.array([1, 3]), np.array([2.0, 4.0]), 2.0, 1.0)
    np.testing.assert_array_equal(out, [1.0, 2.0, 1.0, 3.0])


# --- the aggregator -----------------------------------------------------------------------------------------


def test_the_aggregator_takes_the_first_update_per_client_and_refuses_the_rest(keys: FlKeys, everyone: Keyring) -> None:
    ann = _ann(keys)
    state = AggregatorState("m", keys.public_key, lambda r, s: True)
    state.on_announcement(ann)
    log = Log(everyone)
    first = send(log, client_update(ann, A, keys.public_key), reverse=True)
    assert state.on_update(first) is UpdateVerdict.ACCEPTED
    assert state.on_update(first) is UpdateVerdict.DUPLICATE
    second = send(log, client_update(ann, A, keys.public_key))  # fresh encryption: a different update
    with pytest.raises(EnvelopeRejected) as info:
        state.on_update(second)
    assert info.value.reason == R.REJECT_REASON_CONFLICTING_UPDATE

    impostor = client_update(ann, B, keys.public_key)
    with pytest.raises(EnvelopeRejected) as info:
        state.on_update(send(log, impostor, producer=C))  # C sends an update claiming to be B's
    assert info.value.reason == R.REJECT_REASON_INVALID_UPDATE
    short = client_update(ann, C, keys.public_key)
    short.ciphertexts.append(short.ciphertexts[0])
    with pytest.raises(EnvelopeRejected) as info:
        state.on_update(send(log, short))
    assert info.value.reason == R.REJECT_REASON_INVALID_UPDATE
    future = RoundAnnouncement()
    future.CopyFrom(ann)
    future.round_id = 7
    assert state.on_update(send(log, client_update(future, D, keys.public_key))) is UpdateVerdict.PENDING
    other = RoundAnnouncement()
    other.CopyFrom(ann)
    other.model_name = "other"
    assert state.on_update(send(log, client_update(other, D, keys.public_key))) is UpdateVerdict.IGNORED
    assert [r.client_id for r in state.receipts_due()] == [A]
    assert state.receipts_due() == []


def test_after_the_close_only_listed_updates_count_and_sum_up(keys: FlKeys, everyone: Keyring) -> None:
    ann = _ann(keys)
    log = Log(everyone)
    updates = {c: send(log, client_update(ann, c, keys.public_key)) for c in (A, B, C, D)}
    close = RoundClose(model_name="m", round_id=1, announcement=ann)
    for c in (A, B, C):
        close.contributors.add(client_id=c, update_sha256=[updates[c].sha256], num_examples=40)
    # A restarted aggregator reads the close first, then the round's updates.
    state = AggregatorState("m", keys.public_key, lambda r, s: True)
    state.on_close(close)
    for c in (A, B, C):
        assert state.on_update(updates[c]) is UpdateVerdict.ACCEPTED
    with pytest.raises(EnvelopeRejected) as info:
        state.on_update(updates[D])
    assert info.value.reason == R.REJECT_REASON_STALE
    assert state.receipts_due() == []  # nothing to receipt for a closed round
    (s,) = state.sums_due()
    assert state.sums_due() == []
    assert [c.client_id for c in s.contributors] == [A, B, C]
    spec = RoundSpec.from_announcement(ann)
    plain = decode_aggregate(decrypt_aggregate(keys.private_key, [int.from_bytes(c, "big") for c in s.ciphertexts]),
                             spec.encode_spec, 3, spec.mask_k)  # fmt: skip
    assert plain.shape == (DIM,)
    older = AggregatorState("m", keys.public_key, lambda r, s: True)
    older.on_announcement(_ann(keys, round_id=2))
    with pytest.raises(EnvelopeRejected) as info:
        older.on_update(updates[A])
    assert info.value.reason == R.REJECT_REASON_WRONG_ROUND


# --- the keyholder's check ------------------------------------------------------------------------------------


def _round_with_sum(keys: FlKeys, everyone: Keyring) -> tuple[RoundAnnouncement, RoundClose, EncryptedSum, Log]:
    ann = _ann(keys)
    log = Log(everyone)
    state = AggregatorState("m", keys.public_key, lambda r, s: True)
    state.on_announcement(ann)
    close = RoundClose(model_name="m", round_id=1, announcement=ann)
    for c in (A, B, C):
        u = send(log, client_update(ann, c, keys.public_key), reverse=c == B)
        assert state.on_update(u) is UpdateVerdict.ACCEPTED
        close.contributors.add(client_id=c, update_sha256=[u.sha256])
    state.on_close(close)
    (s,) = state.sums_due()
    return ann, close, s, log


def test_the_keyholder_accepts_the_genuine_sum(keys: FlKeys, everyone: Keyring) -> None:
    ann, close, s, log = _round_with_sum(keys, everyone)
    checked = verify_sum(s, ann, close, log.lookup(), everyone, keys.public_key, updates_topic="updates")
    assert checked.contributors == [A, B, C]
    assert checked.digest == contributors_digest((c.client_id, c.update_sha256) for c in s.contributors)


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("too_few", R.REJECT_REASON_TOO_FEW_CONTRIBUTORS),
        ("twice", R.REJECT_REASON_FORGED_CONTRIBUTOR),
        ("unregistered", R.REJECT_REASON_FORGED_CONTRIBUTOR),
        ("not_the_close", R.REJECT_REASON_CONTRIBUTORS_MISMATCH),
        ("other_parts", R.REJECT_REASON_FORGED_CONTRIBUTOR),
        ("missing_part", R.REJECT_REASON_FORGED_CONTRIBUTOR),
        ("bad_hash", R.REJECT_REASON_FORGED_CONTRIBUTOR),
        ("one_client", R.REJECT_REASON_SUM_MISMATCH),
        ("other_round", R.REJECT_REASON_WRONG_ROUND),
    ],
)
def test_the_keyholder_refuses_a_forged_sum(keys: FlKeys, everyone: Keyring, tamper: str, reason: int) -> None:
    ann, close, genuine, log = _round_with_sum(keys, everyone)
    s = EncryptedSum()
    s.CopyFrom(genuine)
    by_id = {c.client_id: c for c in s.contributors}
    if tamper == "too_few":
        del s.contributors[2:]
    elif tamper == "twice":
        s.contributors.append(s.contributors[0])
    elif tamper == "unregistered":
        s.contributors[0].client_id = "nobody"
    elif tamper == "not_the_close":
        s.contributors[0].update_sha256 = bytes(32)
    elif tamper == "other_parts":
        del by_id[C].parts[:]
        by_id[C].parts.extend(by_id[A].parts)
    elif tamper == "missing_part":
        by_id[B].parts[0].offset = 10_000
    elif tamper == "bad_hash":
        by_id[B].parts[0].envelope_sha256 = bytes(32)
    elif tamper == "one_client":
        s.ciphertexts[:] = [bytes(c) for c in client_update(ann, A, keys.public_key).ciphertexts]
    elif tamper == "other_round":
        s.round_id = 2
    with pytest.raises(EnvelopeRejected) as info:
        verify_sum(s, ann, close, log.lookup(), everyone, keys.public_key, updates_topic="updates")
    assert info.value.reason == reason, info.value.detail


def test_distinct_hospitals_are_what_counts(tmp_path: Path, keys: FlKeys) -> None:
    init_fl_keys(tmp_path, clients={**CLIENTS, "fl-client-a2": "HA"}, services=[], key_bits=1024)
    ring = Keyring.load(tmp_path)
    ann = _ann(keys)
    close = RoundClose(model_name="m", round_id=1, announcement=ann)
    s = EncryptedSum(model_name="m", round_id=1, shard=0, paillier_key_id=ann.paillier_key_id,
                     ciphertexts=[b"x"] * RoundSpec.from_announcement(ann).num_ciphertexts)  # fmt: skip
    for c in ("fl-client-a", "fl-client-a2", "fl-client-b"):
        s.contributors.add(client_id=c, update_sha256=bytes(32))
    with pytest.raises(EnvelopeRejected) as info:
        check_claims(s, ann, close, ring)
    assert info.value.reason == R.REJECT_REASON_TOO_FEW_CONTRIBUTORS


def test_the_privacy_report_recomputes_what_was_published_and_catches_a_forgery(keys: FlKeys) -> None:
    from cloud_workers.federated._privacy_report import privacy_report

    state, ann = _coordinator(keys, client_noise_std=0.1)
    anns: list[RoundAnnouncement] = [ann]
    closes: list[RoundClose] = []
    versions: list[ModelVersion] = []
    for r in (1, 2):
        if r == 2:
            assert state.announcement_due() == 2
            ann = state.announce(2, 0, [])
            anns.append(ann)
        for client in CLIENTS:
            state.on_receipt(_receipt(ann, client, epsilon=0.01))
        close = state.close_due(ann.deadline)
        assert close is not None
        closes.append(close)
        assert state.on_aggregate(_agg([0.1] * DIM, round_id=r, declared={A: r + 1}))  # A declares an extra round
        mv = state.apply_due(0)
        assert mv is not None
        versions.append(mv)
    report = privacy_report("m", anns, closes, versions)
    assert report["ok"], report
    last = report["versions"][-1]["record_level"]
    assert last["published"][A] > last["recomputed"][A]  # charged for the round its accountant declares
    assert last["published"][B] == pytest.approx(last["recomputed"][B], rel=1e-12)
    assert report["versions"][-1]["sum_noise"]["epsilon"] > 0  # the clients' noise shares, client level
    forged = ModelVersion()
    forged.CopyFrom(versions[-1])
    forged.privacy.clients[1].epsilon = 0.01
    assert not privacy_report("m", anns, closes, [versions[0], forged])["ok"]


def test_a_message_naming_no_model_is_dead_lettered_not_ignored(keys: FlKeys, everyone: Keyring) -> None:
    from cloud_workers.federated._role import _require_model_name

    ann = _ann(keys)
    state = AggregatorState("m", keys.public_key, lambda r, s: True)
    state.on_announcement(ann)
    log = Log(everyone)
    nameless = client_update(ann, A, keys.public_key)
    nameless.model_name = ""
    with pytest.raises(EnvelopeRejected) as info:
        state.on_update(send(log, nameless))
    assert info.value.reason == R.REJECT_REASON_MALFORMED
    blank = RoundAnnouncement()
    blank.CopyFrom(ann)
    blank.model_name = ""
    event = Log(everyone, "fl.rounds.v1").append(Log(everyone, "fl.rounds.v1").seal("fl-coordinator", blank))
    assert event is not None
    with pytest.raises(EnvelopeRejected, match="names no model"):
        _require_model_name(event)
    fine = Log(everyone, "fl.rounds.v1")
    ok = fine.append(fine.seal("fl-coordinator", ann))
    assert ok is not None
    _require_model_name(ok)  # a named one passes
