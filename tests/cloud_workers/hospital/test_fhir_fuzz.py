"""Hostile field values (empty, whitespace, odd Unicode, extreme numbers) in authentic events: the FHIR mapping
still produces resources the R5 models accept, or the event is refused loudly (never a malformed Bundle)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_workers.hospital import Accepted
from cloud_workers.hospital._fhir import FhirMapper, UnmappableEvent, validate
from schemas import (
    CardRead,
    DepartmentScore,
    IdentityCheck,
    IdentityVerdict,
    InferenceResult,
    LivenessResult,
    MedicalRecord,
)

_text = st.text(st.characters(codec="utf-8"), max_size=40)
_i64 = st.integers(min_value=0, max_value=2**63 - 1)


def _representable(value: str) -> bool:
    """What FHIR's ``string`` can hold: anything but whitespace other than space, CR, LF and tab."""
    return all(not c.isspace() or c in " \r\n\t" for c in value)


def _check(event: Accepted, values: list[str]) -> None:
    try:
        bundle = FhirMapper(hospital_id="H1", group_id="g").notification(event)
    except UnmappableEvent:
        assert not all(_representable(v) for v in values), "refused an event FHIR could carry"
        return
    validate(bundle)


def _event(message: Any, *, producer: str = "k1", stream: str = "kiosk.identity.v1", seq: int = 1) -> Accepted:
    env = MedicalRecord(producer_id=producer, stream=stream, seq=seq, hospital_id="H1", timestamp=1_700_000_000 * 10**9)
    return Accepted(record=None, envelope=env, digest=b"", message=message)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    kiosk=_text,
    card=_text,
    read_at=_i64,
    verdict=st.sampled_from(list(IdentityVerdict.values())),
    synthetic=st.booleans(),
)
def test_identity_checks_always_map_to_valid_fhir(
    kiosk: str, card: str, read_at: int, verdict: int, synthetic: bool
) -> None:
    message = IdentityCheck(
        kiosk_id=kiosk,
        hospital_id="H1",
        card=CardRead(kiosk_id=kiosk, card_number=card, read_at=read_at),
        liveness=LivenessResult(kiosk_id=kiosk, live_score=0.5),
        verdict=verdict,  # type: ignore[arg-type]
        synthetic=synthetic,
    )
    _check(_event(message), [kiosk, card])


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    kiosk=_text,
    request=_text,
    model=_text,
    version=_text,
    engine=_text,
    symptoms=st.lists(_text, max_size=4),
    ranking=st.lists(st.tuples(_text, st.floats(width=32, allow_nan=True, allow_infinity=True)), max_size=4),
    producer=_text.filter(bool),
    seq=st.integers(min_value=1, max_value=2**64 - 1),
)
def test_triage_results_always_map_to_valid_fhir(
    kiosk: str,
    request: str,
    model: str,
    version: str,
    engine: str,
    symptoms: list[str],
    ranking: list[tuple[str, float]],
    producer: str,
    seq: int,
) -> None:
    message = InferenceResult(
        kiosk_id=kiosk,
        hospital_id="H1",
        request_id=request,
        model_name=model,
        model_version=version,
        engine=engine,
        symptoms=symptoms,
        ranking=[DepartmentScore(department=d, score=s) for d, s in ranking],
    )
    event = _event(message, producer=producer, stream="kiosk.inference.v1", seq=seq)
    _check(event, [kiosk, request, model, version, engine, producer, *symptoms, *(d for d, _ in ranking)])
