# syntax=docker/dockerfile:1
# Kiosk edge image (Jetson AGX Xavier, JetPack 5.1 / L4T r35.2.1, arm64): the edge agent (sensors, fusion,
# TensorRT / ONNX Runtime inference, durable outbox, FL client) under supervisord.
#
#   docker build -f infra/docker/edge.Dockerfile -t medkiosk-edge:0.1.0 .          (on a Jetson, or buildx arm64)
#   docker run --runtime nvidia --restart unless-stopped \
#       --device /dev/ttyUSB0 --device /dev/video0 \
#       -v /etc/medkiosk:/etc/medkiosk:ro -v medkiosk-keys:/keys:ro -v medkiosk-state:/state \
#       -p 9108:9108 medkiosk-edge:0.1.0
#
# /etc/medkiosk/kiosk.toml (kiosk id, hospital, serial port, camera, model paths) is per device and mounted
# at run time; so are the kiosk's keys (its signing key + its hospital's data key, nothing else).
#
# Since L4T r34 the l4t-base image no longer mounts CUDA / TensorRT from the host: they are installed here
# from NVIDIA's Jetson apt repository for this L4T release (r35.2, SoC t194 = Xavier).
FROM nvcr.io/nvidia/l4t-base:r35.2.1

ARG DEBIAN_FRONTEND=noninteractive
ARG L4T_REPO=r35.2
ARG SOC=t194
# Extras of the project to install: `edge,gpu` = ONNX Runtime + TensorRT + PyCUDA; `edge` = CPU path only.
ARG EXTRAS=edge,gpu

ADD https://repo.download.nvidia.com/jetson/jetson-ota-public.asc /etc/apt/trusted.gpg.d/jetson-ota-public.asc
RUN chmod 644 /etc/apt/trusted.gpg.d/jetson-ota-public.asc \
    && printf 'deb https://repo.download.nvidia.com/jetson/common %s main\ndeb https://repo.download.nvidia.com/jetson/%s %s main\n' \
        "${L4T_REPO}" "${SOC}" "${L4T_REPO}" > /etc/apt/sources.list.d/nvidia-l4t-apt-source.list \
    && apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates gnupg software-properties-common \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-pip \
        python3.11 python3.11-venv python3.11-dev \
        build-essential \
        supervisor \
        libglib2.0-0 \
        cuda-toolkit-11-4 \
        libnvinfer8 libnvinfer-plugin8 libnvonnxparsers8 libnvparsers8 \
    && rm -rf /var/lib/apt/lists/*

# The project needs Python >= 3.11; Ubuntu 20.04 (L4T r35) ships 3.8, hence python3.11 in its own venv.
ENV CUDA_HOME=/usr/local/cuda \
    PATH=/opt/medkiosk/venv/bin:/usr/local/cuda/bin:${PATH} \
    LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/lib/aarch64-linux-gnu/tegra \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3.11 -m venv /opt/medkiosk/venv && pip install --upgrade pip setuptools wheel

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
RUN pip install ".[${EXTRAS}]" && medkiosk --help >/dev/null

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
