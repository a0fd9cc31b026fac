"""Write docs/envelope-vectors.json: test vectors for the envelope spec (docs/ENVELOPE.md).

The keys are fixed (derived from constant scalars), so anyone can rebuild them; signatures and AES-GCM nonces
are random, so re-running this script writes different (equally valid) vectors. The committed file is the
reference: ``tests/spec/test_envelope_vectors.py`` checks it with an implementation that uses only
``cryptography`` and protobuf code generated from ``schemas/``, and checks that ``streams`` agrees.

    .venv/bin/python scripts/make_envelope_vectors.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from schemas import CardRead, IdentityCheck, IdentityVerdict, MedicalRecord, RejectReason, Telemetry  # noqa: E402
from streams import (  # noqa: E402
    BatchItem,
    ChainState,
    ChainTracker,
    Keyring,
    batch_digest,
    envelope_hash,
    header_bytes,
    seal,
    seal_batch,
)
from streams._envelope import _ECDSA, P256_ORDER, _signed_digest  # noqa: E402
from streams._keys import DataKey, SigningKey  # noqa: E402
from streams._merkle import leaf_hash, tree_root  # noqa: E402
from streams._pipeline import Accepted, Duplicate, RecordPipeline, Rejected  # noqa: E402

KIOSK_SCALAR = 0x6B696F736B2D312D76312D746573742D766563746F722D6B6579210000000001
OTHER_SCALAR = 0x6F746865722D6B696F736B2D746573742D766563746F722D6B6579000000002
DATA_KEY = hashlib.sha256(b"medkiosk envelope test vector data key H1/v1").digest()
TOPIC = "kiosk.identity.v1"
T0 = 1_764_547_200_000_000_000  # 2025-12-01T00:00:00Z in ns


def _pem_private(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _pem_public(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _write_keys(root: Path, kiosk: ec.EllipticCurvePrivateKey, other: ec.EllipticCurvePrivateKey) -> None:
    (root / "public" / "kiosk-1").mkdir(parents=True)
    (root / "public" / "kiosk-9").mkdir(parents=True)
    (root / "data" / "H1").mkdir(parents=True)
    (root / "public" / "kiosk-1" / "v1.pem").write_text(_pem_public(kiosk))
    (root / "public" / "kiosk-9" / "v1.pem").write_text(_pem_public(other))
    (root / "data" / "H1" / "v1.key").write_text(DATA_KEY.hex())
    registry = {
        "producers": {
            "kiosk-1": {"hospital_id": "H1", "role": "kiosk"},
            "kiosk-9": {"hospital_id": "H2", "role": "kiosk"},
        }
    }
    (root / "registry.json").write_text(json.dumps(registry, indent=2, sort_keys=True) + "\n")


def _resign(rec: MedicalRecord, key: ec.EllipticCurvePrivateKey, *, high_s: bool = False) -> MedicalRecord:
    r, s = decode_dss_signature(key.sign(_signed_digest(header_bytes(rec), rec.encrypted_data), _ECDSA))
    s = min(s, P256_ORDER - s)
    if high_s:
        s = P256_ORDER - s
    rec.signature.r, rec.signature.s = r.to_bytes(32, "big"), s.to_bytes(32, "big")
    return rec


def _copy(rec: MedicalRecord) -> MedicalRecord:
    out = MedicalRecord()
    out.CopyFrom(rec)
    return out


def main() -> None:
    import tempfile

    kiosk_key = ec.derive_private_key(KIOSK_SCALAR, ec.SECP256R1())
    other_key = ec.derive_private_key(OTHER_SCALAR, ec.SECP256R1())
    signer = SigningKey("kiosk-1", 1, kiosk_key)
    data_key = DataKey("H1", 1, DATA_KEY)

    def check(n: int) -> IdentityCheck:
        return IdentityCheck(
            kiosk_id="kiosk-1",
            hospital_id="H1",
            card=CardRead(kiosk_id="kiosk-1", card_number=f"04A1B2C3D{n}", read_at=T0 + n, frame_format="em4100"),
            verdict=IdentityVerdict.IDENTITY_VERDICT_VERIFIED,
            skew_ns=12_000_000,
            window_ns=50_000_000,
        )

    chain = ChainState()
    valid: list[MedicalRecord] = []
    for n in range(1, 4):
        rec, chain = seal(
            check(n), signing_key=signer, chain=chain, hospital_id="H1", data_key=data_key,
            timestamp_ns=T0 + n * 1_000_000, stream=TOPIC,
        )  # fmt: skip
        valid.append(rec)

    valid_out: list[dict[str, Any]] = []
    for rec, n in zip(valid, range(1, 4), strict=True):
        payload = check(n).SerializeToString(deterministic=True)
        header = header_bytes(rec)
        valid_out.append(
            {
                "topic": TOPIC,
                "fields": {
                    "hospital_id": rec.hospital_id,
                    "timestamp": rec.timestamp,
                    "producer_id": rec.producer_id,
                    "seq": rec.seq,
                    "key_id": rec.key_id,
                    "schema": rec.schema,
                    "prev_hash": rec.prev_hash.hex(),
                    "encryption": int(rec.encryption),
                    "stream": rec.stream,
                    "signature_v": rec.signature.v,
                },
                "payload": payload.hex(),
                "nonce": rec.encrypted_data[:12].hex(),
                "encrypted_data": rec.encrypted_data.hex(),
                "header_bytes": header.hex(),
                "signed_digest": _signed_digest(header, rec.encrypted_data).hex(),
                "signature_r": rec.signature.r.hex(),
                "signature_s": rec.signature.s.hex(),
                "envelope_hash": envelope_hash(rec).hex(),
                "wire": rec.SerializeToString().hex(),
            }
        )

    # A batch-signed chain (docs/ENVELOPE.md section 3a): 5 envelopes of a kiosk-1 chain sealed together with one
    # signature, checked by a verifier of its own (the chain starts at genesis again). 5 leaves, so the tree is
    # unbalanced (RFC 9162 splits at the largest power of two below n).
    items = [BatchItem(check(10 + n), TOPIC, "H1", data_key) for n in range(5)]
    batch, _ = seal_batch(items, signing_key=signer, chains={TOPIC: ChainState()}, timestamp_ns=T0 + 10_000_000)
    digests = [_signed_digest(header_bytes(rec), rec.encrypted_data) for rec in batch]
    root = tree_root([leaf_hash(d) for d in digests])
    batch_out: list[dict[str, Any]] = []
    for rec, digest in zip(batch, digests, strict=True):
        batch_out.append(
            {
                "topic": TOPIC,
                "seq": rec.seq,
                "prev_hash": rec.prev_hash.hex(),
                "header_bytes": header_bytes(rec).hex(),
                "signed_digest": digest.hex(),
                "leaf_hash": leaf_hash(digest).hex(),
                "index": rec.batch.index,
                "size": rec.batch.size,
                "path": [h.hex() for h in rec.batch.path],
                "root": root.hex(),
                "batch_digest": batch_digest(root, len(batch)).hex(),
                "signature_r": rec.signature.r.hex(),
                "signature_s": rec.signature.s.hex(),
                "envelope_hash": envelope_hash(rec).hex(),
                "wire": rec.SerializeToString().hex(),
            }
        )

    first, second, third = valid
    invalid: list[tuple[str, MedicalRecord | bytes, str, int, list[MedicalRecord]]] = []

    def add(name: str, item: MedicalRecord | bytes, reason: int, *, before: list[MedicalRecord] | None = None,
            topic: str = TOPIC) -> None:  # fmt: skip
        invalid.append((name, item, topic, reason, before or []))

    add("not a protobuf", b"\xff\xff\xff garbage", RejectReason.REJECT_REASON_MALFORMED)
    bad = _copy(first)
    bad.encryption = 256  # type: ignore[assignment]
    add("encryption out of range (256)", bad, RejectReason.REJECT_REASON_MALFORMED)
    bad = _copy(first)
    bad.signature.v = 0
    add("signing key version 0", bad, RejectReason.REJECT_REASON_MALFORMED)
    bad = _copy(first)
    bad.producer_id = "p" * 300
    add("producer_id longer than 256 bytes", bad, RejectReason.REJECT_REASON_TOO_LARGE)
    bad = _copy(first)
    bad.prev_hash = b"\x00" * 31
    add("prev_hash not 32 bytes", bad, RejectReason.REJECT_REASON_MALFORMED)
    add("unknown field appended", first.SerializeToString() + b"\xa0\x06\x01", RejectReason.REJECT_REASON_MALFORMED)
    add("wrong stream for the topic", _resign(_replace(first, stream="kiosk.inference.v1"), kiosk_key),
        RejectReason.REJECT_REASON_WRONG_STREAM)  # fmt: skip
    plain = _copy(first)
    plain.encryption = 2  # type: ignore[assignment]
    plain.key_id = ""
    plain.encrypted_data = check(1).SerializeToString(deterministic=True)
    add("patient data in the clear", _resign(plain, kiosk_key), RejectReason.REJECT_REASON_PLAINTEXT_REFUSED)
    add("schema not carried by the topic", _resign(_replace(first, schema="schemas.v1.Telemetry"), kiosk_key),
        RejectReason.REJECT_REASON_WRONG_SCHEMA)  # fmt: skip
    add("unknown producer", _resign(_replace(first, producer_id="kiosk-7"), kiosk_key),
        RejectReason.REJECT_REASON_UNKNOWN_PRODUCER)  # fmt: skip
    bad = _copy(first)
    bad.signature.v = 2
    add("unknown signing key version", _resign(bad, kiosk_key), RejectReason.REJECT_REASON_UNKNOWN_SIGNING_KEY)
    bad = _copy(first)
    bad.timestamp += 1
    add("header changed after signing", bad, RejectReason.REJECT_REASON_BAD_SIGNATURE)
    add("high-s signature (malleated)", _resign(_copy(first), kiosk_key, high_s=True),
        RejectReason.REJECT_REASON_BAD_SIGNATURE)  # fmt: skip
    add("signed by another producer's key", _resign(_copy(first), other_key), RejectReason.REJECT_REASON_BAD_SIGNATURE)
    add("kiosk of H2 speaking for H1", _resign(_replace(first, producer_id="kiosk-9"), other_key),
        RejectReason.REJECT_REASON_WRONG_HOSPITAL)  # fmt: skip
    bad = _copy(first)
    flipped = bytearray(bad.encrypted_data)
    flipped[-1] ^= 1
    bad.encrypted_data = bytes(flipped)
    add("ciphertext corrupted, then signed", _resign(bad, kiosk_key), RejectReason.REJECT_REASON_DECRYPT_FAILED)
    telemetry = Telemetry(kiosk_id="kiosk-1", hospital_id="H1", request_rate=3.5).SerializeToString(deterministic=True)

    class _Disguised:  # Telemetry bytes sealed under the IdentityCheck schema name
        DESCRIPTOR = IdentityCheck.DESCRIPTOR

        def SerializeToString(self, deterministic: bool = False) -> bytes:
            return telemetry

    disguised, _ = seal(
        _Disguised(), signing_key=signer, chain=ChainState(), hospital_id="H1",  # type: ignore[arg-type]
        data_key=data_key, timestamp_ns=T0, stream=TOPIC,
    )  # fmt: skip
    add("payload of another message type", disguised, RejectReason.REJECT_REASON_DECODE_FAILED)
    bad = _copy(first)
    bad.prev_hash = b"\x01" * 32
    add("seq 1 not from genesis", _resign(bad, kiosk_key), RejectReason.REJECT_REASON_BROKEN_CHAIN)
    add("seq gap (3 after 1)", third, RejectReason.REJECT_REASON_SEQ_GAP, before=[first])
    bad = _copy(second)
    bad.prev_hash = b"\x02" * 32
    add("prev_hash not the previous envelope's hash", _resign(bad, kiosk_key), RejectReason.REJECT_REASON_BROKEN_CHAIN,
        before=[first])  # fmt: skip
    other_two, _ = seal(
        check(9), signing_key=signer, chain=ChainState(1, envelope_hash(first)), hospital_id="H1", data_key=data_key,
        timestamp_ns=T0 + 9, stream=TOPIC,
    )  # fmt: skip
    add("seq reused with other content", other_two, RejectReason.REJECT_REASON_REPLAYED_SEQ, before=[first, second])

    b0, b1 = batch[0], batch[1]
    bad = _copy(b0)
    bad.batch.path[1] = bytes(a ^ 1 for a in bad.batch.path[1][:1]) + bad.batch.path[1][1:]
    add("batch: a sibling hash in the proof changed", bad, RejectReason.REJECT_REASON_BAD_SIGNATURE)
    bad = _copy(b1)
    del bad.batch.path[:]
    bad.batch.path.extend(b0.batch.path)
    add("batch: another leaf's proof", bad, RejectReason.REJECT_REASON_BAD_SIGNATURE, before=[b0])
    bad = _copy(b0)
    bad.batch.size = 6  # the same path length for leaf 0, but the signature covers the size
    add("batch: size changed", bad, RejectReason.REJECT_REASON_BAD_SIGNATURE)
    bad = _copy(b0)
    bad.ClearField("batch")
    add("batch: proof stripped (a batch signature posing as a single one)", bad,
        RejectReason.REJECT_REASON_BAD_SIGNATURE)  # fmt: skip
    bad = _copy(first)
    bad.batch.CopyFrom(b0.batch)
    add("batch: proof added to a singly signed envelope", bad, RejectReason.REJECT_REASON_BAD_SIGNATURE)
    bad = _copy(b0)
    del bad.batch.path[-1]
    add("batch: proof one hash short", bad, RejectReason.REJECT_REASON_MALFORMED)
    bad = _copy(b0)
    bad.batch.path.append(bytes(32))
    add("batch: proof one hash too long", bad, RejectReason.REJECT_REASON_MALFORMED)
    bad = _copy(b0)
    bad.batch.path[0] = bad.batch.path[0][:31]
    add("batch: proof hash of 31 bytes", bad, RejectReason.REJECT_REASON_MALFORMED)
    bad = _copy(b0)
    bad.batch.size = 0
    add("batch: size 0", bad, RejectReason.REJECT_REASON_MALFORMED)
    bad = _copy(b0)
    bad.batch.index = 5
    add("batch: index not below size", bad, RejectReason.REJECT_REASON_MALFORMED)
    bad = _copy(b0)
    bad.batch.size = 70000
    add("batch: size above 65536", bad, RejectReason.REJECT_REASON_MALFORMED)

    with tempfile.TemporaryDirectory() as tmp:
        keys_dir = Path(tmp)
        _write_keys(keys_dir, kiosk_key, other_key)
        keyring = Keyring.load(keys_dir)
        invalid_out = []
        for name, item, topic, reason, before in invalid:
            wire = item if isinstance(item, bytes) else item.SerializeToString()
            pipe = RecordPipeline(keyring, ChainTracker())
            for prior in before:
                assert isinstance(pipe.open(topic, 0, prior.SerializeToString()), Accepted), name
            got = pipe.open(topic, 0, wire)
            assert isinstance(got, Rejected), (name, got)
            assert got.error.reason == reason, (name, got.error)
            invalid_out.append(
                {
                    "name": name,
                    "topic": topic,
                    "before": [p.SerializeToString().hex() for p in before],
                    "wire": wire.hex(),
                    "reason": RejectReason.Name(reason).removeprefix("REJECT_REASON_").lower(),
                }
            )
        pipe = RecordPipeline(keyring, ChainTracker())
        outcomes = [pipe.open(TOPIC, 0, r.SerializeToString()) for r in (*valid, first)]
        assert [type(o) for o in outcomes] == [Accepted, Accepted, Accepted, Duplicate]
        pipe = RecordPipeline(keyring, ChainTracker())
        outcomes = [pipe.open(TOPIC, 0, r.SerializeToString()) for r in batch]
        assert all(isinstance(o, Accepted) for o in outcomes), outcomes

    out = {
        "spec": "docs/ENVELOPE.md",
        "version": 1,
        "note": "Keys are fixed test keys: never use them outside tests.",
        "limits": {"max_record_bytes": 1048576, "max_field_bytes": 256},
        "keys": {
            "registry.json": json.loads(
                json.dumps(
                    {
                        "producers": {
                            "kiosk-1": {"hospital_id": "H1", "role": "kiosk"},
                            "kiosk-9": {"hospital_id": "H2", "role": "kiosk"},
                        }
                    }
                )
            ),
            "signing/kiosk-1/v1.pem": _pem_private(kiosk_key),
            "public/kiosk-1/v1.pem": _pem_public(kiosk_key),
            "public/kiosk-9/v1.pem": _pem_public(other_key),
            "data/H1/v1.key": DATA_KEY.hex(),
        },
        "valid_chain": valid_out,
        "batch_chain": batch_out,
        "duplicate": {"wire": first.SerializeToString().hex(), "after": "valid_chain", "outcome": "duplicate"},
        "invalid": invalid_out,
    }
    (ROOT / "docs" / "envelope-vectors.json").write_text(json.dumps(out, indent=1) + "\n")
    print(
        f"wrote {len(valid_out)} valid, {len(batch_out)} batch-signed and {len(invalid_out)} invalid vectors",
        file=sys.stderr,
    )


def _replace(rec: MedicalRecord, **fields: Any) -> MedicalRecord:
    out = _copy(rec)
    for k, v in fields.items():
        setattr(out, k, v)
    return out


if __name__ == "__main__":
    main()
