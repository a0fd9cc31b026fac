"""The FastStream decoder is total: any bytes, any one-byte change of a genuine envelope, any topic gives exactly
one verdict, and a changed envelope is never accepted."""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_workers.hospital import Accepted, EnvelopeDecoder, Rejected
from streams import Keyring
from tests.cloud_workers.hospital.sealing import Chain, identity


def _record(value: bytes | None, topic: str = "hospital.H1.events.v1") -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=0,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=value,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=(),
    )


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.one_of(st.none(), st.binary(max_size=600)))
def test_any_bytes_get_one_verdict(keyring: Keyring, data: bytes | None) -> None:
    verdict = EnvelopeDecoder(keyring).verdict(_record(data))
    assert isinstance(verdict, Rejected)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    at=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
    topic=st.sampled_from(
        ["hospital.H1.events.v1", "hospital.H2.events.v1", "kiosk.identity.v1", "audit.v1", "elsewhere"]
    ),
)
def test_mutations_are_refused(keyring: Keyring, at: int, flip: int, topic: str) -> None:
    genuine = Chain(keyring, "k1", "H1").seal(identity("k1", "H1", 1)).SerializeToString()
    mutated = bytearray(genuine)
    mutated[at % len(mutated)] ^= flip
    decoder = EnvelopeDecoder(keyring)
    verdict = decoder.verdict(_record(bytes(mutated), topic))
    assert isinstance(verdict, Rejected), verdict  # a changed byte is never accepted, wherever it is read


def test_the_genuine_envelope_is_accepted(keyring: Keyring) -> None:
    genuine = Chain(keyring, "k1", "H1").seal(identity("k1", "H1", 1)).SerializeToString()
    assert isinstance(EnvelopeDecoder(keyring).verdict(_record(genuine)), Accepted)
