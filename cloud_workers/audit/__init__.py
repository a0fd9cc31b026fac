"""Audit replay: verify a topic's envelopes and chains without decrypting anything, and report it."""

from cloud_workers.audit._ledger import Mark, StreamLedger, StreamSummary
from cloud_workers.audit._replay import ReplayReport, replay_topic
from cloud_workers.audit._report_html import render_report, write_report

__all__ = ["Mark", "ReplayReport", "StreamLedger", "StreamSummary", "render_report", "replay_topic", "write_report"]
