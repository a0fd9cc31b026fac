#!/usr/bin/env bash
# Real face photographs that PyPI packages ship, for benchmarks/liveness_eval.py (data, never committed).
#   benchmarks/fetch_face_photos.sh [OUT_DIR]     (default: ~/.cache/medkiosk/face-photos)
# The face-recognition 1.3.0 sdist (MIT) ships tests/test_images/*.jpg; the insightface 2.1 sdist (MIT) ships
# insightface/data/images/*. scikit-image's astronaut() is read from the installed package instead.
set -euo pipefail
out="${1:-$HOME/.cache/medkiosk/face-photos}"
py="${PYTHON:-.venv/bin/python}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
"$py" -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" face-recognition==1.3.0 insightface==2.1
tar -xzf "$tmp"/face_recognition-1.3.0.tar.gz -C "$tmp" face_recognition-1.3.0/tests/test_images
tar -xzf "$tmp"/insightface-2.1.tar.gz -C "$tmp" insightface-2.1/insightface/data/images
for f in biden.jpg obama.jpg obama2.jpg obama3.jpg; do
  cp "$tmp/face_recognition-1.3.0/tests/test_images/$f" "$out/face_recognition__$f"
done
for f in Tom_Hanks_54745.png t1.jpg; do
  cp "$tmp/insightface-2.1/insightface/data/images/$f" "$out/insightface__$f"
done
ls "$out"
