"""FHIR R5 for hospital systems: each event as a ``subscription-notification`` Bundle, and the
``SubscriptionTopic`` of each hospital topic.

Mappings (every identifier comes from the event; systems are ``<base>:<kind>`` URIs under a base the hospital
may set, ``urn:medkiosk`` by default):

* ``schemas.v1.IdentityCheck`` -> ``Encounter``. A verified check (card + live face) is the patient's arrival:
  R5 moved R4's ``status = arrived`` to ``status = in-progress`` with ``subjectStatus = arrived``. Any other
  verdict (no face, not live, ambiguous, outside the window) is ``status = unknown`` with no subject status, so a
  receiving system never books an arrival that the kiosk did not confirm. The subject is the card number.
* ``schemas.v1.InferenceResult`` -> ``Observation`` (``status = preliminary``: machine triage nobody has
  reviewed yet), one component per ranked department with its score, one per reported symptom.
  ``RiskAssessment`` would need a subject, and a triage result names none (only the kiosk and the request).
* The Bundle's first entry is a ``SubscriptionStatus`` (``event-notification``) naming the topic's canonical URL
  and the events delivered since the subscriber started; the subscription is the Kafka consumer group.
* Synthetic events (simulator, emulators) carry the ``HTEST`` (test health data) security label.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from cloud_workers.hospital._verdict import Accepted
from schemas import IdentityCheck, IdentityVerdict, InferenceResult
from streams import hospital_topic

__all__ = ["FhirMapper", "UnmappableEvent", "fhir_instant", "subscription_topic", "topic_url", "validate"]

DEFAULT_BASE = "urn:medkiosk"
_NS = uuid.UUID("6f1d2a4e-8a43-5b8e-9d6c-2f3b1e0c7a55")  # fixed: the same event always gets the same ids
_TEST_DATA = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
    "code": "HTEST",
    "display": "test health data",
}


#: FHIR ``string``: any characters except whitespace other than space, CR, LF and tab; never empty.
_STRING = re.compile(r"[ \r\n\t\S]+")
#: FHIR ``code``: no leading/trailing whitespace, single spaces inside.
_CODE = re.compile(r"[^\s]+( [^\s]+)*")


class UnmappableEvent(ValueError):
    """An authentic event with a value FHIR cannot carry as it is (we refuse rather than alter it)."""


def _string(value: str, what: str) -> str | None:
    """``value`` as a FHIR string, ``None`` when empty; refuses (never rewrites) what FHIR cannot hold."""
    if not value:
        return None
    if not _STRING.fullmatch(value):
        bad = next(i for i, c in enumerate(value) if c.isspace() and c not in " \r\n\t")
        # Where and what, never the value itself: it is decrypted patient data.
        raise UnmappableEvent(f"{what}: U+{ord(value[bad]):04X} at {bad} is not allowed in a FHIR string")
    return value


def fhir_instant(ns: int) -> str:
    """Unix nanoseconds as a FHIR ``instant`` (UTC, microseconds)."""
    moment = dt.datetime.fromtimestamp(ns // 1000 / 1e6, tz=dt.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _instant_or_none(ns: int) -> str | None:
    """A FHIR instant for a time taken from the event body, ``None`` when unset or outside years 1-9999."""
    if ns <= 0:
        return None
    try:
        return fhir_instant(ns)
    except (OverflowError, OSError, ValueError):
        return None


def topic_url(hospital_id: str, base: str = DEFAULT_BASE) -> str:
    """Canonical URL of the SubscriptionTopic of ``hospital.<id>.events.v1``."""
    return f"{base}:SubscriptionTopic:{hospital_topic(hospital_id)}"


def subscription_topic(hospital_id: str, base: str = DEFAULT_BASE) -> dict[str, Any]:
    """The ``SubscriptionTopic`` a hospital system subscribes to for ``hospital.<id>.events.v1``."""
    topic = hospital_topic(hospital_id)
    return {
        "resourceType": "SubscriptionTopic",
        "id": topic,
        "url": topic_url(hospital_id, base),
        "identifier": [{"system": f"{base}:kafka-topic", "value": topic}],
        "title": f"Kiosk events of hospital {hospital_id}",
        "status": "active",
        "description": f"Identity checks (Encounter) and triage results (Observation) of hospital {hospital_id}'s "
        f"kiosks, from Kafka topic {topic}, verified (signature, sequence, hash chain) and decrypted by the "
        "hospital's subscriber.",
        "resourceTrigger": [
            {
                "description": "A kiosk identity check: the patient checked in (card read + face liveness).",
                "resource": "http://hl7.org/fhir/StructureDefinition/Encounter",
                "supportedInteraction": ["create"],
            },
            {
                "description": "A kiosk triage result: departments ranked for the reported symptoms.",
                "resource": "http://hl7.org/fhir/StructureDefinition/Observation",
                "supportedInteraction": ["create"],
            },
        ],
        "canFilterBy": [
            {
                "description": "The kiosk that produced the event.",
                "resource": "Encounter",
                "filterParameter": "location",
            },
            {
                "description": "The kiosk that produced the event.",
                "resource": "Observation",
                "filterParameter": "device",
            },
        ],
        "notificationShape": [
            {"resource": "Encounter"},
            {"resource": "Observation"},
        ],
    }


def _ref(base: str, kind: str, resource: str, value: str) -> dict[str, Any] | None:
    text = _string(value, kind)
    return None if text is None else {"type": resource, "identifier": {"system": f"{base}:{kind}", "value": text}}


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def _absent(score: float) -> str | None:
    """The data-absent-reason code for a score FHIR's decimal cannot hold."""
    if math.isnan(score):
        return "not-a-number"
    if math.isinf(score):
        return "positive-infinity" if score > 0 else "negative-infinity"
    return None


@dataclass(kw_only=True)
class FhirMapper:
    """Turns accepted events into notification Bundles; counts events as FHIR's ``eventNumber``."""

    hospital_id: str
    #: The consumer group: FHIR's subscription, named by identifier.
    group_id: str
    base: str = DEFAULT_BASE
    events: int = field(default=0, init=False)

    def notification(self, event: Accepted) -> dict[str, Any]:
        """The ``subscription-notification`` Bundle for one event (raises ``TypeError`` on other schemas and
        ``UnmappableEvent`` on a value FHIR cannot carry unchanged)."""
        env = event.envelope
        key = f"{env.producer_id}/{env.stream}/{env.seq}"
        _string(key, "event key")
        focus = self._focus(event.message, key, env.timestamp)
        self.events += 1
        focus_id = focus["id"]
        status_id = str(uuid.uuid5(_NS, "status/" + key))
        status = {
            "resourceType": "SubscriptionStatus",
            "id": status_id,
            "status": "active",
            "type": "event-notification",
            "eventsSinceSubscriptionStart": str(self.events),
            "notificationEvent": [
                {
                    "eventNumber": str(self.events),
                    "timestamp": fhir_instant(env.timestamp),
                    "focus": {"reference": f"urn:uuid:{focus_id}"},
                }
            ],
            "subscription": {
                "type": "Subscription",
                "identifier": {"system": f"{self.base}:consumer-group", "value": self.group_id},
            },
            "topic": topic_url(self.hospital_id, self.base),
        }
        return {
            "resourceType": "Bundle",
            "id": str(uuid.uuid5(_NS, "bundle/" + key)),
            "type": "subscription-notification",
            "timestamp": fhir_instant(env.timestamp),
            "entry": [
                {"fullUrl": f"urn:uuid:{status_id}", "resource": status},
                {"fullUrl": f"urn:uuid:{focus_id}", "resource": focus},
            ],
        }

    def _focus(self, message: Message | None, key: str, timestamp_ns: int) -> dict[str, Any]:
        rid = str(uuid.uuid5(_NS, "focus/" + key))
        ident = [{"system": f"{self.base}:event", "value": key}]
        if isinstance(message, IdentityCheck):
            return self._encounter(message, rid, ident)
        if isinstance(message, InferenceResult):
            return self._observation(message, rid, ident, timestamp_ns)
        raise TypeError(f"no FHIR mapping for {message.DESCRIPTOR.full_name if message else 'an undecoded event'}")

    def _meta(self, synthetic: bool) -> dict[str, Any]:
        return {"meta": {"security": [_TEST_DATA]}} if synthetic else {}

    def _encounter(self, check: IdentityCheck, rid: str, ident: list[dict[str, Any]]) -> dict[str, Any]:
        b = self.base
        verified = check.verdict == IdentityVerdict.IDENTITY_VERDICT_VERIFIED
        out: dict[str, Any] = {
            "resourceType": "Encounter",
            "id": rid,
            **self._meta(check.synthetic),
            "identifier": ident,
            "status": "in-progress" if verified else "unknown",
            "class": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                            "code": "AMB",
                            "display": "ambulatory",
                        }
                    ]
                }
            ],
        }
        _put(out, "serviceProvider", _ref(b, "hospital", "Organization", check.hospital_id))
        kiosk = _ref(b, "kiosk", "Location", check.kiosk_id)
        if kiosk is not None:
            out["location"] = [{"location": kiosk}]
        if verified:
            out["subjectStatus"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/encounter-subject-status",
                        "code": "arrived",
                        "display": "Arrived",
                    }
                ]
            }
        _put(out, "subject", _ref(b, "card", "Patient", check.card.card_number))
        start = _instant_or_none(check.card.read_at)
        if start is not None:
            out["actualPeriod"] = {"start": start}
        return out

    def _observation(
        self, result: InferenceResult, rid: str, ident: list[dict[str, Any]], timestamp_ns: int
    ) -> dict[str, Any]:
        b = self.base
        identifiers = [*ident]
        request = _string(result.request_id, "request id")
        if request is not None:
            identifiers.append({"system": f"{b}:triage-request", "value": request})
        components: list[dict[str, Any]] = []
        for score in result.ranking:
            department = _string(score.department, "department") or "(unnamed)"
            component: dict[str, Any] = {"code": {"text": f"department: {department}"}}
            absent = _absent(float(score.score))
            if absent is None:
                component["valueQuantity"] = {
                    "value": round(float(score.score), 6),
                    "unit": "1",
                    "system": "http://unitsofmeasure.org",
                    "code": "1",
                }
            else:
                component["dataAbsentReason"] = {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": absent}]
                }
            components.append(component)
        for symptom in result.symptoms:
            text = _string(symptom, "symptom")
            if text is not None:
                components.append({"code": {"text": "reported symptom"}, "valueString": text})
        coding: list[dict[str, Any]] = []
        if result.model_name and _CODE.fullmatch(result.model_name):
            model: dict[str, Any] = {"system": f"{b}:triage-model", "code": result.model_name}
            _put(model, "version", _string(result.model_version, "model version"))
            coding.append(model)
        name = _string(result.model_name, "model name")
        what = f"kiosk triage ({name})" if name else "kiosk triage"
        out: dict[str, Any] = {
            "resourceType": "Observation",
            "id": rid,
            **self._meta(result.synthetic),
            "identifier": identifiers,
            "status": "preliminary",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "survey",
                            "display": "Survey",
                        }
                    ]
                }
            ],
            "code": {**({"coding": coding} if coding else {}), "text": f"{what}: departments ranked for the symptoms"},
            "effectiveDateTime": fhir_instant(timestamp_ns),
        }
        _put(out, "device", _ref(b, "kiosk", "Device", result.kiosk_id))
        performer = _ref(b, "hospital", "Organization", result.hospital_id)
        if performer is not None:
            out["performer"] = [performer]
        engine = _string(result.engine, "engine")
        if engine is not None:
            out["method"] = {"text": f"inference engine: {engine}"}
        if components:
            out["component"] = components
        return out


def validate(resource: dict[str, Any]) -> Any:
    """Parse ``resource`` with the ``fhir.resources`` R5 model of its type (raises on anything invalid)."""
    from fhir.resources import get_fhir_model_class

    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)
