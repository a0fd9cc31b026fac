"""Is a Kafka listener really serving? A raw ApiVersions v0 + Metadata v0 exchange, no client library."""

from __future__ import annotations

import socket
import struct

__all__ = ["kafka_ready"]

_CLIENT_ID = b"medkiosk-probe"
# A reply bigger than this is not an ApiVersions/Metadata answer from a fresh broker; refuse to buffer it.
_MAX_REPLY = 1 << 20


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise EOFError("connection closed mid-reply")
        chunks += chunk
    return bytes(chunks)


def _kafka_call(sock: socket.socket, api_key: int, correlation_id: int, body: bytes) -> bytes:
    """Send a v0 request (request header v1) and return the reply body after its correlation id."""
    request = struct.pack(">hhih", api_key, 0, correlation_id, len(_CLIENT_ID)) + _CLIENT_ID + body
    sock.sendall(struct.pack(">i", len(request)) + request)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    if not 4 <= size <= _MAX_REPLY:
        raise ValueError(f"implausible Kafka reply size {size}")
    reply = _recv_exact(sock, size)
    (got,) = struct.unpack_from(">i", reply)
    if got != correlation_id:
        raise ValueError(f"correlation id {got}, expected {correlation_id}")
    return reply[4:]


def kafka_ready(host: str, port: int, timeout_s: float = 1.0, *, api_versions_only: bool = False) -> bool:
    """True when ``host:port`` answers ApiVersions v0 with no error and Metadata v0 with at least one broker.

    ApiVersions alone shows a Kafka listener; Metadata also goes through the storage engine, which is
    the part that is slow or broken when the S3 store is not reachable. ``api_versions_only`` stops after
    ApiVersions, the one request a SASL listener answers before authentication.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            api_versions = _kafka_call(sock, api_key=18, correlation_id=1, body=b"")
            (error_code,) = struct.unpack_from(">h", api_versions)
            if error_code != 0:
                return False
            if api_versions_only:
                return True
            # Metadata v0 with an empty topic array means "all topics"; only the broker list is read.
            metadata = _kafka_call(sock, api_key=3, correlation_id=2, body=struct.pack(">i", 0))
            (broker_count,) = struct.unpack_from(">i", metadata)
            return bool(broker_count >= 1)
    except (OSError, EOFError, ValueError, struct.error):
        return False
