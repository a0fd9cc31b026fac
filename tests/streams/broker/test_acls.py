"""Hospital isolation enforced by the broker: a secured Apache Kafka (SASL/SCRAM-SHA-512, StandardAuthorizer,
no ACL means no access) with the ACLs ``medkiosk acls`` generates from the catalog and the key registry.
Each refusal is the broker's authorization error, and each allowed path works."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
from pydantic import SecretStr

from streams import (
    CONTROL_SCALING,
    FL_AGGREGATES,
    FL_SUMS,
    FL_UPDATES,
    KIOSK_IDENTITY,
    KIOSK_TELEMETRY,
    BusSettings,
    Keyring,
    apply_topics,
    hospital_topic,
    make_transactional_producer,
    topics_for,
)
from streams.broker import (
    AclPlan,
    KafkaBroker,
    KafkaBrokerConfig,
    KafkaSecurity,
    plan_acls,
    principals_from_keyring,
)
from streams.broker._acl_apply import apply_acls, describe_acls

pytestmark = pytest.mark.broker


@pytest.fixture(autouse=True, scope="module")
def _kafka_selected(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--broker-engine") == "tansu":
        pytest.skip("--broker-engine tansu: Apache Kafka tests not selected")


REPO_ROOT = Path(__file__).resolve().parents[3]


class Secured:
    def __init__(self, broker: KafkaBroker, security: KafkaSecurity, plan: AclPlan) -> None:
        self.broker = broker
        self.security = security
        self.plan = plan

    def settings(self, user: str, password: str | None = None) -> BusSettings:
        if password is None:
            password = self.security.all_users()[user]
        return BusSettings(
            bootstrap_servers=self.broker.bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username=user,
            sasl_password=SecretStr(password),
            request_timeout_ms=5000,
        )


@pytest.fixture(scope="module")
def secured(keyring: Keyring, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    principals = principals_from_keyring(keyring, gateways=["gateway-1"])
    users = {name: f"pw-{name}" for name in principals.all_users()}
    security = KafkaSecurity(users=users, admin_password="admin-secret")
    broker = KafkaBroker(KafkaBrokerConfig(state_dir=tmp_path_factory.mktemp("kafka-secured"), security=security))
    broker.start()
    try:
        node = Secured(broker, security, plan_acls(principals))
        admin = node.settings("admin")
        # One partition per topic keeps the readers below simple.
        topics = topics_for(list(principals.hospitals))
        asyncio.run(apply_topics(admin.model_copy(update={"topic_partitions": 1}), topics))
        asyncio.run(apply_acls(admin, node.plan))
        yield node
    finally:
        broker.stop()


async def produce(settings: BusSettings, topic: str, value: bytes = b"v") -> None:
    producer = AIOKafkaProducer(**settings.kafka_kwargs(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, value, key=b"k"), timeout=20)
    finally:
        await producer.stop()


async def read(settings: BusSettings, topic: str, *, group: str | None = None, want: int = 1) -> list[bytes]:
    consumer = AIOKafkaConsumer(**settings.consumer_kwargs(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        got: list[bytes] = []
        for _ in range(40):
            batch = await consumer.getmany(tp, timeout_ms=250)
            got += [r.value for r in batch.get(tp, [])]
            if len(got) >= want:
                break
            # No DESCRIBE either: the broker answered the client's Metadata request for the topic with
            # TOPIC_AUTHORIZATION_FAILED (aiokafka records it and never fetches); surface that answer.
            if topic in consumer._client.cluster.unauthorized_topics:
                raise TopicAuthorizationFailedError(topic)
        if group is not None:
            await consumer.commit()
        return got
    finally:
        await consumer.stop()


def test_plan_covers_every_role(secured: Secured) -> None:
    users = {a.principal for a in secured.plan.acls}
    assert {"User:k1", "User:gateway-1", "User:hospital-H1", "User:hospital-H2", "User:auditor"} <= users
    assert {"User:fl-coordinator", "User:fl-aggregator", "User:fl-keyholder", "User:fl-client-H1"} <= users
    # No rule names another hospital's topic for a hospital, nor any hospital topic for reading by the gateway.
    h1_topics = {a.name for a in secured.plan.for_principal("hospital-H1") if a.resource_type.name == "TOPIC"}
    assert hospital_topic("H2") not in h1_topics
    gateway_reads = {a.name for a in secured.plan.for_principal("gateway-1") if a.operation.name == "READ"}
    assert not any(name.startswith("hospital.") for name in gateway_reads)


async def test_acls_are_on_the_broker(secured: Secured) -> None:
    on_broker = await describe_acls(secured.settings("admin"))
    assert set(secured.plan.acls) <= set(on_broker)


async def test_each_hospital_reads_only_its_own_topic(secured: Secured) -> None:
    gateway = secured.settings("gateway-1")
    await produce(gateway, hospital_topic("H1"), b"for-H1")
    await produce(gateway, hospital_topic("H2"), b"for-H2")

    h1 = secured.settings("hospital-H1")
    assert await read(h1, hospital_topic("H1"), group="hospital-H1") == [b"for-H1"]
    with pytest.raises(TopicAuthorizationFailedError):
        await read(h1, hospital_topic("H2"))
    h2 = secured.settings("hospital-H2")
    assert await read(h2, hospital_topic("H2"), group="hospital-H2") == [b"for-H2"]
    with pytest.raises(TopicAuthorizationFailedError):
        await read(h2, hospital_topic("H1"))
    # Nor may a hospital use another hospital's consumer group (or write its topic).
    with pytest.raises(GroupAuthorizationFailedError):
        await read(h1, hospital_topic("H1"), group="hospital-H2")
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(h1, hospital_topic("H2"))


async def test_gateway_routes_but_cannot_read_hospital_topics(secured: Secured) -> None:
    gateway = secured.settings("gateway-1")
    await produce(secured.settings("k1"), KIOSK_IDENTITY.name, b"from-k1")
    assert b"from-k1" in await read(gateway, KIOSK_IDENTITY.name, group="medkiosk-gateway")
    await produce(gateway, hospital_topic("H1"))
    with pytest.raises(TopicAuthorizationFailedError):
        await read(gateway, hospital_topic("H1"))


async def test_kiosk_writes_only_kiosk_topics(secured: Secured) -> None:
    kiosk = secured.settings("k1")
    await produce(kiosk, KIOSK_IDENTITY.name)
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(kiosk, hospital_topic("H1"))
    with pytest.raises(TopicAuthorizationFailedError):
        await read(kiosk, KIOSK_IDENTITY.name)


async def test_fl_roles(secured: Secured) -> None:
    await produce(secured.settings("fl-client-H1"), FL_UPDATES.name, b"update")
    aggregator = secured.settings("fl-aggregator")
    assert await read(aggregator, FL_UPDATES.name) == [b"update"]
    await produce(aggregator, FL_SUMS.name)
    await produce(secured.settings("fl-keyholder"), FL_AGGREGATES.name, b"sum")
    # The aggregator adds ciphertexts; the decrypted aggregates are not for it.
    with pytest.raises(TopicAuthorizationFailedError):
        await read(aggregator, FL_AGGREGATES.name)
    assert await read(secured.settings("fl-coordinator"), FL_AGGREGATES.name) == [b"sum"]
    with pytest.raises(TopicAuthorizationFailedError):
        await read(secured.settings("fl-client-H1"), FL_UPDATES.name)


async def test_transactional_gateway_and_autoscaler(secured: Secured) -> None:
    gateway = secured.settings("gateway-1").model_copy(update={"enable_idempotence": True})
    producer = make_transactional_producer(gateway, "medkiosk-gateway-1")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(hospital_topic("H1"), b"in-a-transaction", key=b"k1")
    finally:
        await producer.stop()
    # Another principal may not take over the gateway's transactional id.
    thief = make_transactional_producer(secured.settings("hospital-H1"), "medkiosk-gateway-1")
    with pytest.raises(TransactionalIdAuthorizationFailed):
        await thief.start()
    await thief.stop()
    scaler = secured.settings("autoscaler-1")
    await produce(secured.settings("k2"), KIOSK_TELEMETRY.name, b"load")
    assert b"load" in await read(scaler, KIOSK_TELEMETRY.name, group="medkiosk-autoscaler")
    await produce(scaler, CONTROL_SCALING.name)
    with pytest.raises(TopicAuthorizationFailedError):
        await read(scaler, KIOSK_IDENTITY.name)


async def test_kiosk_agent_group_and_no_prefix_spill(secured: Secured) -> None:
    kiosk = secured.settings("k1")
    await produce(secured.settings("autoscaler-1"), CONTROL_SCALING.name, b"scale")
    assert b"scale" in await read(kiosk, CONTROL_SCALING.name, group="kiosk-k1")
    with pytest.raises(GroupAuthorizationFailedError):
        await read(kiosk, CONTROL_SCALING.name, group="kiosk-k2")
    # hospital-H1's groups do not extend to a hospital "H10" by prefix.
    with pytest.raises(GroupAuthorizationFailedError):
        await read(secured.settings("hospital-H1"), hospital_topic("H1"), group="hospital-H10")


async def test_wrong_password_and_unknown_user_are_refused(secured: Secured) -> None:
    for settings in (secured.settings("hospital-H1", "wrong"), secured.settings("nobody", "x")):
        with pytest.raises(KafkaError):
            await read(settings, hospital_topic("H1"))


async def test_plaintext_client_is_refused(secured: Secured) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=secured.broker.bootstrap, request_timeout_ms=3000)
    with pytest.raises((KafkaConnectionError, KafkaError)):
        await asyncio.wait_for(consumer.start(), timeout=10)
    await consumer.stop()


def test_cli_plan_json(keys_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "medkiosk", "acls", "plan", "--json", "--keys-dir", str(keys_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert "hospital-H1" in plan["users"] and "k1" in plan["users"]
    reads = {(a["principal"], a["name"]) for a in plan["acls"] if a["operation"] == "READ"}
    assert ("User:hospital-H1", "hospital.H1.events.v1") in reads
    assert ("User:hospital-H1", "hospital.H2.events.v1") not in reads


async def test_scram_users_made_on_a_running_cluster_log_in(secured: Secured) -> None:
    """`acls apply --create-users`' request (AlterUserScramCredentials) on a running cluster: a new user logs in
    at once with its password and only with it; setting it again (a new salt) keeps it working."""
    from streams.broker._scram import ScramUserError, upsert_scram_users, wait_until_authenticated

    admin = secured.settings("admin")
    assert await upsert_scram_users(admin, {"late-kiosk": "pw-late"}) == 1
    assert await wait_until_authenticated(secured.settings("late-kiosk", "pw-late"), timeout_s=20, retry_s=0.2)
    assert not await wait_until_authenticated(secured.settings("late-kiosk", "wrong"), timeout_s=1, retry_s=0.2)
    assert await upsert_scram_users(admin, {"late-kiosk": "pw-late"}) == 1
    assert await wait_until_authenticated(secured.settings("late-kiosk", "pw-late"), timeout_s=20, retry_s=0.2)
    # Only a super user may create users: the broker's refusal names the missing ALTER right.
    with pytest.raises(ScramUserError, match="ALTER"):
        await upsert_scram_users(secured.settings("k1"), {"k1-friend": "x"})


def test_gateway_pool_and_keda_principals(keyring: Keyring) -> None:
    """A StatefulSet's replicas share one principal whose transactional ids and groups are its ids' prefix;
    KEDA's principal describes the gateways' group and input topics and reads nothing."""
    principals = principals_from_keyring(keyring, gateway_pools=["medkiosk-gateway"])
    assert "medkiosk-gateway" in principals.all_users() and "keda" in principals.all_users()
    plan = plan_acls(principals)
    pool = {
        (a.resource_type.name, a.name, a.pattern.name, a.operation.name) for a in plan.for_principal("medkiosk-gateway")
    }
    single = {(a.resource_type.name, a.name, a.pattern.name, a.operation.name) for a in plan.for_principal("gateway-1")}
    assert ("TRANSACTIONAL_ID", "medkiosk-medkiosk-gateway-", "PREFIXED", "WRITE") in pool
    assert ("GROUP", "medkiosk-gateway-", "PREFIXED", "READ") in pool
    # Apart from its own ids, the pool has exactly a single gateway's rights.
    own = {"TRANSACTIONAL_ID", "GROUP"}
    assert {r for r in pool if r[0] not in own} == {r for r in single if r[0] not in own}
    assert {r for r in pool if r[1] == "medkiosk-gateway" and r[0] == "GROUP"} == {
        r for r in single if r[1] == "medkiosk-gateway" and r[0] == "GROUP"
    }
    keda = plan.for_principal("keda")
    assert keda and {a.operation.name for a in keda} == {"DESCRIBE"}
    assert {(a.resource_type.name, a.name) for a in keda} == {
        ("GROUP", "medkiosk-gateway"),
        ("TOPIC", KIOSK_IDENTITY.name),
        ("TOPIC", "kiosk.inference.v1"),
    }


async def test_keda_reads_the_gateways_lag_and_nothing_else(secured: Secured) -> None:
    """What KEDA's Kafka scaler asks (committed offsets of group medkiosk-gateway, end offsets) works as `keda`;
    fetching a record does not."""
    from aiokafka.admin import AIOKafkaAdminClient

    await produce(secured.settings("k1"), KIOSK_IDENTITY.name, b"lag")
    assert b"lag" in await read(secured.settings("gateway-1"), KIOSK_IDENTITY.name, group="medkiosk-gateway")
    keda = secured.settings("keda")
    admin = AIOKafkaAdminClient(**keda.kafka_kwargs())
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets("medkiosk-gateway")
        assert offsets[TopicPartition(KIOSK_IDENTITY.name, 0)].offset >= 1
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(**keda.consumer_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(KIOSK_IDENTITY.name, 0)
        end = await consumer.end_offsets([tp])
        assert end[tp] >= 1
    finally:
        await consumer.stop()
    with pytest.raises(TopicAuthorizationFailedError):
        await read(keda, KIOSK_IDENTITY.name)
