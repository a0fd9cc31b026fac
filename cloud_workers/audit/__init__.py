"""Auditor tools: replay and verify a topic (aiokafka, bounded ranges), follow the audit trail live (FastStream),
and report what was found as HTML and JSON. Nothing here decrypts."""

from cloud_workers.audit._follow import AuditFollower, AuditFollowerConfig, audit_to_json, dead_letter_to_json
from cloud_workers.audit._ledger import Mark, StreamLedger, StreamSummary
from cloud_workers.audit._replay import ReplayReport, replay_topic
from cloud_workers.audit._report_html import render_report, write_report

__all__ = [
    "AuditFollower",
    "AuditFollowerConfig",
    "Mark",
    "ReplayReport",
    "StreamLedger",
    "StreamSummary",
    "audit_to_json",
    "dead_letter_to_json",
    "render_report",
    "replay_topic",
    "write_report",
]
