"""JSON Schema of a protobuf message (its proto3 JSON mapping), for the AsyncAPI document.

The wire format is binary protobuf; the schema names every field with its proto name, type and field number
(``x-proto-field``), so a client can check its generated code against the document."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

__all__ = ["message_schema"]

_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "uint32", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "uint32", "minimum": 0},
    FieldDescriptor.TYPE_INT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "integer", "format": "uint64", "minimum": 0},
    FieldDescriptor.TYPE_FIXED64: {"type": "integer", "format": "uint64", "minimum": 0},
}


def _field_schema(field: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        _add(field.message_type, defs)
        item: dict[str, Any] = {"$ref": f"#/$defs/{field.message_type.full_name}"}
    elif field.type == FieldDescriptor.TYPE_ENUM:
        item = {"type": "string", "enum": [v.name for v in field.enum_type.values]}
    else:
        item = dict(_SCALARS[field.type])
    if field.is_repeated:
        item = {"type": "array", "items": item}
    return {**item, "x-proto-field": field.number}


def _add(descriptor: Any, defs: dict[str, Any], descriptions: dict[str, str] | None = None) -> dict[str, Any]:
    name = descriptor.full_name
    if name in defs:
        return dict(defs[name])
    defs[name] = {}  # placeholder: recursive messages terminate
    props = {}
    for field in descriptor.fields:
        schema = _field_schema(field, defs)
        if descriptions and field.name in descriptions:
            schema["description"] = descriptions[field.name]
        props[field.name] = schema
    defs[name] = {"title": name, "type": "object", "properties": props, "additionalProperties": False}
    return dict(defs[name])


def message_schema(
    message: type[Message],
    *,
    description: str = "",
    field_descriptions: dict[str, str] | None = None,
    extra_defs: tuple[type[Message], ...] = (),
) -> dict[str, Any]:
    """The JSON Schema of ``message`` with every nested message (and ``extra_defs``) under ``$defs``."""
    descriptor = message.DESCRIPTOR
    defs: dict[str, Any] = {}
    root = _add(descriptor, defs, field_descriptions)
    for extra in extra_defs:
        _add(extra.DESCRIPTOR, defs)
    defs.pop(descriptor.full_name, None)
    if description:
        root["description"] = description
    root["x-proto-message"] = descriptor.full_name
    if defs:
        root["$defs"] = dict(sorted(defs.items()))
    return root
