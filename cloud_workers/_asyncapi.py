"""The AsyncAPI document of every topic a hospital or an auditor may consume, from the FastStream apps they run.

FastStream generates the document from the real subscribers (``HospitalSubscriber``, ``AuditFollower``): channels,
operations, servers, security and the payload schemas (from the protobuf descriptors). Four facts it has no
place for are added afterwards, each where AsyncAPI 3.0 puts it: the content type (binary protobuf), the Kafka
message key (a message binding), the ``{hospital_id}`` channel parameter, and the headers (none on envelope
topics: the kiosk and gateway producers set no ``correlation_id``).

``python -m cloud_workers._asyncapi --write docs/asyncapi`` regenerates ``asyncapi.json`` and ``index.html``;
a test fails when the committed files differ from what the code generates."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["VIEWER", "generate", "render_html", "write"]

#: The production shape documented: TLS + SCRAM-SHA-512, one principal per hospital (see infra/kafka).
_SERVER = {
    "bootstrap_servers": "kafka:9092",
    "security_protocol": "SASL_SSL",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_username": "<principal>",
}
_HOSPITAL = "{hospital_id}"
_KEYS = {
    "hospital.{hospital_id}.events.v1": "the kiosk id (UTF-8)",
    "audit.v1": "the gateway's producer id (UTF-8)",
    "dlq.v1": "the source topic of the refused record (UTF-8)",
}


class _Placeholder:
    """Stands in for the keyring: generating the document verifies nothing and needs no keys."""

    producers: dict[str, Any] = {}  # noqa: RUF012 - read-only stand-in
    public_keys: dict[Any, Any] = {}  # noqa: RUF012


def _apps() -> list[Any]:
    from cloud_workers.audit import AuditFollower, AuditFollowerConfig
    from cloud_workers.hospital import VerifiedSubscriber, VerifiedSubscriberConfig, kafka_broker
    from cloud_workers.hospital._hospital import _HOSPITAL_TOPIC_DOC
    from streams import BusMetrics, BusSettings

    settings = BusSettings(**_SERVER)  # type: ignore[arg-type]
    keyring: Any = _Placeholder()

    async def nowhere(_: Any) -> None:
        return None

    hospital = kafka_broker(
        settings,
        "medkiosk-subscriber",
        description="What a hospital consumes: its own events, signed by the kiosks and encrypted for it.",
    )
    # The same subscriber HospitalSubscriber builds, with the hospital id left as the channel parameter.
    VerifiedSubscriber(
        VerifiedSubscriberConfig(
            topic=f"hospital.{_HOSPITAL}.events.v1",
            group_id=f"hospital-{_HOSPITAL}",
            worker=f"subscriber-{_HOSPITAL}",
            title=f"hospital.{_HOSPITAL}.events.v1",
            description=_HOSPITAL_TOPIC_DOC,
        ),
        hospital,
        settings,
        keyring,
        BusMetrics("asyncapi"),
        nowhere,
    )
    auditor = AuditFollower(AuditFollowerConfig(dlq=True), settings, keyring, BusMetrics("asyncapi"), nowhere)
    return [hospital, auditor.broker]


def _sorted(mapping: dict[str, Any]) -> dict[str, Any]:
    return dict(sorted(mapping.items()))


def _finish(doc: dict[str, Any]) -> dict[str, Any]:
    # FastStream's order of channels and components depends on what else the process has generated before;
    # sorted, the document is the same bytes wherever it is made.
    for section in ("servers", "channels", "operations"):
        if section in doc:
            doc[section] = _sorted(doc[section])
    for section in ("messages", "schemas", "securitySchemes"):
        if section in doc.get("components", {}):
            doc["components"][section] = _sorted(doc["components"][section])
    doc["defaultContentType"] = "application/x-protobuf"
    for channel in doc.get("channels", {}).values():
        if "{hospital_id}" in channel.get("address", ""):
            channel["parameters"] = {
                "hospital_id": {"description": "The hospital's id, as in its data key ids (<hospital_id>/<n>)."}
            }
    for name, message in doc.get("components", {}).get("messages", {}).items():
        address = name.split(":", 1)[0]
        key = _KEYS.get(address)
        if key is not None:
            message["bindings"] = {"kafka": {"key": {"type": "string", "description": key}, "bindingVersion": "0.5.0"}}
        if address in ("hospital.{hospital_id}.events.v1", "audit.v1"):
            message.pop("correlationId", None)  # kiosks and gateways set no headers
            message["headers"] = {
                "type": "object",
                "description": "None are set: everything a consumer needs is in the signed envelope.",
                "properties": {},
            }
        elif address == "dlq.v1":
            message["headers"] = {
                "type": "object",
                "description": "FastStream publishers add these; other workers may not. Do not rely on them.",
                "properties": {"correlation_id": {"type": "string"}, "content-type": {"type": "string"}},
            }
    return doc


def generate() -> dict[str, Any]:
    """The document as a JSON-ready dict."""
    from faststream.specification import AsyncAPI

    import medkiosk

    spec = AsyncAPI(
        *_apps(),
        title="medkiosk: hospital and auditor topics",
        version=medkiosk.__version__,
        description="The topics a hospital system or an auditor consumes. Every record on an envelope topic is a "
        "binary protobuf schemas.v1.MedicalRecord: verify its ECDSA signature, its per (producer, stream) "
        "sequence and hash chain, then (hospitals) decrypt with the hospital's AES-256-GCM data key; refuse "
        "anything that fails to dlq.v1. The rules are specified in docs/ENVELOPE.md; the schemas are the "
        ".proto files in schemas/v1.",
    ).to_specification()
    return _finish(spec.to_jsonable())


class _Doc:
    """The finished document in the shape FastStream's page renderer takes (its ``Specification`` protocol)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.title = doc["info"]["title"]
        self._doc = doc

    def to_json(self) -> str:
        return json.dumps(self._doc, sort_keys=False)

    def to_jsonable(self) -> Any:
        return self._doc

    def to_yaml(self) -> str:
        return json.dumps(self._doc, indent=2)  # JSON is YAML 1.2; the page never asks for it


#: The AsyncAPI React viewer, vendored beside the page (``docs/asyncapi/vendor``) so it renders offline.
VIEWER = "vendor/asyncapi-react-component-3.1.5"


def render_html(doc: dict[str, Any]) -> str:
    """FastStream's HTML page for the document, pointed at the vendored AsyncAPI React viewer (which parses and
    validates the document in the browser) instead of its CDN."""
    from faststream.specification.asyncapi.site import get_asyncapi_html

    page: str = get_asyncapi_html(
        _Doc(doc),
        try_it_out_path=None,
        asyncapi_js_url=f"{VIEWER}/index.js",
        asyncapi_css_url=f"{VIEWER}/default.min.css",
    )
    # The viewer's bundle is UTF-8 and the page declares no charset; without this the browser misreads it.
    return page.replace("<head>", '<head>\n        <meta charset="utf-8">', 1)


def write(folder: Path) -> list[Path]:
    """Write ``asyncapi.json`` and ``index.html`` into ``folder``."""
    doc = generate()
    folder.mkdir(parents=True, exist_ok=True)
    spec, page = folder / "asyncapi.json", folder / "index.html"
    spec.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    page.write_text(render_html(doc) + "\n", encoding="utf-8")
    return [spec, page]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="regenerate the AsyncAPI document of the hospital/auditor topics")
    parser.add_argument("--write", type=Path, default=Path("docs/asyncapi"), help="output folder")
    args = parser.parse_args(argv)
    for path in write(args.write):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
