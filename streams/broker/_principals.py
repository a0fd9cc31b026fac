"""The SCRAM users file of the secured local Kafka: ``{"admin": {name: password}, "users": {name: password}}``."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from streams.broker._kafka import KafkaSecurity

__all__ = ["load_security", "write_users_file"]


def load_security(path: Path) -> KafkaSecurity:
    """Read a users file written by :func:`write_users_file` (or by hand)."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError("the users file must hold a JSON object")
    admin = data.get("admin")
    users = data.get("users", {})
    if not isinstance(admin, dict) or len(admin) != 1 or not isinstance(users, dict):
        raise ValueError('expected {"admin": {name: password}, "users": {name: password, ...}}')
    ((admin_user, admin_password),) = admin.items()
    return KafkaSecurity(
        users={str(k): str(v) for k, v in users.items()}, admin_user=str(admin_user), admin_password=str(admin_password)
    )


def write_users_file(path: Path, principals: Iterable[str], *, admin_user: str = "admin") -> KafkaSecurity:
    """Give every principal (and the admin) a fresh random password, keeping those already in *path*.

    The file is created 0600: it holds every role's broker credentials.
    """
    known: dict[str, str] = {}
    admin_password = secrets.token_urlsafe(18)
    if path.exists():
        old = load_security(path)
        known = dict(old.users)
        if old.admin_user == admin_user:
            admin_password = old.admin_password
    users = {name: known.get(name) or secrets.token_urlsafe(18) for name in sorted(set(principals))}
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"admin": {admin_user: admin_password}, "users": users}, indent=2) + "\n"
    fd = os.open(path.with_name(path.name + ".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(body)
    os.replace(path.with_name(path.name + ".tmp"), path)
    return KafkaSecurity(users=users, admin_user=admin_user, admin_password=admin_password)
