"""Kiosk side: sensors, vision, fusion, inference engines, outbox, command handling, FL client."""

__all__: list[str] = []
