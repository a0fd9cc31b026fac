"""Unpack a role's key archive (``keys.tar.gz`` from a Kubernetes Secret) into its keys directory.

Written for the init container that runs as an unprivileged user (uid 10001) in a directory it does not own (a
root-owned emptyDir): GNU tar fails there on the archive's ``./`` entry ("Cannot utime / change mode", exit 2),
because it tries to restore the target directory's own times and mode. This extracts regular files and
directories only, never touches the target directory itself, refuses absolute paths, ``..``, links and device
files, and makes every file ``0600`` and every directory ``0700`` whatever the archive says.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = ["KeyArchiveRejected", "UnpackReport", "unpack_keys"]

#: A keys archive is small; a much larger one is not what we think it is.
MAX_ARCHIVE_MEMBERS = 10_000
MAX_MEMBER_BYTES = 1 << 20


class KeyArchiveRejected(ValueError):
    """The archive holds something a keys directory never does (the member and why)."""

    def __init__(self, member: str, reason: str) -> None:
        super().__init__(f"{member!r}: {reason}")
        self.member = member
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class UnpackReport:
    files: int
    directories: int


def _relative(name: str) -> PurePosixPath | None:
    """The member's path under the target, ``None`` for the archive root (``.`` / ``./``)."""
    path = PurePosixPath(name)
    if path.is_absolute():
        raise KeyArchiveRejected(name, "absolute path")
    parts = [p for p in path.parts if p != "."]
    if ".." in parts:
        raise KeyArchiveRejected(name, "path leaves the keys directory")
    return PurePosixPath(*parts) if parts else None


def unpack_keys(archive: Path, target: Path) -> UnpackReport:
    """Extract ``archive`` (tar, optionally gzip/bz2/xz) into the existing directory ``target``.

    Every member is checked before anything is written, so a rejected archive leaves ``target`` untouched.
    """
    if not target.is_dir():
        raise FileNotFoundError(f"{target} is not a directory")
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        if len(members) > MAX_ARCHIVE_MEMBERS:
            raise KeyArchiveRejected(str(archive), f"more than {MAX_ARCHIVE_MEMBERS} members")
        plan: list[tuple[tarfile.TarInfo, PurePosixPath]] = []
        for member in members:
            rel = _relative(member.name)
            if not (member.isfile() or member.isdir()):
                raise KeyArchiveRejected(member.name, "not a regular file or directory")
            if member.isfile() and member.size > MAX_MEMBER_BYTES:
                raise KeyArchiveRejected(member.name, f"larger than {MAX_MEMBER_BYTES} bytes")
            if rel is None:
                if member.isfile():
                    raise KeyArchiveRejected(member.name, "a file in place of the keys directory")
                continue
            plan.append((member, rel))
        files = directories = 0
        for member, rel in plan:
            dest = target.joinpath(*rel.parts)
            if member.isdir():
                dest.mkdir(mode=0o700, parents=True, exist_ok=True)
                directories += 1
                continue
            dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None  # a regular file always has content
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out, source:
                out.write(source.read())
            os.chmod(dest, 0o600)
            files += 1
    return UnpackReport(files=files, directories=directories)
