"""Chunking: any size, duplicated and shuffled chunks reassemble exactly; a missing chunk yields nothing."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import Chunk, RejectReason
from streams import EnvelopeRejected, Reassembler, split_payload


@settings(max_examples=150, derandomize=True, deadline=None)
@given(
    payload=st.binary(max_size=5000),
    chunk_size=st.integers(1, 700),
    dupes=st.integers(0, 10),
    seed=st.integers(0, 2**32 - 1),
)
def test_shuffled_and_duplicated_chunks_reassemble_exactly(
    payload: bytes, chunk_size: int, dupes: int, seed: int
) -> None:
    chunks = list(split_payload(payload, schema="schemas.v1.ModelUpdate", chunk_size=chunk_size))
    rng = random.Random(seed)
    stream = chunks + [rng.choice(chunks) for _ in range(dupes)]
    rng.shuffle(stream)
    r = Reassembler()
    results = [a for c in stream if (a := r.add(c)) is not None]
    assert len(results) == 1
    assert results[0].payload == payload
    assert results[0].schema == "schemas.v1.ModelUpdate"
    assert r.pending == 0


@settings(max_examples=80, derandomize=True, deadline=None)
@given(payload=st.binary(min_size=2, max_size=3000), chunk_size=st.integers(1, 500), seed=st.integers(0, 2**32 - 1))
def test_a_missing_chunk_never_yields_a_payload(payload: bytes, chunk_size: int, seed: int) -> None:
    chunks = list(split_payload(payload, schema="x", chunk_size=chunk_size))
    if len(chunks) < 2:
        return
    rng = random.Random(seed)
    chunks.pop(rng.randrange(len(chunks)))
    stream = chunks * 2
    rng.shuffle(stream)
    r = Reassembler()
    assert all(r.add(c) is None for c in stream)


def test_interleaved_payloads() -> None:
    a = list(split_payload(b"a" * 1000, schema="x", chunk_size=100))
    b = list(split_payload(b"b" * 777, schema="x", chunk_size=100))
    stream = [c for pair in zip(a, b, strict=False) for c in pair] + a[len(b) :]
    r = Reassembler()
    got = {x.payload for c in stream if (x := r.add(c)) is not None}
    assert got == {b"a" * 1000, b"b" * 777}


def test_conflicting_chunk_is_rejected() -> None:
    chunks = list(split_payload(b"0123456789", schema="x", chunk_size=4))
    r = Reassembler()
    r.add(chunks[0])
    forged = Chunk()
    forged.CopyFrom(chunks[0])
    forged.data = b"XXXX"
    with pytest.raises(EnvelopeRejected) as info:
        r.add(forged)
    assert info.value.reason == RejectReason.REJECT_REASON_CHUNK_INVALID


def test_corrupted_payload_fails_its_digest() -> None:
    chunks = list(split_payload(b"0123456789", schema="x", chunk_size=4))
    r = Reassembler()
    bad = Chunk()
    bad.CopyFrom(chunks[-1])
    bad.data = b"ZZ"
    r.add(chunks[0])
    r.add(chunks[1])
    with pytest.raises(EnvelopeRejected) as info:
        r.add(bad)
    assert info.value.reason == RejectReason.REJECT_REASON_CHUNK_INVALID


def test_a_payload_is_released_once() -> None:
    chunks = list(split_payload(b"hello", schema="x", chunk_size=2))
    r = Reassembler()
    assert [r.add(c) is not None for c in chunks + chunks] == [False, False, True, False, False, False]


def test_incomplete_payloads_expire() -> None:
    chunks = list(split_payload(b"0123456789", schema="x", chunk_size=4))
    r = Reassembler(ttl_s=10)
    r.add(chunks[0], now=0.0)
    assert r.pending == 1
    r.add(next(iter(split_payload(b"other", schema="x", chunk_size=100))), now=11.0)
    assert r.pending == 0
    assert r.incomplete_dropped == 1  # given up on, and counted: never silent


def test_eviction_over_the_byte_limit_is_counted(caplog: pytest.LogCaptureFixture) -> None:
    r = Reassembler(max_bytes=6)
    first = list(split_payload(b"0123456789", schema="x", chunk_size=4))
    second = list(split_payload(b"abcdefghij", schema="y", chunk_size=4))
    r.add(first[0])
    with caplog.at_level("WARNING"):
        r.add(second[0])
    assert (r.pending, r.incomplete_dropped) == (1, 1)
    assert "incomplete chunked payload" in caplog.text
