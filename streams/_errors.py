"""Why an envelope was refused: one specific exception carrying a machine-readable reason."""

from __future__ import annotations

from schemas import RejectReason

__all__ = ["EnvelopeRejected", "reason_label"]


def reason_label(reason: int) -> str:
    """``REJECT_REASON_BAD_SIGNATURE`` -> ``bad_signature``: the label used in metrics and JSON."""
    name: str = RejectReason.Name(reason)
    return name.removeprefix("REJECT_REASON_").lower()


class EnvelopeRejected(Exception):
    """An envelope (or its payload) failed a check; ``reason`` is a ``schemas.RejectReason`` value."""

    def __init__(self, reason: int, detail: str = "", *, producer_id: str = "", seq: int = 0) -> None:
        self.reason = reason
        self.detail = detail
        self.producer_id = producer_id
        self.seq = seq
        super().__init__(f"{reason_label(reason)}: {detail}" if detail else reason_label(reason))

    @property
    def label(self) -> str:
        return reason_label(self.reason)
