"""Which scaling commands a kiosk obeys: only signed ones from an allowed cloud producer, for it, unexpired."""

from __future__ import annotations

import time

import pytest
from aiokafka.structs import ConsumerRecord

from cloud_workers.control import scaling_command
from edge_agent.agent import CommandPolicy, authorize_command
from schemas import RejectReason, ScalingCommand
from streams import ChainState, EnvelopeRejected, Keyring, VerifiedEvent, envelope_hash, open_envelope, seal

POLICY = CommandPolicy(kiosk_id="k1", groups=("lobby",), allowed_producers=("autoscaler-1",))


def _event(keyring: Keyring, cmd: ScalingCommand, producer: str = "autoscaler-1", hospital: str = "") -> VerifiedEvent:
    rec, _ = seal(
        cmd, signing_key=keyring.signing_key(producer), chain=ChainState(), hospital_id=hospital, data_key=None
    )
    raw = rec.SerializeToString()
    opened = open_envelope(raw, keyring)
    record = ConsumerRecord("control.scaling.v1", 0, 0, 0, 0, b"k1", raw, None, 0, len(raw), ())
    return VerifiedEvent(record, opened.envelope, envelope_hash(opened.envelope), opened.message)


def test_a_command_for_me_is_applied(keyring: Keyring) -> None:
    change = authorize_command(
        _event(keyring, scaling_command("k1", inference_workers=3, camera_fps=10)), POLICY, keyring
    )
    assert change is not None
    assert (change.inference_workers, change.camera_fps, change.max_batch) == (3, 10.0, None)


@pytest.mark.parametrize("target", ["group:lobby", "group:*"])
def test_group_commands(keyring: Keyring, target: str) -> None:
    assert authorize_command(_event(keyring, scaling_command(target, max_batch=4)), POLICY, keyring) is not None


def test_commands_for_others_are_ignored(keyring: Keyring) -> None:
    assert authorize_command(_event(keyring, scaling_command("k2", max_batch=4)), POLICY, keyring) is None
    assert authorize_command(_event(keyring, scaling_command("group:er", max_batch=4)), POLICY, keyring) is None


def _reason(keyring: Keyring, event: VerifiedEvent) -> int:
    with pytest.raises(EnvelopeRejected) as info:
        authorize_command(event, POLICY, keyring)
    return info.value.reason


def test_a_kiosk_cannot_command_kiosks(keyring: Keyring) -> None:
    event = _event(keyring, scaling_command("k1", inference_workers=9), producer="k3", hospital="H1")
    assert _reason(keyring, event) == RejectReason.REJECT_REASON_UNAUTHORIZED


def test_an_unlisted_service_cannot_command_kiosks(keyring: Keyring) -> None:
    event = _event(keyring, scaling_command("k1", inference_workers=9), producer="rogue-service")
    assert _reason(keyring, event) == RejectReason.REJECT_REASON_UNAUTHORIZED


def test_expired_and_out_of_range_commands_are_rejected(keyring: Keyring) -> None:
    expired = scaling_command("k1", inference_workers=2)
    expired.expires_at = time.time_ns() - 1
    assert _reason(keyring, _event(keyring, expired)) == RejectReason.REJECT_REASON_STALE
    huge = scaling_command("k1", inference_workers=10_000)
    assert _reason(keyring, _event(keyring, huge)) == RejectReason.REJECT_REASON_MALFORMED
