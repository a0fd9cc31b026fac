"""Where a role's keys directory keeps the Paillier key pair: the public key everywhere, the private key
only in the keyholder's directory."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["PAILLIER_PRIVATE_FILE", "PAILLIER_PUBLIC_FILE", "paillier_private_files"]

PAILLIER_PUBLIC_FILE = "paillier/public.json"
"""Path of the Paillier public key, relative to a keys directory."""
PAILLIER_PRIVATE_FILE = "paillier/private.json"
"""Path of the Paillier private key, relative to a keys directory (the keyholder's only)."""

_PRIVATE_KIND = "medkiosk.paillier.private/v1"
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
