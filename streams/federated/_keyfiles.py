"""Where a role's keys directory keeps the Paillier key pair (the public key everywhere, the private key
only in the keyholder's directory) and a hospital client's DP secret (only in that client's directory)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

__all__ = [
    "CLIENT_SECRET_FILE",
    "PAILLIER_PRIVATE_FILE",
    "PAILLIER_PUBLIC_FILE",
    "create_client_secret",
    "load_client_secret",
    "paillier_private_files",
]

PAILLIER_PUBLIC_FILE = "paillier/public.json"
"""Path of the Paillier public key, relative to a keys directory."""
PAILLIER_PRIVATE_FILE = "paillier/private.json"
"""Path of the Paillier private key, relative to a keys directory (the keyholder's only)."""

CLIENT_SECRET_FILE = "fl/client_secret.json"  # noqa: S105 (a path, not a secret)
"""Path of a hospital client's DP secret (seeds its noise and sampling), relative to its keys directory."""

_PRIVATE_KIND = "medkiosk.paillier.private/v1"
_SECRET_KIND = "medkiosk.fl.client-secret/v1"  # noqa: S105 (a format tag)
_SECRET_BYTES = 32
_MAX_BYTES = 1 << 20


def paillier_private_files(keys_dir: Path) -> list[Path]:
    """Every file under ``keys_dir`` that holds a Paillier private key, wherever it was put."""
    found: list[Path] = []
    if not keys_dir.is_dir():
        return found
    for path in sorted(keys_dir.rglob("*")):
        if not path.is_file() or path.stat().st_size > _MAX_BYTES:
            continue
        try:
            doc = json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(doc, dict) and doc.get("kind") == _PRIVATE_KIND:
            found.append(path)
    return found


def create_client_secret(keys_dir: Path) -> bool:
    """Create a fresh 256-bit client secret in ``keys_dir`` (mode 0600) unless one is there; True if created.

    The secret is made where the client's keys live and nowhere else: no master copy exists, so no other
    role (nor whoever ran ``fl keys init``) can recompute the client's DP noise or batch sampling.
    """
    path = keys_dir / CLIENT_SECRET_FILE
    if path.exists():
        load_client_secret(keys_dir)  # refuse to keep a damaged one
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"kind": _SECRET_KIND, "secret": secrets.token_bytes(_SECRET_BYTES).hex()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def load_client_secret(keys_dir: Path) -> bytes:
    """The client secret :func:`create_client_secret` wrote; ``FileNotFoundError`` / ``ValueError`` otherwise."""
    path = keys_dir / CLIENT_SECRET_FILE
    doc = json.loads(path.read_text())
    if not isinstance(doc, dict) or doc.get("kind") != _SECRET_KIND:
        raise ValueError(f"{path} is not a client secret")
    raw = bytes.fromhex(str(doc.get("secret", "")))
    if len(raw) != _SECRET_BYTES:
        raise ValueError(f"{path}: a client secret has {_SECRET_BYTES} bytes, got {len(raw)}")
    return raw
