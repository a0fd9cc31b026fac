"""The committed AsyncAPI document is what the FastStream apps generate today (regenerate with
``python -m cloud_workers._asyncapi --write docs/asyncapi``), and it documents what a client needs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from cloud_workers._asyncapi import generate, render_html
from schemas import AuditRecord, DeadLetter, IdentityCheck, InferenceResult, MedicalRecord

DOCS = Path(__file__).resolve().parents[2] / "docs" / "asyncapi"
HINT = "docs/asyncapi is out of date: run `python -m cloud_workers._asyncapi --write docs/asyncapi` and commit it"


def test_committed_document_is_current() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. FastStream's warning about two channels with one name
        doc = generate()
    assert json.loads((DOCS / "asyncapi.json").read_text()) == doc, HINT
    assert (DOCS / "index.html").read_text() == render_html(doc) + "\n", HINT


def _fields(schema: dict, message: type) -> None:  # type: ignore[type-arg]
    numbers = {name: prop["x-proto-field"] for name, prop in schema["properties"].items()}
    assert numbers == {f.name: f.number for f in message.DESCRIPTOR.fields}
    assert schema["x-proto-message"] == message.DESCRIPTOR.full_name


def test_document_names_schemas_keys_and_security() -> None:
    doc = json.loads((DOCS / "asyncapi.json").read_text())
    assert doc["asyncapi"] == "3.0.0" and doc["defaultContentType"] == "application/x-protobuf"
    receive = {
        op["channel"]["$ref"].rsplit("/", 1)[-1] for op in doc["operations"].values() if op["action"] == "receive"
    }
    assert receive == {"hospital.%7Bhospital_id%7D.events.v1", "audit.v1", "dlq.v1"}
    schemas = doc["components"]["schemas"]
    hospital = schemas["hospital.{hospital_id}.events.v1:Message:Payload"]
    _fields(hospital, MedicalRecord)
    inner = hospital["properties"]["encrypted_data"]["x-decrypted-payload"]["oneOf"]
    for schema, message in zip(inner, (IdentityCheck, InferenceResult), strict=True):
        _fields(schema, message)
    audit = schemas["audit.v1:Message:Payload"]
    _fields(audit["properties"]["encrypted_data"]["x-decrypted-payload"], AuditRecord)
    _fields(schemas["dlq.v1:Message:Payload"], DeadLetter)
    messages = doc["components"]["messages"]
    for name, message in messages.items():
        assert message["bindings"]["kafka"]["key"]["type"] == "string", name
    hospital_message = messages["hospital.{hospital_id}.events.v1:SubscribeMessage"]
    assert "correlationId" not in hospital_message and hospital_message["headers"]["properties"] == {}
    channel = doc["channels"]["hospital.{hospital_id}.events.v1"]
    assert set(channel["parameters"]) == {"hospital_id"}
    assert doc["components"]["securitySchemes"] == {"scram512": {"type": "scramSha512"}}
    assert all(server["protocol"] == "kafka-secure" for server in doc["servers"].values())
