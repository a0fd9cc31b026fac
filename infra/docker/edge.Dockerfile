# syntax=docker/dockerfile:1
# Kiosk edge image with the GPU engine, for NVIDIA Jetson Orin kiosks (AGX Orin, Orin NX, Orin Nano) on
# JetPack 6.1 / 6.2 (L4T r36.4, arm64): the edge agent (sensors, fusion, TensorRT FP16 engine, ONNX Runtime
# fallback, durable outbox, FL client) under supervisord.
#
# Hardware and tags:
#   medkiosk-edge:<v>        this file: Jetson Orin, JetPack 6.1+ (r36.4): CUDA 12.6, TensorRT 10.3
#   medkiosk-edge-cpu:<v>    edge-cpu.Dockerfile: x86-64 kiosk PCs without a GPU, and (built for arm64) Jetson
#                            Xavier on JetPack 5 (r35: TensorRT 8.5, which the engine does not target): ONNX
#                            Runtime on the CPU, same models and answers within tolerance
#
#   docker build -f infra/docker/edge.Dockerfile -t medkiosk-edge:0.1.0 .          (on a Jetson, or buildx arm64)
#   docker run --runtime nvidia --restart unless-stopped \
#       --device /dev/ttyUSB0 --device /dev/video0 \
#       -v /etc/medkiosk:/etc/medkiosk:ro -v medkiosk-keys:/keys:ro -v medkiosk-state:/state \
#       -p 9108:9108 medkiosk-edge:0.1.0
#
# /etc/medkiosk/kiosk.toml (kiosk id, hospital, serial port, camera, model paths) is per device and mounted
# at run time; so are the kiosk's keys (its signing key + its hospital's data key, nothing else). The outbox
# lives in /state: keep that volume, it holds events not yet acknowledged.
#
# Python: the base image's own 3.10 (Ubuntu 22.04), because that is the interpreter NVIDIA's TensorRT Python
# bindings (python3-libnvinfer, in l4t-jetpack) are built for. The venv sees them through
# --system-site-packages; the gpu extra installs TensorRT from PyPI only on x86-64 (PyPI's aarch64 wheels are
# for server ARM and CUDA 13, not Jetson), so pip never replaces them. The kiosk code path is tested on 3.10
# (tests/infra/test_images.py).
FROM nvcr.io/nvidia/l4t-jetpack:r36.4.0

ARG DEBIAN_FRONTEND=noninteractive
# Extras of the project to install: `edge,gpu` = ONNX Runtime + PyCUDA (+ the base image's TensorRT).
ARG EXTRAS=edge,gpu

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev python3-pip \
        build-essential \
        supervisor \
        libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

ENV CUDA_HOME=/usr/local/cuda \
    PATH=/opt/medkiosk/venv/bin:/usr/local/cuda/bin:${PATH} \
    LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/lib/aarch64-linux-gnu/tegra \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Fails the build on a base without TensorRT 10's Python bindings (e.g. a JetPack 6.0 / r36.3 base: TensorRT 8.6).
RUN python3 -c "import sys, tensorrt; assert sys.version_info[:2] == (3, 10); assert tensorrt.__version__.startswith('10.'), tensorrt.__version__" \
    && python3 -m venv --system-site-packages /opt/medkiosk/venv \
    && pip install --upgrade pip setuptools wheel

# Serial reader (dialout) and camera (video) access without root.
RUN groupadd --system --gid 10001 medkiosk \
    && useradd --system --uid 10001 --gid medkiosk --groups dialout,video --create-home medkiosk \
    && mkdir -p /keys /state /etc/medkiosk /var/log/supervisor \
    && chown medkiosk:medkiosk /keys /state

WORKDIR /opt/medkiosk/src
# README.m[d]: the readme pyproject.toml names, copied when present (a wildcard may match nothing).
COPY pyproject.toml README.m[d] ./
COPY medkiosk/ medkiosk/
COPY streams/ streams/
COPY schemas/ schemas/
COPY edge_agent/ edge_agent/
COPY cloud_workers/ cloud_workers/
RUN pip install ".[${EXTRAS}]" \
    && medkiosk --help >/dev/null && medkiosk edge --help >/dev/null \
    && python -c "import tensorrt, pycuda.driver; print('TensorRT', tensorrt.__version__)"

COPY infra/supervisord/edge.conf /etc/supervisor/supervisord.conf

ENV MEDKIOSK_KEYS_DIR=/keys \
    MEDKIOSK_STATE_DIR=/state \
    MEDKIOSK_METRICS_HOST=0.0.0.0 \
    MEDKIOSK_METRICS_PORT=9108
EXPOSE 9108
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/metrics', timeout=3)"

# supervisord runs as root only to supervise; the agent itself runs as `medkiosk` (see edge.conf).
CMD ["supervisord", "-n", "-c", "/etc/supervisor/supervisord.conf"]
