"""``python -m edge_agent.vision.make_dataset OUT --clips N --seed S``: write a SYNTHETIC live/spoof dataset.

N live clips and N spoof clips (print, screen replay and their high-quality variants in turn), each a folder of
PNG frames, made from real face photographs that ship offline (matplotlib's ``grace_hopper.jpg``).
``OUT/dataset.json`` and ``OUT/README.txt`` say that the data is synthetic.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge_agent.vision._dataset import make_synthetic_dataset

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m edge_agent.vision.make_dataset", description=__doc__)
    parser.add_argument("out", type=Path, help="output folder (created; must be empty if it exists)")
    parser.add_argument("--clips", type=int, default=40, help="clips per class (live, spoof); default 40")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=8, help="frames per clip; default 8")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    args = parser.parse_args(argv)
    info = make_synthetic_dataset(
        args.out,
        clips=args.clips,
        rng=np.random.default_rng(args.seed),
        seed=args.seed,
        frames=args.frames,
        width=args.width,
        height=args.height,
    )
    summary = {k: info[k] for k in ("synthetic", "seed", "clips", "frames_per_clip", "frame_size")}
    print(json.dumps({"out": str(args.out), **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
