"""``python -m edge_agent.vision.train DATASET --out MODEL.onnx``: train, report held-out metrics, export ONNX.

DATASET has ``live/`` and ``spoof/`` (image files, or sub-folders of frames: one clip each). The ONNX model
(opset 17, dynamic batch) and ``MODEL.json`` (version, input shape, threshold, channel layout,
``synthetic_data``, metrics) are written; the last line printed is the held-out metrics as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    from edge_agent.vision._train import TrainConfig, train_liveness

    d = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m edge_agent.vision.train", description=__doc__)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="the ONNX file to write (metadata goes beside it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=d.epochs)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--lr", type=float, default=d.learning_rate)
    parser.add_argument("--history", type=int, default=d.history, help="K: frames per model input")
    parser.add_argument("--input-size", type=int, default=d.input_size)
    parser.add_argument("--width", type=float, default=d.width, help="channel width multiplier")
    parser.add_argument("--held-out", type=float, default=d.held_out_fraction, help="fraction of clips held out")
    parser.add_argument("--threshold", type=float, default=d.threshold, help="operating threshold (metadata)")
    synthetic = parser.add_mutually_exclusive_group()
    synthetic.add_argument("--synthetic", dest="synthetic", action="store_true", default=None)
    synthetic.add_argument("--not-synthetic", dest="synthetic", action="store_false")
    args = parser.parse_args(argv)
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        history=args.history,
        input_size=args.input_size,
        width=args.width,
        held_out_fraction=args.held_out,
        threshold=args.threshold,
    )
    result = train_liveness(
        args.dataset,
        args.out,
        rng=np.random.default_rng(args.seed),
        config=config,
        synthetic=args.synthetic,
        seed=args.seed,
        log=lambda line: print(line, file=sys.stderr),
    )
    label = "SYNTHETIC held-out metrics" if result.metadata["synthetic_data"] else "held-out metrics"
    print(f"{label} ({result.model_path}, {result.metadata['model_version']}):", file=sys.stderr)
    print(json.dumps(result.metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
