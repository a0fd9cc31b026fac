"""Key material of a training run, and each role's share of it.

The source directory holds everything (like ``medkiosk keys init``): signing keys of the coordinator (two
identities: rounds and models), aggregators, keyholder and one client per hospital, the ``fl`` data key
the keyholder encrypts aggregates with for the coordinator, and the Paillier key pair. A role directory
holds the registry, the public keys, its own signing key(s), the data keys it needs and the Paillier
public key; only the keyholder's also holds the Paillier private key. A hospital client's directory also
holds its DP secret, made there by the export and found in no other directory (not even the source).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from streams import export_role, init_dev_keys
from streams.federated import (
    CLIENT_SECRET_FILE,
    PAILLIER_PRIVATE_FILE,
    PAILLIER_PUBLIC_FILE,
    create_client_secret,
    generate_keypair,
    save_private_key,
    save_public_key,
)

__all__ = ["export_fl_role", "init_fl_keys"]


def init_fl_keys(
    root: Path,
    *,
    clients: Mapping[str, str],
    services: Sequence[str],
    aggregate_domain: str = "fl",
    key_bits: int = 2048,
) -> list[str]:
    """Create what is missing under ``root``: signing keys for ``services`` and for ``clients``
    (client id -> hospital id), data keys for the hospitals and ``aggregate_domain``, and a Paillier key
    pair of ``key_bits``. Returns the paths created, relative to ``root``."""
    hospitals = sorted({*clients.values(), aggregate_domain})
    created = init_dev_keys(root, hospitals=hospitals, kiosks=dict(clients), services=list(services))
    public, private = root / PAILLIER_PUBLIC_FILE, root / PAILLIER_PRIVATE_FILE
    if not public.exists():
        pub, priv = generate_keypair(key_bits)
        public.parent.mkdir(parents=True, exist_ok=True)
        save_private_key(priv, private)
        save_public_key(pub, public)
        created += [PAILLIER_PRIVATE_FILE, PAILLIER_PUBLIC_FILE]
    return created


def export_fl_role(
    root: Path,
    dst: Path,
    *,
    producers: Sequence[str] = (),
    domains: Sequence[str] = (),
    private_key: bool = False,
    client_secret: bool = False,
) -> None:
    """Copy one role's share of ``root`` into ``dst`` (replacing it): registry, public keys, the signing
    keys of ``producers``, the data keys of ``domains``, the Paillier public key, and the Paillier private
    key only when ``private_key`` (the keyholder). With ``client_secret`` (a hospital client) ``dst`` also
    gets the client's DP secret: the one it already holds (kept across a re-export, so a restarted client
    still reproduces its rounds), else a fresh one made in ``dst`` alone."""
    kept = (dst / CLIENT_SECRET_FILE).read_bytes() if client_secret and (dst / CLIENT_SECRET_FILE).exists() else None
    export_role(root, dst, producer_id=producers[0] if producers else None, hospitals=domains)
    for extra in producers[1:]:
        shutil.copytree(root / "signing" / extra, dst / "signing" / extra)
    (dst / PAILLIER_PUBLIC_FILE).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(root / PAILLIER_PUBLIC_FILE, dst / PAILLIER_PUBLIC_FILE)
    if private_key:
        target = dst / PAILLIER_PRIVATE_FILE
        shutil.copy2(root / PAILLIER_PRIVATE_FILE, target)
        os.chmod(target, 0o600)
    if client_secret:
        if kept is not None:
            (dst / CLIENT_SECRET_FILE).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(dst / CLIENT_SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(kept)
        create_client_secret(dst)
