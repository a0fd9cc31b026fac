"""An envelope verifier written from docs/ENVELOPE.md alone: ``cryptography`` plus protobuf code generated from
``schemas/`` (the caller passes the folder protoc wrote it to). It must not import anything of this project.

    python -I independent_verifier.py GENERATED_DIR VECTORS_JSON

Exits non-zero, printing the first disagreement, when any vector's outcome differs from the spec.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import struct
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
# The topic policy table of the spec, for the topic the vectors use.
POLICY = {
    "kiosk.identity.v1": {
        "schemas": {"schemas.v1.IdentityCheck"},
        "encrypted": True,
        "streams": None,
        "roles": {"kiosk"},
    }
}


def merkle_root(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    """RFC 9162 section 2.1.3.2: the root an audit path leads to, or None when the path cannot fit the tree."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn // 2, sn // 2
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn // 2, sn // 2
    return r if sn == 0 else None


def expected_path_length(index: int, size: int) -> int:
    """Length of the RFC 9162 audit path of leaf ``index`` in a tree of ``size`` (PATH's recursion)."""
    n = 0
    while size > 1:
        k = 1
        while k * 2 < size:
            k *= 2
        if index < k:
            size = k
        else:
            index, size = index - k, size - k
        n += 1
    return n


class Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def header(rec: Any) -> bytes:
    return b"".join(
        [
            b"MKENV1\x00",
            struct.pack(">qQiB", rec.timestamp, rec.seq, rec.signature.v, rec.encryption),
            lp(rec.hospital_id.encode()),
            lp(rec.producer_id.encode()),
            lp(rec.key_id.encode()),
            lp(rec.schema.encode()),
            lp(rec.prev_hash),
            lp(rec.stream.encode()),
        ]
    )


def digest_input(head: bytes, rec: Any) -> bytes:
    return head + hashlib.sha256(rec.encrypted_data).digest()


def has_unknown(msg: Any, unknown_fields: Any) -> bool:
    if len(unknown_fields.UnknownFieldSet(msg)):
        return True
    for fd, value in msg.ListFields():
        if fd.message_type is not None and not fd.message_type.GetOptions().map_entry:
            items = value if fd.is_repeated else [value]
            if any(has_unknown(v, unknown_fields) for v in items):
                return True
    return False


class Verifier:
    def __init__(self, keys: dict[str, Any], limits: dict[str, int], pb: dict[str, Any]) -> None:
        self.registry = keys["registry.json"]["producers"]
        self.public = {
            ("kiosk-1", 1): serialization.load_pem_public_key(keys["public/kiosk-1/v1.pem"].encode()),
            ("kiosk-9", 1): serialization.load_pem_public_key(keys["public/kiosk-9/v1.pem"].encode()),
        }
        self.data = {"H1/v1": bytes.fromhex(keys["data/H1/v1.key"])}
        self.limits = limits
        self.pb = pb
        self.chains: dict[tuple[str, str], tuple[int, bytes, dict[int, bytes]]] = {}

    def open(self, topic: str, wire: bytes) -> str:
        """'accepted', 'duplicate' or the reject reason."""
        try:
            return self._open(topic, wire)
        except Refused as exc:
            return exc.reason

    def _open(self, topic: str, wire: bytes) -> str:
        pb = self.pb
        if len(wire) > self.limits["max_record_bytes"]:
            raise Refused("too_large")
        rec = pb["envelope"].MedicalRecord()
        try:
            rec.ParseFromString(wire)
        except pb["message"].DecodeError:
            raise Refused("malformed") from None
        if has_unknown(rec, pb["unknown"]) or rec.SerializeToString(deterministic=True) != wire:
            raise Refused("malformed")
        for name in ("hospital_id", "producer_id", "key_id", "schema", "stream"):
            if len(getattr(rec, name).encode()) > self.limits["max_field_bytes"]:
                raise Refused("too_large")
        if not rec.producer_id or rec.seq == 0 or len(rec.prev_hash) != 32 or not rec.schema:
            raise Refused("malformed")
        if rec.encryption not in (1, 2) or not 1 <= rec.signature.v < 2**31 or rec.seq >= 2**63:
            raise Refused("malformed")
        if len(rec.signature.r) != 32 or len(rec.signature.s) != 32 or (rec.encryption == 2 and rec.key_id):
            raise Refused("malformed")
        batched = rec.HasField("batch")
        if batched:
            b = rec.batch
            if not 1 <= b.size <= 65536 or b.index >= b.size:
                raise Refused("malformed")
            if len(b.path) != expected_path_length(b.index, b.size) or any(len(h) != 32 for h in b.path):
                raise Refused("malformed")
        policy = POLICY[topic]
        if rec.stream != topic:
            raise Refused("wrong_stream")
        if policy["encrypted"] and rec.encryption != 1:
            raise Refused("plaintext_refused")
        if rec.schema not in policy["schemas"]:
            raise Refused("wrong_schema")
        info = self.registry.get(rec.producer_id)
        if info is None:
            raise Refused("unknown_producer")
        public = self.public.get((rec.producer_id, rec.signature.v))
        if public is None:
            raise Refused("unknown_signing_key")
        r, s = int.from_bytes(rec.signature.r, "big"), int.from_bytes(rec.signature.s, "big")
        if not (0 < r < N and 0 < s <= N // 2):
            raise Refused("bad_signature")
        head = header(rec)
        digest = hashlib.sha256(head + hashlib.sha256(rec.encrypted_data).digest()).digest()
        signed = digest
        if batched:
            leaf = hashlib.sha256(b"\x00" + digest).digest()
            root = merkle_root(leaf, rec.batch.index, rec.batch.size, list(rec.batch.path))
            if root is None:
                raise Refused("bad_signature")
            signed = hashlib.sha256(b"MKBATCH1\x00" + struct.pack(">I", rec.batch.size) + root).digest()
        try:
            public.verify(encode_dss_signature(r, s), signed, ec.ECDSA(Prehashed(hashes.SHA256())))
        except InvalidSignature:
            raise Refused("bad_signature") from None
        if info["hospital_id"] and info["hospital_id"] != rec.hospital_id:
            raise Refused("wrong_hospital")
        if rec.encryption == 1 and not rec.key_id.startswith(rec.hospital_id + "/"):
            raise Refused("wrong_hospital")
        if policy["roles"] and info["role"] not in policy["roles"]:
            raise Refused("unauthorized")
        # A batch-signed envelope's identity is its signed digest (the batch's signature is made after it).
        ehash = (
            digest if batched else hashlib.sha256(digest_input(head, rec) + rec.signature.r + rec.signature.s).digest()
        )
        verdict = self._chain(rec, ehash)
        if verdict == "duplicate":
            return verdict
        key = self.data.get(rec.key_id)
        if key is None:
            raise Refused("unknown_data_key")
        data = rec.encrypted_data
        if len(data) < 28:
            raise Refused("decrypt_failed")
        try:
            payload = AESGCM(key).decrypt(data[:12], data[12:], head)
        except InvalidTag:
            raise Refused("decrypt_failed") from None
        msg = pb["identity"].IdentityCheck()
        try:
            msg.ParseFromString(payload)
        except pb["message"].DecodeError:
            raise Refused("decode_failed") from None
        if has_unknown(msg, pb["unknown"]) or msg.SerializeToString(deterministic=True) != payload:
            raise Refused("decode_failed")
        return "accepted"

    def _chain(self, rec: Any, digest: bytes) -> str:
        key = (rec.producer_id, rec.stream)
        if rec.seq == 1 and rec.prev_hash != bytes(32):
            raise Refused("broken_chain")
        st = self.chains.get(key)
        if st is not None:
            last_seq, last_hash, recent = st
            if rec.seq <= last_seq:
                if recent.get(rec.seq) == digest:
                    return "duplicate"
                raise Refused("replayed_seq")
            if rec.seq > last_seq + 1:
                raise Refused("seq_gap")
            if rec.prev_hash != last_hash:
                raise Refused("broken_chain")
        recent = st[2] if st is not None else {}
        recent[rec.seq] = digest
        self.chains[key] = (rec.seq, digest, recent)
        return "accepted"


def main() -> int:
    gen, vectors_path = Path(sys.argv[1]), Path(sys.argv[2])
    sys.path.insert(0, str(gen))
    for banned in ("streams", "edge_agent", "cloud_workers", "medkiosk"):
        if importlib.util.find_spec(banned) is not None:
            print(f"{banned} is importable: the verifier must run without the project", file=sys.stderr)
            return 2
    from google.protobuf import message, unknown_fields

    pb = {
        "envelope": importlib.import_module("schemas.v1.envelope_pb2"),
        "identity": importlib.import_module("schemas.v1.identity_pb2"),
        "message": message,
        "unknown": unknown_fields,
    }
    vectors = json.loads(vectors_path.read_text())
    v = Verifier(vectors["keys"], vectors["limits"], pb)
    for item in vectors["valid_chain"]:
        rec = pb["envelope"].MedicalRecord.FromString(bytes.fromhex(item["wire"]))
        f = item["fields"]
        assert rec.seq == f["seq"] and rec.stream == f["stream"] and rec.prev_hash.hex() == f["prev_hash"]
        head = header(rec)
        assert head.hex() == item["header_bytes"], "header bytes differ"
        digest = hashlib.sha256(head + hashlib.sha256(rec.encrypted_data).digest()).hexdigest()
        assert digest == item["signed_digest"], "signed digest differs"
        got = v.open(item["topic"], bytes.fromhex(item["wire"]))
        assert got == "accepted", f"valid seq {rec.seq}: {got}"
        ehash = hashlib.sha256(head + hashlib.sha256(rec.encrypted_data).digest() + rec.signature.r + rec.signature.s)
        assert ehash.hexdigest() == item["envelope_hash"], "envelope hash differs"
        key = bytes.fromhex(vectors["keys"]["data/H1/v1.key"])
        payload = AESGCM(key).decrypt(rec.encrypted_data[:12], rec.encrypted_data[12:], head)
        assert payload.hex() == item["payload"], "payload differs"
    got = v.open("kiosk.identity.v1", bytes.fromhex(vectors["duplicate"]["wire"]))
    assert got == "duplicate", f"duplicate: {got}"
    batch_verifier = Verifier(vectors["keys"], vectors["limits"], pb)
    leaves = []
    for item in vectors["batch_chain"]:
        rec = pb["envelope"].MedicalRecord.FromString(bytes.fromhex(item["wire"]))
        head = header(rec)
        assert head.hex() == item["header_bytes"], "batch: header bytes differ"
        digest = hashlib.sha256(digest_input(head, rec)).digest()
        assert digest.hex() == item["signed_digest"] == item["envelope_hash"], "batch: signed digest differs"
        leaf = hashlib.sha256(b"\x00" + digest).digest()
        assert leaf.hex() == item["leaf_hash"], "batch: leaf hash differs"
        leaves.append(leaf)
        root = merkle_root(leaf, rec.batch.index, rec.batch.size, list(rec.batch.path))
        assert root is not None and root.hex() == item["root"], "batch: root differs"
        got = batch_verifier.open(item["topic"], bytes.fromhex(item["wire"]))
        assert got == "accepted", f"batch seq {rec.seq}: {got}"

    # The root again, from the leaves alone (RFC 9162 MTH), not from any proof.
    def mth(d: list[bytes]) -> bytes:
        if len(d) == 1:
            return d[0]
        k = 1
        while k * 2 < len(d):
            k *= 2
        return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()

    assert mth(leaves).hex() == vectors["batch_chain"][0]["root"], "batch: tree root differs"
    for item in vectors["invalid"]:
        fresh = Verifier(vectors["keys"], vectors["limits"], pb)
        for before in item["before"]:
            assert fresh.open(item["topic"], bytes.fromhex(before)) == "accepted", item["name"]
        got = fresh.open(item["topic"], bytes.fromhex(item["wire"]))
        if got != item["reason"]:
            print(f"{item['name']}: expected {item['reason']}, got {got}", file=sys.stderr)
            return 1
    print(
        f"ok: {len(vectors['valid_chain'])} valid, {len(vectors['batch_chain'])} batch-signed, 1 duplicate, "
        f"{len(vectors['invalid'])} invalid"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
