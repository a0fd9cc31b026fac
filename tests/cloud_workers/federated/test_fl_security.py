"""Trust boundaries: only the keyholder's keys directory (and process) holds the Paillier private key; the
aggregator refuses to run with one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cloud_workers.federated import Aggregator
from streams import BusMetrics, BusSettings, Keyring
from streams.federated import PAILLIER_PUBLIC_FILE, paillier_private_files
from tests.cloud_workers.federated.harness import FlKeys, make_keys


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> FlKeys:
    return make_keys(tmp_path_factory.mktemp("flkeys"))


def test_only_the_keyholder_gets_the_private_key(keys: FlKeys) -> None:
    holders = {role: paillier_private_files(path) for role, path in keys.dirs.items()}
    assert {role for role, found in holders.items() if found} == {"keyholder"}
    assert all((path / PAILLIER_PUBLIC_FILE).exists() for path in keys.dirs.values())
    assert (holders["keyholder"][0].stat().st_mode & 0o777) == 0o600
    aggregator = Keyring.load(keys.dirs["aggregator"])
    assert aggregator.data_key_ids == []  # nor can it read the decrypted aggregates


def test_the_aggregator_refuses_a_keys_dir_with_the_private_key(keys: FlKeys, tmp_path: Path) -> None:
    for keys_dir in (keys.dirs["keyholder"], keys.root):
        settings = BusSettings(keys_dir=keys_dir, state_dir=tmp_path)
        with pytest.raises(RuntimeError, match="must not hold the Paillier private key"):
            Aggregator("m", "fl-aggregator-0", keys.public_key, settings, Keyring.load(keys_dir), BusMetrics("a"))


def test_the_aggregator_process_refuses_it_too(keys: FlKeys, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "medkiosk", "fl", "aggregator", "--keys-dir", str(keys.dirs["keyholder"]),
         "--aggregator-id", "fl-aggregator-0", "--state-dir", str(tmp_path), "--bootstrap", "127.0.0.1:9"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "must not hold the Paillier private key" in proc.stderr
