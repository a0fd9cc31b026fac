"""The envelope rejects every tampering with the right reason, and round-trips every message type."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import MESSAGE_TYPES, IdentityCheck, MedicalRecord, RejectReason, Telemetry
from streams import (
    GENESIS_HASH,
    ChainState,
    ChainTracker,
    ChainVerdict,
    EnvelopeRejected,
    Keyring,
    envelope_hash,
    export_role,
    init_dev_keys,
    open_envelope,
    parse,
    seal,
    verify_signature,
)

R = RejectReason


def _seal(keyring: Keyring, producer: str = "k1", hospital: str = "H1", chain: ChainState | None = None, **kw: object):
    msg = kw.pop("message", IdentityCheck(kiosk_id=producer, hospital_id=hospital, synthetic=True))
    data_key = kw.pop("data_key", keyring.latest_data_key(hospital))
    return seal(
        msg,  # type: ignore[arg-type]
        signing_key=keyring.signing_key(producer),
        chain=chain or ChainState(),
        hospital_id=hospital,
        data_key=data_key,  # type: ignore[arg-type]
    )


def _reason(raw: bytes, keyring: Keyring) -> int:
    with pytest.raises(EnvelopeRejected) as info:
        open_envelope(raw, keyring)
    return info.value.reason


def test_round_trip_identity(keyring: Keyring) -> None:
    msg = IdentityCheck(kiosk_id="k1", hospital_id="H1", skew_ns=12, synthetic=True)
    rec, nxt = _seal(keyring, message=msg)
    opened = open_envelope(rec.SerializeToString(), keyring)
    assert opened.message == msg
    assert opened.envelope.seq == 1 and opened.envelope.prev_hash == GENESIS_HASH
    assert nxt.seq == 1 and nxt.prev_hash == envelope_hash(rec)
    assert msg.SerializeToString() not in rec.encrypted_data  # it really is encrypted


HEADER_TAMPERS: dict[str, tuple[Callable[[MedicalRecord], None], int]] = {
    "hospital_id": (lambda r: setattr(r, "hospital_id", "H2"), R.REJECT_REASON_BAD_SIGNATURE),
    "timestamp": (lambda r: setattr(r, "timestamp", r.timestamp + 1), R.REJECT_REASON_BAD_SIGNATURE),
    "producer_id (other known)": (lambda r: setattr(r, "producer_id", "k3"), R.REJECT_REASON_BAD_SIGNATURE),
    "producer_id (unknown)": (lambda r: setattr(r, "producer_id", "kX"), R.REJECT_REASON_UNKNOWN_PRODUCER),
    "seq": (lambda r: setattr(r, "seq", r.seq + 1), R.REJECT_REASON_BAD_SIGNATURE),
    "key_id": (lambda r: setattr(r, "key_id", "H1/v2"), R.REJECT_REASON_BAD_SIGNATURE),
    "schema": (lambda r: setattr(r, "schema", "schemas.v1.Telemetry"), R.REJECT_REASON_BAD_SIGNATURE),
    "prev_hash": (lambda r: setattr(r, "prev_hash", b"\x01" * 32), R.REJECT_REASON_BAD_SIGNATURE),
    "prev_hash (short)": (lambda r: setattr(r, "prev_hash", b"\x01"), R.REJECT_REASON_MALFORMED),
    # NONE with a data key id is refused before the signature is even checked.
    "encryption": (lambda r: setattr(r, "encryption", 2), R.REJECT_REASON_MALFORMED),
    "encryption (out of range)": (lambda r: setattr(r, "encryption", 256), R.REJECT_REASON_MALFORMED),
    "signature.v (negative)": (lambda r: setattr(r.signature, "v", -1), R.REJECT_REASON_MALFORMED),
    "signature.v": (lambda r: setattr(r.signature, "v", 2), R.REJECT_REASON_UNKNOWN_SIGNING_KEY),
    "signature.r": (
        lambda r: setattr(r.signature, "r", bytes([r.signature.r[0] ^ 1]) + r.signature.r[1:]),
        R.REJECT_REASON_BAD_SIGNATURE,
    ),
    "signature.s": (
        lambda r: setattr(r.signature, "s", r.signature.s[:-1] + bytes([r.signature.s[-1] ^ 1])),
        R.REJECT_REASON_BAD_SIGNATURE,
    ),
    "signature.r (length)": (lambda r: setattr(r.signature, "r", b"\x00" + r.signature.r), R.REJECT_REASON_MALFORMED),
    "seq (zero)": (lambda r: setattr(r, "seq", 0), R.REJECT_REASON_MALFORMED),
    "stream": (lambda r: setattr(r, "stream", "kiosk.inference.v1"), R.REJECT_REASON_BAD_SIGNATURE),
}


@pytest.mark.parametrize("field", sorted(HEADER_TAMPERS))
def test_every_header_field_tampered_is_rejected(keyring: Keyring, field: str) -> None:
    rec, _ = _seal(keyring)
    tamper, expected = HEADER_TAMPERS[field]
    bad = MedicalRecord()
    bad.CopyFrom(rec)
    tamper(bad)
    assert _reason(bad.SerializeToString(), keyring) == expected


def test_every_ciphertext_byte_tampered_is_rejected(keyring: Keyring) -> None:
    rec, _ = _seal(keyring)
    for i in range(len(rec.encrypted_data)):
        bad = MedicalRecord()
        bad.CopyFrom(rec)
        data = bytearray(rec.encrypted_data)
        data[i] ^= 0x80
        bad.encrypted_data = bytes(data)
        assert _reason(bad.SerializeToString(), keyring) == R.REJECT_REASON_BAD_SIGNATURE, i
    truncated = MedicalRecord()
    truncated.CopyFrom(rec)
    truncated.encrypted_data = rec.encrypted_data[:-1]
    assert _reason(truncated.SerializeToString(), keyring) == R.REJECT_REASON_BAD_SIGNATURE


def test_aead_holds_even_when_the_producer_signs_garbage(keyring: Keyring) -> None:
    """A producer that signs a corrupted ciphertext still cannot get it decrypted."""
    from streams._envelope import _ECDSA, P256_ORDER, _signed_digest, header_bytes  # the signing primitive

    rec, _ = _seal(keyring)
    data = bytearray(rec.encrypted_data)
    data[-1] ^= 1
    rec.encrypted_data = bytes(data)
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    der = keyring.signing_key("k1").private_key.sign(_signed_digest(header_bytes(rec), rec.encrypted_data), _ECDSA)
    r, s = decode_dss_signature(der)
    s = min(s, P256_ORDER - s)  # low-s, as seal() signs
    rec.signature.r, rec.signature.s = r.to_bytes(32, "big"), s.to_bytes(32, "big")
    assert _reason(rec.SerializeToString(), keyring) == R.REJECT_REASON_DECRYPT_FAILED


def test_not_an_envelope_is_malformed(keyring: Keyring) -> None:
    assert _reason(b"\xff\xff\xff garbage", keyring) == R.REJECT_REASON_MALFORMED
    assert _reason(b"", keyring) == R.REJECT_REASON_MALFORMED


def test_wrong_key_id_unknown_data_key(keyring: Keyring, keys_dir: Path, tmp_path: Path) -> None:
    """Hospital H2's subscriber holds only H2's key: H1's events are opaque to it."""
    export_role(keys_dir, tmp_path / "h2", hospitals=["H2"])
    h2 = Keyring.load(tmp_path / "h2")
    rec, _ = _seal(keyring, producer="k1", hospital="H1")
    raw = rec.SerializeToString()
    verify_signature(parse(raw), h2)  # authentic...
    assert _reason(raw, h2) == R.REJECT_REASON_UNKNOWN_DATA_KEY  # ...but unreadable


def test_kiosk_cannot_speak_for_another_hospital(keyring: Keyring) -> None:
    rec, _ = _seal(keyring, producer="k1", hospital="H2")  # k1 belongs to H1
    assert _reason(rec.SerializeToString(), keyring) == R.REJECT_REASON_WRONG_HOSPITAL


def test_data_key_must_belong_to_the_envelope_hospital(keyring: Keyring) -> None:
    rec, _ = _seal(keyring, producer="k1", hospital="H1", data_key=keyring.latest_data_key("H2"))
    assert _reason(rec.SerializeToString(), keyring) == R.REJECT_REASON_WRONG_HOSPITAL


def test_unknown_producer_with_a_real_key(keyring: Keyring, tmp_path: Path) -> None:
    init_dev_keys(tmp_path, hospitals=["H1"], kiosks={"rogue": "H1"})
    rogue = Keyring.load(tmp_path)
    rec, _ = seal(
        Telemetry(kiosk_id="rogue"),
        signing_key=rogue.signing_key("rogue"),
        chain=ChainState(),
        hospital_id="H1",
        data_key=None,
    )
    assert _reason(rec.SerializeToString(), keyring) == R.REJECT_REASON_UNKNOWN_PRODUCER


def _chain_of(keyring: Keyring, n: int) -> list[MedicalRecord]:
    out, state = [], ChainState()
    for _ in range(n):
        rec, state = _seal(keyring, chain=state)
        out.append(rec)
    return out


def _check(tracker: ChainTracker, rec: MedicalRecord) -> ChainVerdict:
    return tracker.check(rec, envelope_hash(rec))


def test_chains_are_per_stream(keyring: Keyring) -> None:
    """A producer's streams (topics) are separate chains: each starts at seq 1 and is checked on its own."""
    tracker = ChainTracker()
    a, _ = seal(
        IdentityCheck(kiosk_id="k1"),
        signing_key=keyring.signing_key("k1"),
        chain=ChainState(),
        hospital_id="H1",
        data_key=None,
        stream="kiosk.identity.v1",
    )
    b, _ = seal(
        IdentityCheck(kiosk_id="k1"),
        signing_key=keyring.signing_key("k1"),
        chain=ChainState(),
        hospital_id="H1",
        data_key=None,
        stream="kiosk.inference.v1",
    )
    for rec in (a, b):
        assert _check(tracker, rec) is ChainVerdict.ACCEPT
        tracker.accept(rec, envelope_hash(rec))
    assert tracker.last_seq("k1", "kiosk.identity.v1") == tracker.last_seq("k1", "kiosk.inference.v1") == 1


def test_chain_accepts_in_order_and_drops_exact_duplicates(keyring: Keyring) -> None:
    recs = _chain_of(keyring, 4)
    tracker = ChainTracker()
    for rec in recs:
        assert _check(tracker, rec) is ChainVerdict.ACCEPT
        tracker.accept(rec, envelope_hash(rec))
    assert _check(tracker, recs[1]) is ChainVerdict.DUPLICATE


def test_replayed_seq_with_other_content_is_rejected(keyring: Keyring) -> None:
    recs = _chain_of(keyring, 3)
    tracker = ChainTracker()
    for rec in recs:
        tracker.accept(rec, envelope_hash(rec))
    forged, _ = _seal(keyring, chain=ChainState(1, envelope_hash(recs[0])))  # a second, different seq 2
    with pytest.raises(EnvelopeRejected) as info:
        _check(tracker, forged)
    assert info.value.reason == R.REJECT_REASON_REPLAYED_SEQ


def test_gap_in_seq_is_rejected(keyring: Keyring) -> None:
    recs = _chain_of(keyring, 3)
    tracker = ChainTracker()
    tracker.accept(recs[0], envelope_hash(recs[0]))
    with pytest.raises(EnvelopeRejected) as info:
        _check(tracker, recs[2])
    assert info.value.reason == R.REJECT_REASON_SEQ_GAP


def test_broken_chain_is_rejected(keyring: Keyring) -> None:
    recs = _chain_of(keyring, 2)
    tracker = ChainTracker()
    tracker.accept(recs[0], envelope_hash(recs[0]))
    wrong_link, _ = _seal(keyring, chain=ChainState(1, b"\x07" * 32))
    with pytest.raises(EnvelopeRejected) as info:
        _check(tracker, wrong_link)
    assert info.value.reason == R.REJECT_REASON_BROKEN_CHAIN
    first_not_genesis, _ = _seal(keyring, chain=ChainState(0, b"\x07" * 32))
    with pytest.raises(EnvelopeRejected) as info:
        _check(ChainTracker(), first_not_genesis)
    assert info.value.reason == R.REJECT_REASON_BROKEN_CHAIN


# --- round trip for every message type -----------------------------------------------------------

_SCALARS: dict[int, st.SearchStrategy[object]] = {
    FieldDescriptor.TYPE_STRING: st.text(max_size=20),
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=40),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=True),
    FieldDescriptor.TYPE_FLOAT: st.floats(width=32, allow_nan=True),
}


def _field_strategy(field: FieldDescriptor, depth: int) -> st.SearchStrategy[object]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _message_strategy(field.message_type._concrete_class, depth + 1)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values])
    return _SCALARS[field.type]


def _message_strategy(cls: type[Message], depth: int = 0) -> st.SearchStrategy[Message]:
    fields = {}
    for field in cls.DESCRIPTOR.fields:
        if depth > 2 and field.type == FieldDescriptor.TYPE_MESSAGE:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_f, val_f = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            fields[field.name] = st.dictionaries(
                _field_strategy(key_f, depth), _field_strategy(val_f, depth), max_size=3
            )
        elif field.is_repeated:
            fields[field.name] = st.lists(_field_strategy(field, depth), max_size=3)
        else:
            fields[field.name] = _field_strategy(field, depth)

    def build(values: dict[str, object]) -> Message:
        msg = cls()
        for name, value in values.items():
            f = cls.DESCRIPTOR.fields_by_name[name]
            if f.message_type is not None and f.message_type.GetOptions().map_entry:
                getattr(msg, name).update(value)
            elif (f.is_repeated and f.type == FieldDescriptor.TYPE_MESSAGE) or f.is_repeated:
                getattr(msg, name).extend(value)  # type: ignore[arg-type]
            elif f.type == FieldDescriptor.TYPE_MESSAGE:
                getattr(msg, name).CopyFrom(value)
            else:
                setattr(msg, name, value)
        return msg

    return st.fixed_dictionaries(fields).map(build)


@pytest.mark.parametrize("schema", sorted(MESSAGE_TYPES))
def test_round_trip_every_message_type(keyring: Keyring, schema: str) -> None:
    cls = MESSAGE_TYPES[schema]

    @settings(max_examples=25, derandomize=True, deadline=None)
    @given(msg=_message_strategy(cls), encrypt=st.booleans())
    def check(msg: Message, encrypt: bool) -> None:
        rec, _ = _seal(keyring, message=msg, data_key=keyring.latest_data_key("H1") if encrypt else None)
        opened = open_envelope(rec.SerializeToString(), keyring)
        assert opened.envelope.schema == schema
        assert opened.message.SerializeToString(deterministic=True) == msg.SerializeToString(deterministic=True)

    check()
