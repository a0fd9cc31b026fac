"""Batch signatures (docs/ENVELOPE.md section 3a): RFC 9162 Merkle proofs, and envelopes sealed with one signature per
batch that still verify one by one, chain like any others, and cannot be bent into anything else."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import AuditRecord, MedicalRecord, Telemetry
from streams import (
    BatchItem,
    ChainState,
    ChainTracker,
    ChainVerdict,
    EnvelopeRejected,
    Keyring,
    Outbox,
    RecordPipeline,
    SealRequest,
    envelope_hash,
    export_role,
    init_dev_keys,
    open_envelope,
    parse,
    seal,
    seal_batch,
    verify_signature,
)
from streams._merkle import all_paths, audit_path, leaf_hash, node_hash, path_length, root_from_path, tree_root
from streams._pipeline import Accepted, Rejected


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def test_rfc9162_shapes() -> None:
    a, b, c = _leaves(3)
    assert tree_root([a]) == a
    assert tree_root([a, b]) == node_hash(a, b)
    # Three leaves: the split is at 2, the largest power of two below 3.
    assert tree_root([a, b, c]) == node_hash(node_hash(a, b), c)
    assert audit_path(2, [a, b, c]) == [node_hash(a, b)]
    assert audit_path(0, [a, b, c]) == [b, c]
    with pytest.raises(ValueError):
        tree_root([])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(n=st.integers(min_value=1, max_value=300), data=st.data())
def test_every_proof_leads_to_the_root_and_no_other_does(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    root, paths = all_paths(leaves)
    assert root == tree_root(leaves)
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    path = paths[index]
    assert path == audit_path(index, leaves)
    assert len(path) == path_length(index, n)
    assert root_from_path(leaves[index], index, n, path) == root
    # Another leaf, index or a changed hash never reaches the root; a wrong length never reaches anything.
    assert root_from_path(leaf_hash(b"other"), index, n, path) != root
    if n > 1:
        other = (index + 1) % n
        assert root_from_path(leaves[index], other, n, path) != root
        pos = data.draw(st.integers(min_value=0, max_value=len(path) - 1))
        bent = list(path)
        bent[pos] = hashlib.sha256(bent[pos]).digest()
        assert root_from_path(leaves[index], index, n, bent) != root
        assert root_from_path(leaves[index], index, n, path[:-1]) is None
    assert root_from_path(leaves[index], index, n, [*path, bytes(32)]) is None
    assert root_from_path(leaves[index], n, n, path) is None


def _items(n: int, stream: str = "audit.v1") -> list[BatchItem]:
    return [BatchItem(AuditRecord(producer_id="k1", seq=i + 1), stream) for i in range(n)]


def test_each_envelope_of_a_batch_verifies_alone_and_chains(keyring: Keyring) -> None:
    signer = keyring.signing_key("gateway-1")
    recs, chains = seal_batch(_items(7), signing_key=signer, chains={})
    assert len({(r.signature.r, r.signature.s) for r in recs}) == 1  # one signature for the batch
    assert [r.batch.index for r in recs] == list(range(7)) and {r.batch.size for r in recs} == {7}
    tracker = ChainTracker()
    for rec in reversed(recs):  # any one, in any order, verifies on its own
        verify_signature(parse(rec.SerializeToString()), keyring)
    for rec in recs:
        digest = envelope_hash(rec)
        assert tracker.check(rec, digest) is ChainVerdict.ACCEPT
        tracker.accept(rec, digest)
    assert chains["audit.v1"] == ChainState(7, envelope_hash(recs[-1]))
    # The next batch continues the chain; so does a singly signed envelope.
    more, chains = seal_batch(_items(2), signing_key=signer, chains=chains)
    single, _ = seal(
        AuditRecord(seq=99), signing_key=signer, chain=chains["audit.v1"], hospital_id="", data_key=None,
        stream="audit.v1",
    )  # fmt: skip
    for rec in (*more, single):
        digest = envelope_hash(rec)
        assert tracker.check(rec, digest) is ChainVerdict.ACCEPT
        tracker.accept(rec, digest)


def test_a_tampered_envelope_fails_alone_and_its_batch_mates_still_verify(keyring: Keyring) -> None:
    recs, _ = seal_batch(_items(5), signing_key=keyring.signing_key("gateway-1"), chains={})
    bad = MedicalRecord()
    bad.CopyFrom(recs[2])
    bad.encrypted_data = AuditRecord(producer_id="k1", seq=42).SerializeToString(deterministic=True)
    pipe = RecordPipeline(keyring, ChainTracker())
    outcomes = [pipe.open("audit.v1", 0, r.SerializeToString()) for r in (recs[0], recs[1], bad)]
    assert isinstance(outcomes[0], Accepted) and isinstance(outcomes[1], Accepted)
    assert isinstance(outcomes[2], Rejected) and outcomes[2].error.label == "bad_signature"
    assert isinstance(pipe.open("audit.v1", 0, recs[2].SerializeToString()), Accepted)


def test_a_remembered_batch_signature_is_never_reused_for_another_key(keyring: Keyring, tmp_path: Path) -> None:
    """The verifier skips ECDSA for a batch it has verified; a keyring with another key for the same producer id
    and version must still refuse the batch's other envelopes."""
    recs, _ = seal_batch(_items(4), signing_key=keyring.signing_key("gateway-1"), chains={})
    verify_signature(parse(recs[0].SerializeToString()), keyring)  # now remembered
    other_dir = tmp_path / "other"
    init_dev_keys(other_dir, hospitals=["H1"], kiosks={"k1": "H1"}, services=["gateway-1"])
    stranger = tmp_path / "stranger-public"
    export_role(other_dir, stranger, producer_id="gateway-1")
    with pytest.raises(EnvelopeRejected) as err:
        verify_signature(parse(recs[1].SerializeToString()), Keyring.load(stranger))
    assert err.value.label == "bad_signature"


def test_outbox_batch_mode_chains_across_puts_and_reopen(keyring: Keyring, tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    req = [
        SealRequest(topic="t", key=b"k", message=Telemetry(kiosk_id="k1", queue_depth=i), hospital_id="", data_key=None)
        for i in range(5)
    ]
    box = Outbox(path, signing_key=keyring.signing_key("gateway-1"), batch_sign=True)
    assert box.put(req[:3]) == [1, 2, 3]
    box.close()
    box = Outbox(path, signing_key=keyring.signing_key("gateway-1"), batch_sign=True)
    assert box.put(req[3:]) == [4, 5]
    tracker = ChainTracker()
    sizes = []
    for row in box.pending():
        env = open_envelope(row.value, keyring).envelope
        sizes.append(env.batch.size)
        digest = envelope_hash(env)
        assert tracker.check(env, digest) is ChainVerdict.ACCEPT
        tracker.accept(env, digest)
    assert sizes == [3, 3, 3, 2, 2]
    box.close()


def test_batch_proofs_are_refused_when_malformed(keyring: Keyring) -> None:
    recs, _ = seal_batch(_items(5), signing_key=keyring.signing_key("gateway-1"), chains={})
    for change, label in [
        (lambda r: setattr(r.batch, "size", 0), "malformed"),
        (lambda r: setattr(r.batch, "index", 9), "malformed"),
        (lambda r: r.batch.path.append(bytes(32)), "malformed"),
        (lambda r: r.batch.path.__delitem__(0), "malformed"),
        (lambda r: setattr(r.batch, "size", 6), "bad_signature"),  # same path length, but the size is signed
        (lambda r: r.ClearField("batch"), "bad_signature"),
    ]:
        bad = MedicalRecord()
        bad.CopyFrom(recs[0])
        change(bad)
        got = RecordPipeline(keyring, ChainTracker()).open("audit.v1", 0, bad.SerializeToString())
        assert isinstance(got, Rejected) and got.error.label == label, (label, got)


def test_unknown_fields_nested_in_the_signature_or_the_proof_are_malformed(keyring: Keyring) -> None:
    recs, _ = seal_batch(_items(3), signing_key=keyring.signing_key("gateway-1"), chains={})
    for part in ("signature", "batch"):
        rec = MedicalRecord()
        rec.CopyFrom(recs[0])
        inner = getattr(rec, part)
        inner.ParseFromString(inner.SerializeToString(deterministic=True) + b"\xa0\x06\x01")  # field 100 = 1
        raw = rec.SerializeToString(deterministic=True)
        assert b"\xa0\x06\x01" in raw
        got = RecordPipeline(keyring, ChainTracker()).open("audit.v1", 0, raw)
        assert isinstance(got, Rejected) and got.error.label == "malformed", (part, got)
