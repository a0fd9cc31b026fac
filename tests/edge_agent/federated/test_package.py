"""The package's public surface, and that importing it stays light (no torch)."""

from __future__ import annotations

import subprocess
import sys

import edge_agent.federated as fl


def test_every_exported_name_resolves() -> None:
    assert len(fl.__all__) == len(set(fl.__all__))
    for name in fl.__all__:
        assert not name.startswith("_")
        assert getattr(fl, name) is not None
    assert set(fl.__all__) <= set(dir(fl))


def test_importing_the_package_does_not_import_torch() -> None:
    code = (
        "import sys, edge_agent.federated as f\n"
        "assert 'torch' not in sys.modules and 'opacus' not in sys.modules and 'sklearn' not in sys.modules\n"
        "f.DpSgdTrainer\n"
        "assert 'torch' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
