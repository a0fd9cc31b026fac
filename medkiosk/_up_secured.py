"""``medkiosk up --engine kafka --secured``: every role its own SCRAM principal, ACLs applied before it starts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from pydantic import SecretStr

from streams import BusSettings
from streams.broker import KafkaSecurity, Principals, plan_acls

__all__ = ["SecuredLaunch"]


@dataclass(kw_only=True)
class SecuredLaunch:
    """The principals of one ``up`` run, their random passwords, and the environment each process gets."""

    kiosks: list[str]
    hospitals: list[str]
    principals: Principals = field(init=False)
    security: KafkaSecurity = field(init=False)

    def __post_init__(self) -> None:
        self.principals = Principals(kiosks=tuple(self.kiosks), hospitals=tuple(self.hospitals))
        users = {name: secrets.token_urlsafe(12) for name in self.principals.all_users()}
        self.security = KafkaSecurity(users=users, admin_password=secrets.token_urlsafe(12))

    def user_for(self, process: str) -> str | None:
        """The principal a process of ``up`` runs as (``None``: it does not talk to Kafka)."""
        if process.startswith("subscriber-"):
            return Principals.hospital_user(process.removeprefix("subscriber-"))
        return process if process in self.security.users else None

    def env_for(self, process: str, env: dict[str, str]) -> dict[str, str]:
        user = self.user_for(process)
        if user is None:
            return env
        return {
            **env,
            "MEDKIOSK_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "MEDKIOSK_SASL_MECHANISM": "SCRAM-SHA-512",
            "MEDKIOSK_SASL_USERNAME": user,
            "MEDKIOSK_SASL_PASSWORD": self.security.users[user],
        }

    def admin(self, settings: BusSettings) -> BusSettings:
        """*settings* authenticated as the cluster admin (topics, ACLs)."""
        return settings.model_copy(
            update={
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": self.security.admin_user,
                "sasl_password": SecretStr(self.security.admin_password),
            }
        )

    def plan_size(self) -> int:
        return len(plan_acls(self.principals).acls)
