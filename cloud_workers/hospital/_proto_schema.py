"""JSON Schema of a protobuf message (its proto3 JSON mapping), for the AsyncAPI document.

The wire format is binary protobuf; the schema names every field with its proto name, type and field number
(``x-proto-field``), so a client can check its generated code against the document. Nested messages are
inlined (our messages are not recursive), so the schema stands alone wherever a generator places it."""

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


def _field_schema(field: Any, seen: tuple[str, ...]) -> dict[str, Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name in seen:
            raise ValueError(f"recursive message {field.message_type.full_name} cannot be inlined")
        item = _object(field.message_type, seen)
    elif field.type == FieldDescriptor.TYPE_ENUM:
        item = {"type": "string", "enum": [v.name for v in field.enum_type.values]}
    else:
        item = dict(_SCALARS[field.type])
    if field.is_repeated:
        item = {"type": "array", "items": item}
    return {**item, "x-proto-field": field.number}


def _object(descriptor: Any, seen: tuple[str, ...] = (), descriptions: dict[str, str] | None = None) -> dict[str, Any]:
    seen = (*seen, descriptor.full_name)
    props = {}
    for field in descriptor.fields:
        schema = _field_schema(field, seen)
        if descriptions and field.name in descriptions:
            schema["description"] = descriptions[field.name]
        props[field.name] = schema
    return {
        "title": descriptor.full_name,
        "type": "object",
        "properties": props,
        "additionalProperties": False,
        "x-proto-message": descriptor.full_name,
    }


def message_schema(
    message: type[Message],
    *,
    description: str = "",
    field_descriptions: dict[str, str] | None = None,
    decrypted: tuple[type[Message], ...] = (),
) -> dict[str, Any]:
    """The JSON Schema of ``message``; ``decrypted``: the messages its ``encrypted_data`` may carry, attached to
    that field as ``x-decrypted-payload`` (the schema of what decrypting and decoding it yields)."""
    root = _object(message.DESCRIPTOR, descriptions=field_descriptions)
    if description:
        root["description"] = description
    if decrypted:
        inner = [_object(m.DESCRIPTOR) for m in decrypted]
        root["properties"]["encrypted_data"]["x-decrypted-payload"] = inner[0] if len(inner) == 1 else {"oneOf": inner}
    return root
