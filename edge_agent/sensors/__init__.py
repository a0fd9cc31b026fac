"""Kiosk sensors: the serial RFID reader (frame parsing, debouncing, reconnecting reader) and its emulator."""

from __future__ import annotations

from edge_agent.sensors._rfid_emulator import EmittedCard, RfidEmulator, RfidEmulatorConfig
from edge_agent.sensors._rfid_frames import (
    CardFrame,
    Debouncer,
    FrameFormat,
    FrameParserStats,
    RfidFrameParser,
    em4100_checksum,
    encode_em4100,
    encode_line,
)
from edge_agent.sensors._rfid_reader import FrameCallback, RfidReader, RfidReaderConfig, RfidReaderStats

__all__ = [
    "CardFrame",
    "Debouncer",
    "EmittedCard",
    "FrameCallback",
    "FrameFormat",
    "FrameParserStats",
    "RfidEmulator",
    "RfidEmulatorConfig",
    "RfidFrameParser",
    "RfidReader",
    "RfidReaderConfig",
    "RfidReaderStats",
    "em4100_checksum",
    "encode_em4100",
    "encode_line",
]
