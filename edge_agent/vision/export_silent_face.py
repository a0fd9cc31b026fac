"""``python -m edge_agent.vision.export_silent_face WEIGHTS_DIR OUT_DIR``: the MiniFASNet pair for the kiosk.

Reads the published Silent-Face checkpoints (``2.7_80x80_MiniFASNetV2.pth``, ``4_0_0_80x80_MiniFASNetV1SE.pth``,
Apache-2.0) from WEIGHTS_DIR, loads them strictly into our MiniFASNet, exports each to ONNX and ``.pt2``,
checks ONNX Runtime against torch, and writes ``silent-face.json``. Point ``[liveness] model`` at OUT_DIR with
``kind = "minifasnet"``. Needs torch (the ``vision`` training extra); the kiosk itself needs only ONNX Runtime.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from edge_agent.vision._silentface import export_silent_face

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m edge_agent.vision.export_silent_face", description=__doc__)
    parser.add_argument("weights_dir", type=Path, help="folder with the two published .pth checkpoints")
    parser.add_argument("out_dir", type=Path, help="output folder (created)")
    args = parser.parse_args(argv)
    meta_path = export_silent_face(args.weights_dir, args.out_dir)
    meta = json.loads(meta_path.read_text())
    print(json.dumps({"out": str(args.out_dir), "members": [m["file"] for m in meta["members"]]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
