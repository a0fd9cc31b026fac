"""Keys as files: device signing keys (ECDSA P-256), hospital data keys (AES-256), and a trust store.

Layout of a keys directory (every part is optional, so a role gets only what it needs)::

    registry.json                       producers: id -> {hospital_id, role}
    public/<producer_id>/v<N>.pem       signing public keys (everyone who verifies)
    signing/<producer_id>/v<N>.pem      signing private keys (that producer only)
    data/<hospital_id>/v<N>.key         AES-256 data keys, hex (that hospital's kiosks and subscribers)

``export_role`` copies a role's subset into its own directory: the gateway gets ``registry.json``,
``public/`` and its own signing key, never a data key.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "DataKey",
    "Keyring",
    "ProducerInfo",
    "SigningKey",
    "export_role",
    "init_dev_keys",
]

_VERSION_FILE = re.compile(r"^v(\d+)\.(pem|key)$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _check_id(kind: str, value: str) -> str:
    if not _SAFE_ID.match(value):
        raise ValueError(f"invalid {kind} {value!r}: use letters, digits, '.', '_' or '-' (max 64)")
    return value


@dataclass(frozen=True, slots=True)
class ProducerInfo:
    """A registered producer: the hospital it belongs to ("" for cloud services) and its role."""

    producer_id: str
    hospital_id: str
    role: str


@dataclass(frozen=True, slots=True)
class SigningKey:
    producer_id: str
    version: int
    private_key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class DataKey:
    hospital_id: str
    version: int
    key: bytes = field(repr=False)

    @property
    def key_id(self) -> str:
        return f"{self.hospital_id}/v{self.version}"


def _versions(folder: Path, suffix: str) -> dict[int, Path]:
    out: dict[int, Path] = {}
    if folder.is_dir():
        for path in folder.iterdir():
            m = _VERSION_FILE.match(path.name)
            if m and m.group(2) == suffix and not path.name.endswith(".pub.pem"):
                out[int(m.group(1))] = path
    return out


class Keyring:
    """Whatever key material one directory holds, loaded once."""

    def __init__(
        self,
        *,
        producers: dict[str, ProducerInfo],
        public_keys: dict[tuple[str, int], ec.EllipticCurvePublicKey],
        signing_keys: dict[str, SigningKey],
        data_keys: dict[str, DataKey],
    ) -> None:
        self.producers = producers
        self.public_keys = public_keys
        self._signing = signing_keys
        self._data = data_keys

    @classmethod
    def load(cls, root: Path) -> Keyring:
        """Load a keys directory; missing parts are simply absent."""
        producers: dict[str, ProducerInfo] = {}
        registry = root / "registry.json"
        if registry.exists():
            raw = json.loads(registry.read_text())
            for pid, info in raw.get("producers", {}).items():
                producers[pid] = ProducerInfo(pid, info.get("hospital_id", ""), info.get("role", ""))
        public_keys: dict[tuple[str, int], ec.EllipticCurvePublicKey] = {}
        for folder in sorted((root / "public").glob("*")):
            for version, path in _versions(folder, "pem").items():
                key = serialization.load_pem_public_key(path.read_bytes())
                if not isinstance(key, ec.EllipticCurvePublicKey):
                    raise ValueError(f"{path}: not an EC public key")
                public_keys[(folder.name, version)] = key
        signing: dict[str, SigningKey] = {}
        for folder in sorted((root / "signing").glob("*")):
            versions = _versions(folder, "pem")
            if versions:
                version = max(versions)
                priv = serialization.load_pem_private_key(versions[version].read_bytes(), password=None)
                if not isinstance(priv, ec.EllipticCurvePrivateKey):
                    raise ValueError(f"{versions[version]}: not an EC private key")
                signing[folder.name] = SigningKey(folder.name, version, priv)
        data: dict[str, DataKey] = {}
        for folder in sorted((root / "data").glob("*")):
            for version, path in _versions(folder, "key").items():
                key_bytes = bytes.fromhex(path.read_text().strip())
                if len(key_bytes) != 32:
                    raise ValueError(f"{path}: a data key must be 32 bytes (AES-256)")
                dk = DataKey(folder.name, version, key_bytes)
                data[dk.key_id] = dk
        return cls(producers=producers, public_keys=public_keys, signing_keys=signing, data_keys=data)

    def signing_key(self, producer_id: str) -> SigningKey:
        """The newest signing key of ``producer_id``; ``KeyError`` if this keyring does not hold it."""
        try:
            return self._signing[producer_id]
        except KeyError:
            raise KeyError(f"no signing key for producer {producer_id!r} in this keyring") from None

    def data_key(self, key_id: str) -> DataKey | None:
        return self._data.get(key_id)

    def latest_data_key(self, hospital_id: str) -> DataKey:
        """The newest data key of a hospital (what its kiosks encrypt with)."""
        versions = [k for k in self._data.values() if k.hospital_id == hospital_id]
        if not versions:
            raise KeyError(f"no data key for hospital {hospital_id!r} in this keyring")
        return max(versions, key=lambda k: k.version)

    @property
    def data_key_ids(self) -> list[str]:
        return sorted(self._data)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _add_producer(root: Path, producer_id: str, hospital_id: str, role: str, version: int) -> None:
    priv = ec.generate_private_key(ec.SECP256R1())
    _write_private(
        root / "signing" / producer_id / f"v{version}.pem",
        priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    pub_path = root / "public" / producer_id / f"v{version}.pem"
    pub_path.parent.mkdir(parents=True, exist_ok=True)
    pub_path.write_bytes(
        priv.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def init_dev_keys(
    root: Path,
    *,
    hospitals: Iterable[str],
    kiosks: dict[str, str],
    services: Iterable[str] = ("gateway-1",),
) -> list[str]:
    """Create (or extend) a development key set; existing keys are never overwritten.

    ``kiosks`` maps kiosk id -> hospital id. Returns the paths created, relative to ``root``.
    """
    created: list[str] = []
    root.mkdir(parents=True, exist_ok=True)
    registry_path = root / "registry.json"
    registry = json.loads(registry_path.read_text()) if registry_path.exists() else {"producers": {}}
    for hospital in hospitals:
        _check_id("hospital id", hospital)
        path = root / "data" / hospital / "v1.key"
        if not path.exists():
            _write_private(path, secrets.token_bytes(32).hex().encode())
            created.append(str(path.relative_to(root)))
    wanted = {**{k: (h, "kiosk") for k, h in kiosks.items()}, **{s: ("", "service") for s in services}}
    for pid, (hospital, role) in wanted.items():
        _check_id("producer id", pid)
        if not (root / "signing" / pid).is_dir():
            _add_producer(root, pid, hospital, role, 1)
            created.append(f"signing/{pid}/v1.pem")
        registry["producers"][pid] = {"hospital_id": hospital, "role": role}
    registry_path.write_text(json.dumps(registry, indent=2, sort_keys=True) + "\n")
    return created


def export_role(
    src: Path,
    dst: Path,
    *,
    producer_id: str | None = None,
    hospitals: Iterable[str] = (),
) -> None:
    """Copy one role's key material into ``dst``: the registry and public keys always,
    ``producer_id``'s signing key and the listed hospitals' data keys when asked, nothing else."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    shutil.copy2(src / "registry.json", dst / "registry.json")
    shutil.copytree(src / "public", dst / "public")
    if producer_id is not None:
        shutil.copytree(src / "signing" / producer_id, dst / "signing" / producer_id)
    for hospital in hospitals:
        shutil.copytree(src / "data" / hospital, dst / "data" / hospital)
