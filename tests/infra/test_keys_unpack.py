"""The manifests' key-unpacking init command works as uid 10001 in a root-owned directory, on the archive built
the documented way (``tar -czf keys.tar.gz -C dir .``, so with a ``./`` entry), and refuses hostile archives.

When the tests run as root they run the init command exactly as the manifest has it, as uid 10001 (setpriv),
into a root-owned mode-0777 directory like a Kubernetes emptyDir; as any other user they run it as that user.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams import Keyring, export_role, init_dev_keys

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "infra" / "k8s"
APP_UID = 10001


def _init_commands() -> list[list[str]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            spec: dict[str, Any] = (doc or {}).get("spec", {}).get("template", {}).get("spec", {})
            for c in spec.get("initContainers", []):
                if any(m["mountPath"] == "/keys" for m in c.get("volumeMounts", [])):
                    out.append([*c.get("command", []), *c.get("args", [])])
    return out


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Path]:
    """A folder uid 10001 can reach (pytest's tmp_path is private to the test user)."""
    root = Path(tempfile.mkdtemp(prefix="medkiosk-unpack-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _as_app_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux): cannot drop to uid 10001")
    return [setpriv, f"--reuid={APP_UID}", f"--regid={APP_UID}", "--clear-groups"]


def _gateway_archive(world: Path) -> Path:
    master, role = world / "master", world / "role"
    init_dev_keys(master, hospitals=["hospital-a"], kiosks={}, services=["medkiosk-gateway-0"])
    export_role(master, role, producer_id="medkiosk-gateway-0")
    archive = world / "secret" / "keys.tar.gz"
    archive.parent.mkdir()
    tar = shutil.which("tar")
    if tar is None:
        pytest.skip("needs tar to build the archive the documented way")
    subprocess.run([tar, "-czf", str(archive), "-C", str(role), "."], check=True, timeout=30)
    archive.chmod(0o444)
    archive.parent.chmod(0o755)
    return archive


def _emptydir(world: Path) -> Path:
    target = world / "keys"
    target.mkdir()
    target.chmod(0o777)  # what kubelet makes; owned by root when we are root
    return target


def _localise(argv: list[str], archive: Path, target: Path) -> list[str]:
    paths = {"/secret/keys.tar.gz": str(archive), "/keys": str(target)}
    out = [paths.get(a, a) for a in argv]
    if out[0] == "medkiosk":
        out = [sys.executable, "-m", "medkiosk", *out[1:]]
    return out


def test_every_keys_init_container_uses_keys_unpack() -> None:
    commands = _init_commands()
    assert len(commands) >= 3  # the gateway and one per hospital subscriber
    for argv in commands:
        assert argv == ["medkiosk", "keys", "unpack", "--archive", "/secret/keys.tar.gz", "--dir", "/keys"]


def test_manifest_init_command_unpacks_as_app_user(world: Path) -> None:
    archive = _gateway_archive(world)
    with tarfile.open(archive) as tar:
        assert {"./", "."} & set(tar.getnames()), "the documented archive has a ./ entry"
    target = _emptydir(world)
    (argv,) = {tuple(a) for a in _init_commands()}
    proc = subprocess.run(
        [*_as_app_user(), *_localise(list(argv), archive, target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("MEDKIOSK_")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = [p for p in target.rglob("*") if p.is_file()]
    assert {str(p.relative_to(target)) for p in files} >= {"registry.json", "signing/medkiosk-gateway-0/v1.pem"}
    for path in target.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
        if os.geteuid() == 0:
            assert path.stat().st_uid == APP_UID
    assert stat.S_IMODE(target.stat().st_mode) == 0o777, "the emptyDir itself is left as it was"
    keyring = Keyring.load(target)
    assert keyring.signing_key("medkiosk-gateway-0").producer_id == "medkiosk-gateway-0"


def test_gnu_tar_fails_where_unpack_works(world: Path) -> None:
    """The failure the init command avoids, reproduced (so the test above tests the right thing)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make a directory the unprivileged user does not own")
    tar = shutil.which("tar")
    assert tar is not None
    archive, target = _gateway_archive(world), _emptydir(world)
    proc = subprocess.run(
        [*_as_app_user(), tar, "-xzf", str(archive), "-C", str(target), "--no-same-owner"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Cannot utime" in proc.stderr or "Cannot change mode" in proc.stderr


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buf.getvalue()


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def _dev(name: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    return info, b""


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([_file("registry.json"), _file("/etc/medkiosk-owned")], "absolute path"),
        ([_file("registry.json"), _file("../outside")], "leaves the keys directory"),
        ([_file("registry.json"), _file("public/../../outside")], "leaves the keys directory"),
        ([_file("registry.json"), _link("public", "/etc", tarfile.SYMTYPE)], "not a regular file"),
        ([_file("registry.json"), _link("hard", "/etc/passwd", tarfile.LNKTYPE)], "not a regular file"),
        ([_file("registry.json"), _dev("null")], "not a regular file"),
        ([_file("./")], "a file in place of the keys directory"),
    ],
    ids=["absolute", "dotdot", "nested-dotdot", "symlink", "hardlink", "device", "root-as-file"],
)
def test_hostile_archives_are_refused_before_writing(
    members: list[tuple[tarfile.TarInfo, bytes]], reason: str, tmp_path: Path
) -> None:
    archive = tmp_path / "keys.tar.gz"
    archive.write_bytes(_tar(members))
    target = tmp_path / "keys"
    target.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "medkiosk", "keys", "unpack", "--archive", str(archive), "--dir", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert reason in proc.stderr
    assert list(target.iterdir()) == [], "nothing may be written from a refused archive"
    assert not (tmp_path / "outside").exists()


def test_garbage_archive_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "keys.tar.gz"
    archive.write_bytes(b"\x1f\x8b not really gzip")
    target = tmp_path / "keys"
    target.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "medkiosk", "keys", "unpack", "--archive", str(archive), "--dir", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
