"""Create or update SCRAM-SHA-512 users on a running cluster (AlterUserScramCredentials, KIP-554).

The local secured broker gets its users at format time; a cluster that already runs (compose's Kafka,
a production cluster) gets them from its admin through this request, so ``medkiosk acls apply
--create-users`` provisions users and ACLs in one step. The password never travels: the client sends a
random salt and PBKDF2-HMAC-SHA512(password, salt, iterations), as RFC 5802 defines SaltedPassword.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Mapping
from typing import Any

from streams._settings import BusSettings

__all__ = ["SCRAM_ITERATIONS", "ScramUserError", "salted_password", "upsert_scram_users", "wait_until_authenticated"]

#: Kafka's minimum for SCRAM-SHA-512 is 4096; more costs every login that much more.
SCRAM_ITERATIONS = 8192
_SCRAM_SHA_512 = 2
_API_KEY = 51


class ScramUserError(RuntimeError):
    """The cluster refused to create or update some SCRAM users (the message says which and why)."""


def salted_password(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> bytes:
    """RFC 5802 ``Hi(Normalize(password), salt, i)`` with HMAC-SHA-512 (passwords here are ASCII)."""
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)


def _request(upsertions: list[tuple[str, int, int, bytes, bytes, dict[int, bytes]]]) -> Any:
    from aiokafka.protocol.api import Request, RequestStruct, Response
    from aiokafka.protocol.types import (
        CompactArray,
        CompactBytes,
        CompactString,
        Int8,
        Int16,
        Int32,
        Schema,
        TaggedFields,
    )

    class AlterUserScramCredentialsResponse_v0(Response):  # type: ignore[misc]
        API_KEY = _API_KEY
        API_VERSION = 0
        SCHEMA = Schema(
            ("throttle_time_ms", Int32),
            (
                "results",
                CompactArray(
                    ("user", CompactString("utf-8")),
                    ("error_code", Int16),
                    ("error_message", CompactString("utf-8")),
                    ("tags", TaggedFields),
                ),
            ),
            ("tags", TaggedFields),
        )

    class AlterUserScramCredentialsRequest_v0(RequestStruct):  # type: ignore[misc]
        FLEXIBLE_VERSION = True
        API_KEY = _API_KEY
        API_VERSION = 0
        RESPONSE_TYPE = AlterUserScramCredentialsResponse_v0
        SCHEMA = Schema(
            ("deletions", CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields))),
            (
                "upsertions",
                CompactArray(
                    ("name", CompactString("utf-8")),
                    ("mechanism", Int8),
                    ("iterations", Int32),
                    ("salt", CompactBytes),
                    ("salted_password", CompactBytes),
                    ("tags", TaggedFields),
                ),
            ),
            ("tags", TaggedFields),
        )

    class AlterUserScramCredentialsRequest(Request[AlterUserScramCredentialsRequest_v0]):  # type: ignore[misc]
        API_KEY = _API_KEY

        def build(self, request_struct_class: Any) -> Any:
            return request_struct_class([], upsertions, {})

    return AlterUserScramCredentialsRequest()


async def upsert_scram_users(
    settings: BusSettings, users: Mapping[str, str], *, iterations: int = SCRAM_ITERATIONS
) -> int:
    """Set every user's SCRAM-SHA-512 password (creating the user when new) as the settings' principal,
    which must be a super user (or hold ALTER on the cluster). Safe to repeat: the same password again is
    only a new salt. Returns how many users were set."""
    from aiokafka.admin import AIOKafkaAdminClient

    if not users:
        return 0
    upsertions: list[tuple[str, int, int, bytes, bytes, dict[int, bytes]]] = []
    for name, password in sorted(users.items()):
        salt = secrets.token_bytes(32)
        upsertions.append((name, _SCRAM_SHA_512, iterations, salt, salted_password(password, salt, iterations), {}))
    admin = AIOKafkaAdminClient(**settings.kafka_kwargs(), client_id=f"{settings.client_id}-scram")
    await asyncio.wait_for(admin.start(), timeout=30)
    try:
        response = await admin._send_request(_request(upsertions))
    finally:
        await admin.close()
    failures = [f"{user}: error {code} {message}" for user, code, message, _ in response.results if code != 0]
    if failures:
        raise ScramUserError("the cluster refused SCRAM users:\n" + "\n".join(failures))
    return len(upsertions)


async def wait_until_authenticated(settings: BusSettings, *, timeout_s: float, retry_s: float = 2.0) -> bool:
    """Log in with *settings* and read the cluster's metadata, again every *retry_s* until it works or
    *timeout_s* passes. ``acls apply --create-users`` creates users only after every ACL, so a principal
    that can log in has its ACLs: a pod's init container waits on this instead of crash-looping."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(**settings.kafka_kwargs(), client_id=f"{settings.client_id}-wait")
        try:
            await asyncio.wait_for(admin.start(), timeout=max(1.0, min(30.0, deadline - loop.time())))
            await asyncio.wait_for(admin.describe_cluster(), timeout=30)
            return True
        except (KafkaError, OSError, TimeoutError):
            pass
        finally:
            await admin.close()
        if loop.time() + retry_s > deadline:
            return False
        await asyncio.sleep(retry_s)
