"""Parse the ``--from-time`` / ``--to-time`` of ``medkiosk audit replay`` into epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["parse_time_ms"]


def parse_time_ms(text: str) -> int:
    """Epoch milliseconds from an ISO 8601 time (naive means UTC; ``Z`` accepted) or an integer of epoch ms."""
    stripped = text.strip()
    if stripped.lstrip("-").isdigit():
        return int(stripped)
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 time or epoch milliseconds: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
