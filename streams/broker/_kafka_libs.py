"""Locate (or fetch with Maven) the Apache Kafka broker's jars and a Java 17+ runtime."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

__all__ = ["KAFKA_VERSION", "KafkaNotInstalled", "fetch_kafka_libs", "find_java", "find_kafka_libs"]

KAFKA_VERSION = "4.4.0"
_REPO_ROOT = Path(__file__).resolve().parents[2]
_POM = _REPO_ROOT / "infra" / "kafka" / "pom.xml"
#: Where ``scripts/setup.sh`` (``mvn dependency:copy-dependencies``) puts the jars in a checkout.
DEFAULT_LIBS_DIR = _REPO_ROOT / ".medkiosk" / "kafka" / "libs"
_ENV_LIBS = "MEDKIOSK_KAFKA_LIBS"
_HINT = "run `make setup` (or `medkiosk broker fetch-kafka`), which fetches them from Maven Central with mvn"


class KafkaNotInstalled(RuntimeError):
    """The Kafka jars or a Java 17+ runtime are missing."""


def _has_broker_jar(libs: Path) -> bool:
    return libs.is_dir() and any(libs.glob("kafka_2.13-*.jar"))


def find_kafka_libs(libs_dir: Path | None = None) -> Path:
    """The folder holding ``kafka_2.13-*.jar`` and its dependencies.

    Looks only at *libs_dir* when given, else at ``$MEDKIOSK_KAFKA_LIBS``, then ``.medkiosk/kafka/libs``
    of this checkout.
    """
    candidates: list[Path] = []
    if libs_dir is not None:
        candidates.append(libs_dir)
    else:
        if os.environ.get(_ENV_LIBS):
            candidates.append(Path(os.environ[_ENV_LIBS]))
        candidates.append(DEFAULT_LIBS_DIR)
    for candidate in candidates:
        if _has_broker_jar(candidate):
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise KafkaNotInstalled(f"no Apache Kafka jars in {tried}; {_HINT}")


def find_java() -> str:
    """Path of a ``java`` of version 17 or newer (``$JAVA_HOME/bin/java`` first, then ``$PATH``)."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(on_path)
    for java in candidates:
        try:
            out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        match = re.search(r'version "(\d+)', out.stderr + out.stdout)
        if match and int(match.group(1)) >= 17:
            return java
    raise KafkaNotInstalled(
        "Apache Kafka 4 needs Java 17+: apt-get install openjdk-17-jre-headless (make setup does when it can)"
    )


def fetch_kafka_libs(dest: Path = DEFAULT_LIBS_DIR, *, pom: Path = _POM, timeout_s: float = 900.0) -> Path:
    """Copy the broker's jars from Maven Central (through ``~/.m2``) into *dest* with ``mvn``; returns *dest*."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaNotInstalled("mvn not found: apt-get install maven (make setup does when it can)")
    if not pom.is_file():
        raise KafkaNotInstalled(f"{pom} is missing: fetching needs a medkiosk checkout")
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
        ],
        check=True,
        timeout=timeout_s,
    )
    # Swap in whole: a half-copied folder must never look like an installation.
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    return dest
