"""Property-based fuzzing of every consumer's per-record path (``RecordPipeline`` as each worker configures it),
with real keys: whatever the bytes, each record gets exactly one outcome, nothing raises, no hostile input
reaches ``internal_error``, and the valid records mixed in are accepted exactly once, in order.

Derandomised (fixed seed) so CI is deterministic; ``MEDKIOSK_FUZZ_EXAMPLES`` raises the budget for a longer
local run. Known crashers are pinned as explicit examples (and as vectors in docs/envelope-vectors.json).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas import AuditRecord, IdentityCheck, MedicalRecord, RejectReason, ScalingCommand, Telemetry
from streams import (
    BatchItem,
    ChainState,
    ChainTracker,
    Keyring,
    RecordPipeline,
    SeqDedupe,
    export_role,
    seal,
    seal_batch,
)
from streams._pipeline import Accepted, Duplicate, Rejected

EXAMPLES = int(os.environ.get("MEDKIOSK_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire_type: int, payload: bytes | int) -> bytes:
    tag = _varint((number << 3) | wire_type)
    if wire_type == 0:
        assert isinstance(payload, int)
        return tag + _varint(payload)
    assert isinstance(payload, bytes)
    return tag + _varint(len(payload)) + payload


def _raw_envelope(rec: MedicalRecord, override: dict[int, tuple[int, bytes | int]]) -> bytes:
    """Re-encode ``rec`` field by field, replacing some fields with raw values the typed API would refuse."""
    sig = rec.signature
    fields: dict[int, tuple[int, bytes | int]] = {
        1: (2, rec.encrypted_data),
        2: (2, rec.hospital_id.encode()),
        3: (0, rec.timestamp),
        4: (2, _field(1, 2, sig.r) + _field(2, 2, sig.s) + _field(3, 0, sig.v)),
        5: (2, rec.producer_id.encode()),
        6: (0, rec.seq),
        7: (2, rec.key_id.encode()),
        8: (2, rec.schema.encode()),
        9: (2, rec.prev_hash),
        10: (0, int(rec.encryption)),
        11: (2, rec.stream.encode()),
    }
    if rec.HasField("batch"):
        fields[12] = (2, rec.batch.SerializeToString(deterministic=True))
    fields.update(override)
    return b"".join(_field(n, wt, v) for n, (wt, v) in sorted(fields.items()))


class Worker:
    """One consumer's configuration of the per-record path, and the valid traffic of its topic."""

    def __init__(self, name: str, topic: str, pipeline: Callable[[], RecordPipeline], valid: list[bytes]) -> None:
        self.name, self.topic, self.pipeline, self.valid = name, topic, pipeline, valid


@pytest.fixture(scope="module")
def workers(keyring: Keyring, keys_dir, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Worker]:  # type: ignore[no-untyped-def]
    gw_dir = tmp_path_factory.mktemp("gw-keys")
    export_role(keys_dir, gw_dir, producer_id="gateway-1")
    gateway_keys = Keyring.load(gw_dir)
    h1_dir = tmp_path_factory.mktemp("h1-keys")
    export_role(keys_dir, h1_dir, hospitals=["H1"])
    h1_keys = Keyring.load(h1_dir)

    def chain_of(topic: str, make: Callable[[int], object], *, producer: str, encrypted: bool) -> list[bytes]:
        state, out = ChainState(), []
        for i in range(6):
            rec, state = seal(
                make(i),  # type: ignore[arg-type]
                signing_key=keyring.signing_key(producer),
                chain=state,
                hospital_id="H1" if producer.startswith("k") else "",
                data_key=keyring.latest_data_key("H1") if encrypted else None,
                stream=topic,
            )
            out.append(rec.SerializeToString())
        return out

    identity = chain_of(
        "kiosk.identity.v1", lambda i: IdentityCheck(kiosk_id="k1", skew_ns=i), producer="k1", encrypted=True
    )
    commands = chain_of(
        "control.scaling.v1",
        lambda i: ScalingCommand(target="k1", inference_workers=i + 1),
        producer="autoscaler-1",
        encrypted=False,
    )
    telemetry = chain_of(
        "kiosk.telemetry.v1", lambda i: Telemetry(kiosk_id="k1", queue_depth=i), producer="k1", encrypted=False
    )
    # The gateway's audit records: one batch signature (a Merkle root) for all six, each with its proof.
    audits, _ = seal_batch(
        [
            BatchItem(AuditRecord(producer_id="k1", seq=i + 1, routed_to="hospital.H1.events.v1"), "audit.v1")
            for i in range(6)
        ],
        signing_key=keyring.signing_key("gateway-1"),
        chains={},
    )
    return {
        "gateway": Worker(
            "gateway",
            "kiosk.identity.v1",
            lambda: RecordPipeline(gateway_keys, ChainTracker(), decrypt=False),
            identity,
        ),
        # The routed copy keeps its stream, so the hospital reads the kiosk's envelopes unchanged.
        "subscriber": Worker(
            "subscriber", "hospital.H1.events.v1", lambda: RecordPipeline(h1_keys, ChainTracker()), identity
        ),
        "kiosk-commands": Worker(
            "kiosk-commands", "control.scaling.v1", lambda: RecordPipeline(gateway_keys, ChainTracker()), commands
        ),
        "log-reader": Worker(
            "log-reader", "kiosk.telemetry.v1", lambda: RecordPipeline(gateway_keys, SeqDedupe()), telemetry
        ),
        "auditor": Worker(
            "auditor",
            "audit.v1",
            lambda: RecordPipeline(gateway_keys, ChainTracker()),
            [rec.SerializeToString() for rec in audits],
        ),
    }


def _mutations() -> st.SearchStrategy[tuple[str, object]]:
    u64 = st.integers(min_value=0, max_value=2**64 - 1)
    field_numbers = st.integers(min_value=1, max_value=12)
    return st.one_of(
        st.tuples(st.just("bytes"), st.binary(max_size=600)),
        st.tuples(st.just("flip"), st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=7))),
        st.tuples(st.just("truncate"), st.integers(min_value=0)),
        st.tuples(st.just("append"), st.binary(min_size=1, max_size=40)),
        st.tuples(st.just("varint"), st.tuples(field_numbers, u64)),
        st.tuples(st.just("blob"), st.tuples(field_numbers, st.binary(max_size=400))),
        st.tuples(st.just("sig.v"), u64),
        st.tuples(st.just("huge"), st.sampled_from([2, 5, 8, 11])),
        st.tuples(st.just("batch"), st.tuples(u64, u64, st.lists(st.binary(max_size=40), max_size=20))),
    )


def _apply(valid: bytes, mutation: tuple[str, object]) -> bytes:
    kind, arg = mutation
    rec = MedicalRecord.FromString(valid)
    if kind == "bytes":
        assert isinstance(arg, bytes)
        return arg
    if kind == "flip":
        pos, bit = arg  # type: ignore[misc]
        out = bytearray(valid)
        out[pos % len(out)] ^= 1 << bit
        return bytes(out)
    if kind == "truncate":
        assert isinstance(arg, int)
        return valid[: arg % len(valid)]
    if kind == "append":
        assert isinstance(arg, bytes)
        return valid + arg
    if kind == "varint":
        number, value = arg  # type: ignore[misc]
        return _raw_envelope(rec, {number: (0, value)})
    if kind == "blob":
        number, value = arg  # type: ignore[misc]
        return _raw_envelope(rec, {number: (2, value)})
    if kind == "sig.v":
        assert isinstance(arg, int)
        sig = _field(1, 2, rec.signature.r) + _field(2, 2, rec.signature.s) + _field(3, 0, arg)
        return _raw_envelope(rec, {4: (2, sig)})
    if kind == "batch":  # a batch proof of any shape, on a batch-signed envelope or not
        size, index, path = arg  # type: ignore[misc]
        proof = _field(1, 0, size) + _field(2, 0, index) + b"".join(_field(3, 2, h) for h in path)
        return _raw_envelope(rec, {12: (2, proof)})
    assert kind == "huge" and isinstance(arg, int)
    return _raw_envelope(rec, {arg: (2, b"x" * 300_000)})


@pytest.mark.parametrize("worker", ["gateway", "subscriber", "kiosk-commands", "log-reader", "auditor"])
@FUZZ
@given(data=st.data())
@example(data=None)  # the known crashers, below
def test_every_record_one_outcome_and_valid_ones_exactly_once(workers: dict[str, Worker], worker: str, data) -> None:  # type: ignore[no-untyped-def]
    w = workers[worker]
    if data is None:
        first = MedicalRecord.FromString(w.valid[0])
        hostile = [
            _raw_envelope(first, {10: (0, 256)}),  # encryption = 256: struct.error in header_bytes
            _raw_envelope(first, {4: (2, _field(1, 2, first.signature.r) + _field(3, 0, 1))}),  # no s
            _raw_envelope(first, {5: (2, b"p" * 1_500_000)}),  # 1.5 MB producer_id
            struct.pack(">Q", 2**63) * 4,
        ]
        plan = [(h, None) for h in hostile] + [(v, i) for i, v in enumerate(w.valid)]
    else:
        plan = []
        for i, v in enumerate(w.valid):
            for mutation in data.draw(st.lists(_mutations(), max_size=5), label=f"before valid {i}"):
                raw = _apply(data.draw(st.sampled_from(w.valid)), mutation)
                if raw not in w.valid:  # a mutation that changed nothing is not hostile
                    plan.append((raw, None))
            plan.append((v, i))
    pipe = w.pipeline()
    accepted: list[int] = []
    for raw, valid_index in plan:
        outcome = pipe.open(w.topic, 0, raw)
        assert isinstance(outcome, Accepted | Duplicate | Rejected)
        if isinstance(outcome, Rejected):
            assert outcome.error.reason != RejectReason.REJECT_REASON_INTERNAL_ERROR, outcome.error
            continue
        if isinstance(outcome, Accepted):
            # Canonical encoding: a hostile record can only be accepted by being a valid one, byte for byte.
            assert raw in w.valid
            accepted.append(w.valid.index(raw))
        elif valid_index is not None:
            raise AssertionError(f"valid record {valid_index} dropped as a duplicate")
    assert accepted == list(range(len(w.valid)))
