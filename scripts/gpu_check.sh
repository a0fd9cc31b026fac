#!/usr/bin/env bash
# Every GPU test and GPU benchmark of the kiosk, for a machine with an NVIDIA GPU (8 minutes at most).
#   scripts/gpu_check.sh [OUT_DIR]      figures and logs go to OUT_DIR (default: ./gpu-check)
# Installs TensorRT 10 + pycuda into the venv when they are missing (from PyPI, or from wheels in
# $GPU_WHEELS when the machine has no network); a step that cannot run says why and the rest go on.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-check}"
py="${PYTHON:-.venv/bin/python}"
mkdir -p "$out"
deadline=$((SECONDS + 470))
left() { echo $((deadline - SECONDS)); }
step() { # name, timeout cap (s), command...
  local name="$1" cap="$2"; shift 2
  local t; t=$(left); [ "$t" -gt "$cap" ] && t="$cap"
  if [ "$t" -le 5 ]; then echo "SKIP $name: out of time" | tee -a "$out/summary.txt"; return; fi
  echo "== $name (limit ${t}s)"
  timeout "$t" "$@" >"$out/$name.log" 2>&1
  echo "$name rc=$?" | tee -a "$out/summary.txt"
  tail -3 "$out/$name.log"
}
: >"$out/summary.txt"
have_gpu=1
{ command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } \
  >"$out/gpu.txt" 2>&1 || have_gpu=0
cat "$out/gpu.txt"
if [ "$have_gpu" = 0 ]; then
  echo "no NVIDIA GPU here: nothing installed; the GPU tests will skip with their reasons" | tee -a "$out/summary.txt"
elif ! "$py" -c "import tensorrt, pycuda.driver" 2>/dev/null; then
  src=()
  [ -n "${GPU_WHEELS:-}" ] && src=(--no-index --find-links "$GPU_WHEELS")
  step install-gpu 240 "$py" -m pip install "${src[@]}" "tensorrt>=10,<11" "pycuda>=2024.1"
fi
"$py" -c "from edge_agent.inference import available_engines as a; print(a())" | tee "$out/engines.txt"
export HF_HUB_OFFLINE=1
step gpu-tests 300 "$py" -m pytest -q -p no:cacheprovider -rs \
  tests/edge_agent/inference/test_gpu_engines.py tests/edge_agent/inference/test_gpu_path.py \
  tests/edge_agent/vision/test_minifasnet.py
step liveness-gpu-bench 150 "$py" benchmarks/liveness_gpu.py --runs 200
cp "$out/liveness-gpu-bench.log" "$out/liveness_gpu.json" 2>/dev/null || true
echo "done in ${SECONDS}s; results in $out/"
