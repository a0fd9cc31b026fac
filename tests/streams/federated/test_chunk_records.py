"""ChunkRecords with the real Reassembler: a payload given up on hands back exactly the records its chunks came in."""

from __future__ import annotations

from streams import Reassembler, split_payload
from streams.federated import ChunkRecords


def test_a_payload_given_up_returns_its_records_and_a_completed_one_is_forgotten() -> None:
    records: ChunkRecords[str] = ChunkRecords("model version")
    reassembler = Reassembler(ttl_s=10.0, on_incomplete=records.on_incomplete)
    cut = list(split_payload(bytes(range(200)), schema="x.Y", chunk_size=64))
    whole = list(split_payload(bytes(50), schema="x.Y", chunk_size=64))
    for i, chunk in enumerate(cut[:2]):
        records.note(bytes(chunk.payload_id), "producer-a", f"cut-{i}")
        assert reassembler.add(chunk, now=0.0) is None
    assert records.given_up() == []
    records.note(bytes(whole[0].payload_id), "producer-b", "whole-0")
    done = reassembler.add(whole[0], now=11.0)  # past the TTL: the cut payload is given up first
    assert done is not None
    records.done(done.payload_id)
    (lost,) = records.given_up()
    assert lost.producer_id == "producer-a" and lost.records == ("cut-0", "cut-1")
    assert "2 of 4 chunks" in lost.detail and "model version" in lost.detail
    assert records.given_up() == []
    reassembler.add(cut[2], now=12.0)  # a late chunk of the given-up payload starts over, never resurrects it
    assert records.given_up() == []
