"""Send an :class:`~streams.broker.AclPlan` to a cluster (CreateAcls) and read back what it holds (DescribeAcls)."""

from __future__ import annotations

import asyncio
from typing import Any

from streams._settings import BusSettings
from streams.broker._acls import Acl, AclPlan, Operation, PatternType, ResourceType

__all__ = ["AclApplyError", "apply_acls", "describe_acls"]

_ALLOW = 3
_ANY = 1
_MATCH_ANY_PATTERN = 1


class AclApplyError(RuntimeError):
    """The broker refused to create some ACLs (the message lists them with the broker's reasons)."""


_BATCH = 200


def _batch_request(acls: list[Acl]) -> Any:
    """A CreateAcls request (v1+) carrying many creations; aiokafka's own wrapper sends one per request."""
    from aiokafka.protocol.admin import CreateAclsRequest

    class _CreateAclsBatch(CreateAclsRequest):  # type: ignore[misc]
        def __init__(self, creations: list[tuple[int, str, int, str, str, int, int]]) -> None:
            self._creations = creations

        def build(self, request_struct_class: Any) -> Any:
            if request_struct_class.API_VERSION < 1:
                raise ValueError("CreateAcls v0 has no pattern types; the broker is too old")
            return request_struct_class(self._creations)

    return _CreateAclsBatch(
        [(int(a.resource_type), a.name, int(a.pattern), a.principal, a.host, int(a.operation), _ALLOW) for a in acls]
    )


async def _admin(settings: BusSettings) -> Any:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**settings.kafka_kwargs(), client_id=f"{settings.client_id}-acls")
    await asyncio.wait_for(admin.start(), timeout=30)
    return admin


async def apply_acls(settings: BusSettings, plan: AclPlan, *, visible_timeout_s: float = 30.0) -> int:
    """Create every ACL of *plan* as the settings' principal (the cluster's admin); returns how many.

    Existing identical ACLs are left as they are, so this is safe to repeat. ACLs not in the plan are
    not deleted: an operator's extra grants survive (``describe_acls`` shows them).
    """
    admin = await _admin(settings)
    try:
        acls = plan.acls
        failures: list[str] = []
        # One request per batch: a broker serves one request per connection at a time, and each
        # CreateAcls is forwarded to the controller, so one request per ACL would take seconds.
        for start in range(0, len(acls), _BATCH):
            batch = acls[start : start + _BATCH]
            response = await admin._send_request(_batch_request(batch))
            failures += [
                f"{a.principal} {a.operation.name} {a.resource_type.name}:{a.name}: error {code} {message}"
                for a, (code, message) in zip(batch, response.creation_responses, strict=True)
                if code != 0
            ]
        if failures:
            raise AclApplyError("the broker refused ACLs:\n" + "\n".join(failures))
    finally:
        await admin.close()
    # CreateAcls answers once the controller has the records; brokers enforce them when their metadata
    # catches up (a moment later). Return only once the cluster shows every ACL.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + visible_timeout_s
    while not set(acls) <= set(await describe_acls(settings)):
        if loop.time() > deadline:
            raise AclApplyError(f"ACLs created but not visible after {visible_timeout_s:.0f}s")
        await asyncio.sleep(0.1)
    return len(acls)


async def describe_acls(settings: BusSettings) -> list[Acl]:
    """Every ALLOW ACL the cluster holds for the resource types the plan uses."""
    from aiokafka.protocol.admin import DescribeAclsRequest

    admin = await _admin(settings)
    try:
        response = await admin._send_request(
            DescribeAclsRequest(
                resource_type=_ANY,
                resource_name=None,
                resource_pattern_type_filter=_MATCH_ANY_PATTERN,
                principal=None,
                host=None,
                operation=_ANY,
                permission_type=_ANY,
            )
        )
        if response.error_code != 0:
            raise AclApplyError(f"DescribeAcls failed: {response.error_code} {response.error_message}")
        found: list[Acl] = []
        for rtype, name, pattern, entries in response.resources:
            for principal, host, operation, permission in entries:
                if permission != _ALLOW:
                    continue
                try:
                    found.append(
                        Acl(
                            principal=principal,
                            resource_type=ResourceType(rtype),
                            name=name,
                            pattern=PatternType(pattern),
                            operation=Operation(operation),
                            host=host,
                        )
                    )
                except ValueError:
                    continue  # a resource type or operation the plan never uses
        return sorted(found)
    finally:
        await admin.close()
