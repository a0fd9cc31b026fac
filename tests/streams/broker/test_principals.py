"""The SCRAM users file behind ``medkiosk acls users`` and ``broker start --secured`` (no broker needed)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from streams.broker._principals import load_security, write_users_file

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_users_file_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "kafka" / "users.json"
    first = write_users_file(path, ["k1", "hospital-H1"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(first.users) == {"k1", "hospital-H1"} and first.admin_user == "admin"
    assert len(set(first.users.values()) | {first.admin_password}) == 3  # every password its own
    # Adding a principal keeps everyone's existing password (running brokers keep working).
    second = write_users_file(path, ["k1", "hospital-H1", "k2"])
    assert {k: second.users[k] for k in first.users} == dict(first.users)
    assert second.admin_password == first.admin_password
    assert load_security(path) == second


@pytest.mark.parametrize(
    "content",
    [
        '["not", "an", "object"]',
        '{"users": {}}',
        '{"admin": {"a": "x", "b": "y"}}',
        '{"admin": {"a": "x"}, "users": 3}',
    ],
)
def test_malformed_users_file_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "users.json"
    path.write_text(content)
    with pytest.raises(ValueError):
        load_security(path)


def test_cli_users_from_the_key_registry(tmp_path: Path, keys_dir: Path) -> None:
    users_file = tmp_path / "users.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "medkiosk",
            "acls",
            "users",
            "--keys-dir",
            str(keys_dir),
            "--users-file",
            str(users_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    users = json.loads(users_file.read_text())["users"]
    assert {"k1", "k2", "k3", "gateway-1", "hospital-H1", "hospital-H2", "auditor", "fl-aggregator"} <= set(users)


def _acls(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medkiosk", "acls", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )


def test_cli_export_writes_one_principals_credential(tmp_path: Path) -> None:
    """`acls export` (compose's kafka-users service): one principal's username and password files, 0600, and
    nothing of anyone else's; `--out -` prints them as settings; an unknown principal is refused."""
    users_file = tmp_path / "users.json"
    security = write_users_file(users_file, ["k1", "hospital-H1"])
    out = tmp_path / "cred"
    (out).mkdir()
    (out / "password").write_text("stale")  # a re-run replaces what a previous one left
    done = _acls("export", "--users-file", str(users_file), "--user", "k1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["password", "username"]
    assert (out / "username").read_text() == "k1" and (out / "password").read_text() == security.users["k1"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.iterdir())
    admin = _acls("export", "--users-file", str(users_file), "--admin", "--out", "-")
    assert admin.returncode == 0, admin.stderr
    assert admin.stdout.splitlines() == [
        f"MEDKIOSK_SASL_USERNAME={security.admin_user}",
        f"MEDKIOSK_SASL_PASSWORD={security.admin_password}",
    ]
    unknown = _acls("export", "--users-file", str(users_file), "--user", "k2", "--out", str(tmp_path / "k2"))
    assert unknown.returncode == 1 and "no user 'k2'" in unknown.stderr
    assert not (tmp_path / "k2").exists()


def test_cli_apply_create_users_needs_the_passwords(tmp_path: Path, keys_dir: Path) -> None:
    done = _acls("apply", "--keys-dir", str(keys_dir), "--create-users", "--bootstrap", "127.0.0.1:9")
    assert done.returncode == 2 and "--users-file" in done.stderr
