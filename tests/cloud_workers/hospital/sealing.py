"""Helpers for the hospital subscriber tests: sealed chains and raw publishing on the real broker."""

from __future__ import annotations

from google.protobuf.message import Message

from schemas import (
    CardRead,
    DepartmentScore,
    IdentityCheck,
    IdentityVerdict,
    InferenceResult,
    LivenessResult,
    MedicalRecord,
)
from streams import KIOSK_IDENTITY, KIOSK_INFERENCE, ChainState, Keyring, seal


def identity(kiosk: str, hospital: str, n: int) -> IdentityCheck:
    return IdentityCheck(
        kiosk_id=kiosk,
        hospital_id=hospital,
        card=CardRead(
            kiosk_id=kiosk, card_number=f"CARD{n:04d}", read_at=1_700_000_000_000_000_000 + n, frame_format="em4100"
        ),
        liveness=LivenessResult(
            kiosk_id=kiosk, captured_at=1_700_000_000_000_000_000 + n, face_found=True, live_score=0.97
        ),
        verdict=IdentityVerdict.IDENTITY_VERDICT_VERIFIED,
        skew_ns=n,
        window_ns=50_000_000,
    )


def triage(kiosk: str, hospital: str, n: int) -> InferenceResult:
    return InferenceResult(
        kiosk_id=kiosk,
        hospital_id=hospital,
        request_id=f"req-{n}",
        model_name="triage-kg",
        model_version="3",
        engine="onnxruntime",
        symptoms=["chest pain", "dyspnea"],
        ranking=[
            DepartmentScore(department="cardiology", score=0.81),
            DepartmentScore(department="pulmonology", score=0.12),
        ],
        latency_ns=1_200_000,
    )


class Chain:
    """Seals messages for one kiosk in one stream, as the kiosk would."""

    def __init__(self, keyring: Keyring, kiosk: str, hospital: str, stream: str | None = None) -> None:
        """``stream=None``: the kiosk topic the message is first published to (what the gateway forwards)."""
        self.keyring, self.kiosk, self.hospital, self.stream = keyring, kiosk, hospital, stream
        self.states: dict[str, ChainState] = {}

    def seal(self, message: Message) -> MedicalRecord:
        stream = self.stream or (KIOSK_INFERENCE.name if isinstance(message, InferenceResult) else KIOSK_IDENTITY.name)
        rec, self.states[stream] = seal(
            message,
            signing_key=self.keyring.signing_key(self.kiosk),
            chain=self.states.get(stream, ChainState()),
            hospital_id=self.hospital,
            data_key=self.keyring.latest_data_key(self.hospital),
            stream=stream,
        )
        return rec
