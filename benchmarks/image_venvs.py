"""How long a clean venv per image takes (what tests/infra/test_images.py builds in place of `docker build`).

    .venv/bin/python benchmarks/image_venvs.py

For each image: copy what its Dockerfile COPYs, `uv venv`, install its first packages (torch for the cloud image)
and its extras, with the shared uv cache (the default one, warm after the first run). Prints one JSON line:
seconds per image, and whether a Python 3.10 (JetPack 6's) was found for the Jetson venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "infra" / "docker"
UV = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def _python310() -> str | None:
    found = shutil.which("python3.10")  # a pyenv shim may exist and still refuse to run
    if found and subprocess.run([found, "-c", "pass"], capture_output=True, check=False).returncode == 0:
        return found
    candidates = sorted(Path.home().glob(".pyenv/versions/3.10*/bin/python3.10"), reverse=True)
    return str(candidates[0]) if candidates else None


def _context(dockerfile: Path, dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "*.pem", "*.key")
    for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not parts[1].startswith("--"):
            for source in parts[1:-1]:
                for path in ROOT.glob(source.rstrip("/")):
                    rel = path.relative_to(ROOT)
                    if path.is_dir():
                        shutil.copytree(path, dest / rel, ignore=ignore)
                    else:
                        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(path, dest / rel)


def _build(dockerfile: str, extras: str, python: str, first: list[str]) -> float:
    assert UV is not None, "uv is missing (dev extra)"
    with tempfile.TemporaryDirectory() as tmp:
        context, venv = Path(tmp) / "context", Path(tmp) / "venv"
        context.mkdir()
        _context(DOCKER / dockerfile, context)
        started = time.monotonic()
        subprocess.run([UV, "venv", "-q", "--python", python, str(venv)], check=True)
        py = str(venv / "bin" / "python")
        if first:
            subprocess.run([UV, "pip", "install", "-q", "--python", py, *first], check=True)
        subprocess.run([UV, "pip", "install", "-q", "--python", py, f"{context}[{extras}]"], check=True)
        return round(time.monotonic() - started, 1)


def main() -> None:
    result: dict[str, object] = {"benchmark": "image_venvs"}
    result["cloud_s"] = _build("cloud.Dockerfile", "cloud", sys.executable, ["torch==2.13.0"])
    result["edge_cpu_s"] = _build("edge-cpu.Dockerfile", "edge", sys.executable, [])
    py310 = _python310()
    result["jetson_py310_s"] = _build("edge.Dockerfile", "edge", py310, []) if py310 else None
    result["cores"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
