# syntax=docker/dockerfile:1
# Kiosk edge image for kiosks WITHOUT an NVIDIA GPU: x86-64 kiosk PCs, and (built for linux/arm64) Jetson AGX
# Xavier / Xavier NX on JetPack 5, whose TensorRT 8.5 the GPU engine does not target. Triage and liveness run
# on ONNX Runtime (CPU) with the same models and answers (within tolerance) as the TensorRT engine.
#
#   docker build -f infra/docker/edge-cpu.Dockerfile -t medkiosk-edge-cpu:0.1.0 .
#   docker buildx build --platform linux/arm64 -f infra/docker/edge-cpu.Dockerfile -t medkiosk-edge-cpu:0.1.0-arm64 .
#   docker run --restart unless-stopped --device /dev/ttyUSB0 --device /dev/video0 \
#       -v /etc/medkiosk:/etc/medkiosk:ro -v medkiosk-keys:/keys:ro -v medkiosk-state:/state \
#       -p 9108:9108 medkiosk-edge-cpu:0.1.0
#
# /etc/medkiosk/kiosk.toml and the kiosk's keys are per device and mounted at run time, as for the Jetson image
# (edge.Dockerfile). The outbox lives in /state: keep that volume, it holds events not yet acknowledged.
FROM python:3.11-slim

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends supervisor libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

ENV PATH=/opt/medkiosk/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/medkiosk/venv

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
RUN pip install ".[edge]" && medkiosk --help >/dev/null && medkiosk edge --help >/dev/null

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
