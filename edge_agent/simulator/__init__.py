"""A simulated kiosk: synthetic identity checks through the real envelope, outbox and sender."""

from edge_agent.simulator._kiosk import SimulatedKiosk, SimulatedKioskConfig, synthetic_identity_check

__all__ = ["SimulatedKiosk", "SimulatedKioskConfig", "synthetic_identity_check"]
