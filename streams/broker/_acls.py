"""Broker-side isolation: Kafka ACLs generated from the topic catalog and the key registry.

One SCRAM principal per role instance; each gets exactly the topic operations its role needs, nothing by
wildcard. The broker runs ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``, so whatever
is not listed here is refused at the broker, whatever keys a client holds.

The same plan applies to a production cluster: ``medkiosk acls apply`` sends CreateAcls as the cluster's
admin (``MEDKIOSK_SASL_*``); creating an ACL that exists is a no-op, so re-applying is safe.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from streams._catalog import (
    AUDIT,
    CONTROL_SCALING,
    DLQ,
    FL_AGGREGATES,
    FL_MODELS,
    FL_ROUNDS,
    FL_SUMS,
    FL_UPDATES,
    GATEWAY_CHAINS,
    KIOSK_IDENTITY,
    KIOSK_INFERENCE,
    KIOSK_TELEMETRY,
    REGISTRY,
    hospital_topic,
)
from streams._keys import Keyring

__all__ = [
    "Acl",
    "AclPlan",
    "Operation",
    "PatternType",
    "Principals",
    "ResourceType",
    "plan_acls",
    "principals_from_keyring",
]


class ResourceType(enum.IntEnum):
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5


class PatternType(enum.IntEnum):
    LITERAL = 3
    PREFIXED = 4


class Operation(enum.IntEnum):
    READ = 3
    WRITE = 4
    DESCRIBE = 8
    IDEMPOTENT_WRITE = 12


_ALLOW = 3


@dataclass(frozen=True, order=True, kw_only=True)
class Acl:
    """One ALLOW rule: *principal* may do *operation* on the resource(s) *name* (literal or prefix)."""

    principal: str
    resource_type: ResourceType
    name: str
    pattern: PatternType
    operation: Operation
    host: str = "*"

    def to_json(self) -> dict[str, str]:
        raw = asdict(self)
        return {
            **raw,
            "resource_type": self.resource_type.name,
            "pattern": self.pattern.name,
            "operation": self.operation.name,
        }


@dataclass(frozen=True, kw_only=True)
class Principals:
    """Who exists: SCRAM user names per role (the key registry decides kiosks and hospitals)."""

    kiosks: tuple[str, ...]
    hospitals: tuple[str, ...]
    gateways: tuple[str, ...] = ("gateway-1",)
    auditors: tuple[str, ...] = ("auditor",)
    fl_coordinator: str = "fl-coordinator"
    fl_aggregators: tuple[str, ...] = ("fl-aggregator",)
    fl_keyholder: str = "fl-keyholder"
    autoscalers: tuple[str, ...] = ("autoscaler-1",)
    #: Processes that only read the registry (``medkiosk discover serve`` / ``list``).
    registry_readers: tuple[str, ...] = ("registry",)
    #: Lag readers (KEDA's Kafka scaler): describe the gateways' group and input topics, read nothing.
    lag_readers: tuple[str, ...] = ("keda",)
    #: One principal for a whole gateway StatefulSet: pool ``P`` stands for the replicas ``P-0``, ``P-1``, ...
    #: (their gateway ids), with their transactional ids and groups matched by the prefix ``P-``.
    gateway_pools: tuple[str, ...] = ()

    @staticmethod
    def hospital_user(hospital: str) -> str:
        return f"hospital-{hospital}"

    @staticmethod
    def fl_client_user(hospital: str) -> str:
        return f"fl-client-{hospital}"

    def all_users(self) -> list[str]:
        users = [*self.kiosks, *self.gateways, *self.auditors, self.fl_coordinator, *self.fl_aggregators]
        users += [self.fl_keyholder, *self.autoscalers, *self.registry_readers, *self.lag_readers]
        users += list(self.gateway_pools)
        users += [self.hospital_user(h) for h in self.hospitals]
        users += [self.fl_client_user(h) for h in self.hospitals]
        return sorted(set(users))


def principals_from_keyring(
    keyring: Keyring, *, gateways: Iterable[str] | None = None, gateway_pools: Iterable[str] = ()
) -> Principals:
    """Kiosks are the registry's producers with role ``kiosk``; hospitals are those with data keys (or a
    kiosk); gateways are services named ``gateway-*`` (or *gateways*). A gateway pool (a StatefulSet's
    name, ``medkiosk-gateway``) is one principal for all its replicas ``<pool>-<ordinal>``."""
    kiosks = sorted(p.producer_id for p in keyring.producers.values() if p.role == "kiosk")
    hospitals = {k.split("/", 1)[0] for k in keyring.data_key_ids}
    hospitals |= {p.hospital_id for p in keyring.producers.values() if p.role == "kiosk" and p.hospital_id}
    pools = tuple(sorted(set(gateway_pools)))
    found_gateways = sorted(p for p in keyring.producers if p.startswith("gateway"))
    if gateways is not None:
        chosen = tuple(gateways)
    elif pools:
        chosen = tuple(found_gateways)
    else:
        chosen = tuple(found_gateways or ["gateway-1"])
    return Principals(kiosks=tuple(kiosks), hospitals=tuple(sorted(hospitals)), gateways=chosen, gateway_pools=pools)


class AclPlan:
    """The ACLs for a set of principals, built rule by rule (see :func:`plan_acls`)."""

    def __init__(self) -> None:
        self._acls: set[Acl] = set()

    def allow(
        self,
        principal: str,
        operations: Iterable[Operation],
        resource: ResourceType,
        name: str,
        pattern: PatternType = PatternType.LITERAL,
    ) -> None:
        for op in operations:
            self._acls.add(
                Acl(principal=f"User:{principal}", resource_type=resource, name=name, pattern=pattern, operation=op)
            )

    def topics(
        self, principal: str, op: Operation, names: Iterable[str], pattern: PatternType = PatternType.LITERAL
    ) -> None:
        for name in names:
            self.allow(principal, [op, Operation.DESCRIBE], ResourceType.TOPIC, name, pattern)

    def group(self, principal: str, name: str, pattern: PatternType = PatternType.LITERAL) -> None:
        self.allow(principal, [Operation.READ, Operation.DESCRIBE], ResourceType.GROUP, name, pattern)

    def producer(self, principal: str) -> None:
        # Implied by WRITE on a topic since Kafka 3.0; listed for older clusters.
        self.allow(principal, [Operation.IDEMPOTENT_WRITE], ResourceType.CLUSTER, "kafka-cluster")

    @property
    def acls(self) -> list[Acl]:
        return sorted(self._acls)

    def for_principal(self, user: str) -> list[Acl]:
        return [a for a in self.acls if a.principal == f"User:{user}"]


_KIOSK_TOPICS = (KIOSK_IDENTITY.name, KIOSK_INFERENCE.name, KIOSK_TELEMETRY.name)
_PREFIXED = PatternType.PREFIXED


def _gateway(plan: AclPlan, p: Principals, user: str, own: str, pattern: PatternType) -> None:
    """The gateway role for *user*; *own* (literal, or a prefix with *pattern* PREFIXED) names its gateway
    id(s), which its transactional ids and private groups are derived from."""
    plan.producer(user)
    plan.topics(user, Operation.READ, [KIOSK_IDENTITY.name, KIOSK_INFERENCE.name, GATEWAY_CHAINS.name])
    plan.topics(user, Operation.WRITE, [hospital_topic(h) for h in p.hospitals])
    plan.topics(user, Operation.WRITE, [AUDIT.name, DLQ.name, REGISTRY.name, GATEWAY_CHAINS.name])
    plan.group(user, "medkiosk-gateway")
    if pattern is PatternType.LITERAL:
        plan.group(user, f"{own}.", _PREFIXED)
    else:
        plan.group(user, own, _PREFIXED)
    # The transactional gateway's producer (cloud_workers.gateway: transactional_id "medkiosk-<gateway id>").
    plan.allow(user, [Operation.WRITE, Operation.DESCRIBE], ResourceType.TRANSACTIONAL_ID, f"medkiosk-{own}", pattern)


def plan_acls(p: Principals) -> AclPlan:
    """Every role's ALLOW rules. FL topics are matched by prefix (runs may suffix them, ``FlTopics.suffixed``);
    hospital topics never are (``hospital.H1`` must not match ``hospital.H10``)."""
    plan = AclPlan()
    for kiosk in p.kiosks:
        plan.producer(kiosk)
        plan.topics(kiosk, Operation.WRITE, [*_KIOSK_TOPICS, REGISTRY.name, DLQ.name])
        plan.topics(kiosk, Operation.READ, [CONTROL_SCALING.name])
        plan.group(kiosk, f"kiosk-{kiosk}")  # the agent's command consumer
        plan.group(kiosk, f"kiosk-{kiosk}.", _PREFIXED)
    for gateway in p.gateways:
        _gateway(plan, p, gateway, gateway, PatternType.LITERAL)
    for pool in p.gateway_pools:
        # Replicas of one StatefulSet share one pod template, so they can only share one credential (as
        # they share the signing keys of every ordinal): one principal, its ids matched by "<pool>-".
        _gateway(plan, p, pool, f"{pool}-", _PREFIXED)
    for hospital in p.hospitals:
        user = p.hospital_user(hospital)
        plan.producer(user)
        plan.topics(user, Operation.READ, [hospital_topic(hospital)])
        plan.topics(user, Operation.WRITE, [DLQ.name, REGISTRY.name])
        # Literal, plus "hospital-H1." for extra readers (FHIR): a bare prefix would also match hospital-H10.
        plan.group(user, f"hospital-{hospital}")
        plan.group(user, f"hospital-{hospital}.", _PREFIXED)
        client = p.fl_client_user(hospital)
        plan.producer(client)
        plan.topics(client, Operation.READ, [FL_ROUNDS.name, FL_MODELS.name], _PREFIXED)
        plan.topics(client, Operation.WRITE, [FL_UPDATES.name], _PREFIXED)
        plan.group(client, f"{client}.", _PREFIXED)
        plan.group(client, client)
    for auditor in p.auditors:
        plan.topics(auditor, Operation.READ, [AUDIT.name, *_KIOSK_TOPICS, DLQ.name])
        plan.group(auditor, "medkiosk-auditor")
        plan.group(auditor, f"{auditor}.", _PREFIXED)
    for scaler in p.autoscalers:
        plan.producer(scaler)
        plan.topics(scaler, Operation.READ, [KIOSK_TELEMETRY.name])
        plan.topics(scaler, Operation.WRITE, [CONTROL_SCALING.name, DLQ.name, REGISTRY.name])
        plan.group(scaler, "medkiosk-autoscaler")
        # Consumer lag of the gateways' group (a scaling signal): describe it, never join it.
        plan.allow(scaler, [Operation.DESCRIBE], ResourceType.GROUP, "medkiosk-gateway")
        for name in (KIOSK_IDENTITY.name, KIOSK_INFERENCE.name):
            plan.allow(scaler, [Operation.DESCRIBE], ResourceType.TOPIC, name)
    for reader in p.lag_readers:
        # Lag = the group's committed offsets (OffsetFetch: DESCRIBE group and topic) against the topics'
        # end offsets (ListOffsets: DESCRIBE topic). No READ anywhere: it never fetches a record.
        plan.allow(reader, [Operation.DESCRIBE], ResourceType.GROUP, "medkiosk-gateway")
        for name in (KIOSK_IDENTITY.name, KIOSK_INFERENCE.name):
            plan.allow(reader, [Operation.DESCRIBE], ResourceType.TOPIC, name)
    for reader in p.registry_readers:
        plan.topics(reader, Operation.READ, [REGISTRY.name])
        plan.group(reader, f"{reader}.", _PREFIXED)
    coordinator = p.fl_coordinator
    plan.producer(coordinator)
    plan.topics(coordinator, Operation.WRITE, [FL_ROUNDS.name, FL_MODELS.name], _PREFIXED)
    plan.topics(coordinator, Operation.READ, [FL_ROUNDS.name, FL_SUMS.name, FL_AGGREGATES.name], _PREFIXED)
    plan.group(coordinator, coordinator)
    plan.group(coordinator, f"{coordinator}.", _PREFIXED)
    for aggregator in p.fl_aggregators:
        # Never fl.aggregates: the aggregator adds ciphertexts and must not see decrypted sums.
        plan.producer(aggregator)
        plan.topics(aggregator, Operation.READ, [FL_ROUNDS.name, FL_UPDATES.name], _PREFIXED)
        plan.topics(aggregator, Operation.WRITE, [FL_SUMS.name], _PREFIXED)
        plan.group(aggregator, aggregator)
        plan.group(aggregator, f"{aggregator}.", _PREFIXED)
    keyholder = p.fl_keyholder
    plan.producer(keyholder)
    plan.topics(keyholder, Operation.READ, [FL_ROUNDS.name, FL_SUMS.name], _PREFIXED)
    plan.topics(keyholder, Operation.WRITE, [FL_AGGREGATES.name], _PREFIXED)
    plan.group(keyholder, keyholder)
    plan.group(keyholder, f"{keyholder}.", _PREFIXED)
    return plan
