"""A local moto S3 server that gives the embedded broker durable storage across broker restarts.

moto and boto3 live in the optional ``durable`` extra, so nothing here imports them at module level.
The data lives in the moto process's memory: it survives broker restarts, not a moto restart.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BUCKET", "DurableStorageUnavailable", "MotoServer", "s3_env", "start_moto"]

BUCKET = "tansu"
_CREDENTIAL = "medkiosk"
_REGION = "us-east-1"
_INSTALL_HINT = "install the durable extra: pip install 'medkiosk[durable]'"


class DurableStorageUnavailable(RuntimeError):
    """``storage="s3"`` was asked for but the local S3 server could not be provided."""


@dataclass(kw_only=True)
class MotoServer:
    """A moto server child process and where to reach it."""

    process: subprocess.Popen[bytes]
    host: str
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate (then kill) the server and reap it; safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def s3_env(endpoint: str) -> dict[str, str]:
    """Environment variables that point Tansu's ``s3://`` storage engine at *endpoint*."""
    return {
        "AWS_ACCESS_KEY_ID": _CREDENTIAL,
        "AWS_SECRET_ACCESS_KEY": _CREDENTIAL,
        "AWS_REGION": _REGION,
        "AWS_DEFAULT_REGION": _REGION,
        "AWS_ENDPOINT": endpoint,
        # Tansu's object_store client refuses plain-HTTP endpoints unless told otherwise.
        "AWS_ALLOW_HTTP": "true",
    }


def _require_durable_extra() -> None:
    missing = [name for name in ("moto", "flask", "boto3") if importlib.util.find_spec(name) is None]
    if missing:
        raise DurableStorageUnavailable(f"storage='s3' needs {', '.join(missing)}; {_INSTALL_HINT}")


def _http_up(endpoint: str, timeout_s: float) -> bool:
    # An empty ProxyHandler: a corporate HTTP(S)_PROXY must not swallow requests to 127.0.0.1.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(endpoint + "/", timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _create_bucket(endpoint: str) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=_CREDENTIAL,
        aws_secret_access_key=_CREDENTIAL,
        region_name=_REGION,
    )
    try:
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if BUCKET not in existing:
            client.create_bucket(Bucket=BUCKET)
    finally:
        client.close()


def start_moto(*, host: str, port: int, log_path: Path, ready_timeout_s: float) -> MotoServer:
    """Start ``python -m moto.server`` from this interpreter, wait for it, and create the ``tansu`` bucket.

    Raises :class:`DurableStorageUnavailable` when the extra is missing or the server does not come up.
    """
    _require_durable_extra()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    server = MotoServer(process=process, host=host, port=port)
    deadline = time.monotonic() + ready_timeout_s
    try:
        while not _http_up(server.endpoint, timeout_s=0.5):
            if process.poll() is not None:
                raise DurableStorageUnavailable(f"moto server exited with code {process.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise DurableStorageUnavailable(
                    f"moto server not answering on {server.endpoint} after {ready_timeout_s:.0f}s; see {log_path}"
                )
            time.sleep(0.05)
        _create_bucket(server.endpoint)
    except BaseException:
        server.stop()
        raise
    return server
