"""FHIR R5: every notification Bundle and every resource in it parses with the fhir.resources R5 models, and
every identifier in it comes from the event."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from fhir.resources.bundle import Bundle
from fhir.resources.encounter import Encounter
from fhir.resources.observation import Observation
from fhir.resources.subscriptionstatus import SubscriptionStatus
from fhir.resources.subscriptiontopic import SubscriptionTopic
from pydantic import ValidationError

from cloud_workers.hospital import Accepted, EnvelopeDecoder
from cloud_workers.hospital._fhir import FhirMapper, UnmappableEvent, subscription_topic, topic_url, validate
from schemas import IdentityVerdict, Telemetry
from streams import Keyring, hospital_topic
from tests.cloud_workers.hospital.sealing import Chain, identity, triage


def _accepted(decoder: EnvelopeDecoder, rec: Any, offset: int, topic: str = "hospital.H1.events.v1") -> Accepted:
    record = ConsumerRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"k1",
        value=rec.SerializeToString(),
        checksum=None,
        serialized_key_size=2,
        serialized_value_size=0,
        headers=(),
    )
    verdict = decoder.verdict(record)
    assert isinstance(verdict, Accepted), verdict
    return verdict


def _values(obj: Any, key: str) -> list[str]:
    """Every ``identifier.value`` anywhere in a resource tree."""
    out: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "identifier":
                for ident in v if isinstance(v, list) else [v]:
                    out.append(ident["value"])
            out += _values(v, key)
    elif isinstance(obj, list):
        for v in obj:
            out += _values(v, key)
    return out


@pytest.fixture
def events(keyring: Keyring) -> list[Accepted]:
    chain = Chain(keyring, "k1", "H1")
    decoder = EnvelopeDecoder(keyring)
    not_live = identity("k1", "H1", 2)
    not_live.verdict = IdentityVerdict.IDENTITY_VERDICT_NOT_LIVE
    synthetic = triage("k1", "H1", 3)
    synthetic.synthetic = True
    msgs = [identity("k1", "H1", 1), not_live, triage("k1", "H1", 7), synthetic]
    return [_accepted(decoder, chain.seal(m), i) for i, m in enumerate(msgs)]


def test_notifications_validate_and_identify_only_from_the_event(events: list[Accepted]) -> None:
    mapper = FhirMapper(hospital_id="H1", group_id="hospital-H1")
    for n, event in enumerate(events, start=1):
        bundle = mapper.notification(event)
        parsed = Bundle.model_validate(bundle)
        assert parsed.type == "subscription-notification"
        status, focus = bundle["entry"][0]["resource"], bundle["entry"][1]["resource"]
        st = SubscriptionStatus.model_validate(status)
        assert st.type == "event-notification" and st.topic == topic_url("H1")
        assert int(st.eventsSinceSubscriptionStart) == n
        assert st.notificationEvent[0].focus.reference == bundle["entry"][1]["fullUrl"]
        env = event.envelope
        msg: Any = event.message
        allowed = {
            f"{env.producer_id}/{env.stream}/{env.seq}",
            "hospital-H1",
            msg.kiosk_id,
            msg.hospital_id,
        }
        if focus["resourceType"] == "Encounter":
            enc = Encounter.model_validate(focus)
            allowed.add(msg.card.card_number)
            assert enc.subject.identifier.value == msg.card.card_number
            verified = msg.verdict == IdentityVerdict.IDENTITY_VERDICT_VERIFIED
            assert enc.status == ("in-progress" if verified else "unknown")
            assert (enc.subjectStatus is not None) == verified
            if verified:
                assert enc.subjectStatus.coding[0].code == "arrived"
        else:
            obs = Observation.model_validate(focus)
            allowed.add(msg.request_id)
            assert obs.status == "preliminary"
            scores = [(c.code.text, float(c.valueQuantity.value)) for c in obs.component if c.valueQuantity]
            assert scores == [(f"department: {s.department}", pytest.approx(s.score, abs=1e-6)) for s in msg.ranking]
            labels = [s.code for s in obs.meta.security] if obs.meta else []
            assert labels == (["HTEST"] if msg.synthetic else [])
        assert set(_values(bundle, "identifier")) <= allowed
    # Deterministic: the same event maps to the same ids (a re-delivery is recognisable downstream).
    again = FhirMapper(hospital_id="H1", group_id="hospital-H1").notification(events[0])
    assert again["id"] == FhirMapper(hospital_id="H1", group_id="hospital-H1").notification(events[0])["id"]


def test_subscription_topic_per_hospital_topic() -> None:
    for hospital in ("H1", "H2"):
        topic = SubscriptionTopic.model_validate(subscription_topic(hospital))
        assert topic.url == topic_url(hospital)
        assert topic.identifier[0].value == hospital_topic(hospital)
        assert {t.resource.rsplit("/", 1)[-1] for t in topic.resourceTrigger} == {"Encounter", "Observation"}


def test_validation_catches_a_bad_mapping(events: list[Accepted]) -> None:
    """The models check structure (required elements, known elements, types), including inside the Bundle;
    they do not check code bindings, which the mapping tests above pin instead."""
    mapper = FhirMapper(hospital_id="H1", group_id="g")
    for breakage in ("missing", "unknown", "type"):
        bundle = mapper.notification(events[0])
        encounter = bundle["entry"][1]["resource"]
        if breakage == "missing":
            del encounter["status"]  # 1..1 in R5
        elif breakage == "unknown":
            encounter["arrivedAt"] = "2026-01-01T00:00:00Z"  # no such element
        else:
            encounter["actualPeriod"] = {"start": "yesterday"}  # not a dateTime
        with pytest.raises(ValidationError):
            validate(bundle)


def test_unmapped_schema_is_refused(keyring: Keyring) -> None:
    # The catalog keeps telemetry off hospital topics; a topic outside the catalog lets it through to the mapper.
    chain = Chain(keyring, "k1", "H1", "test.fhir.unmapped")
    event = _accepted(EnvelopeDecoder(keyring), chain.seal(Telemetry(kiosk_id="k1")), 0, "test.fhir.unmapped")
    with pytest.raises(TypeError, match="no FHIR mapping"):
        FhirMapper(hospital_id="H1", group_id="g").notification(event)


def test_a_value_fhir_cannot_hold_is_refused_without_quoting_it(keyring: Keyring) -> None:
    check = identity("k1", "H1", 1)
    check.card.card_number = "0042\u2028SECRET"  # a line separator: not allowed in a FHIR string
    event = _accepted(EnvelopeDecoder(keyring), Chain(keyring, "k1", "H1").seal(check), 0)
    with pytest.raises(UnmappableEvent) as info:
        FhirMapper(hospital_id="H1", group_id="g").notification(event)
    assert "U+2028" in str(info.value) and "SECRET" not in str(info.value) and "0042" not in str(info.value)
