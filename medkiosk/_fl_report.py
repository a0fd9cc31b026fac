"""``medkiosk fl privacy-report``: read the rounds and models topics and recompute every published privacy figure."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

__all__ = ["fl_privacy_report"]


async def _read(args: argparse.Namespace) -> dict[str, Any]:
    from cloud_workers.federated._privacy_report import privacy_report
    from schemas import Chunk, ModelVersion, RoundAnnouncement, RoundClose
    from streams import FlTopics, LogReader, Reassembler
    from streams._service import service_context

    ctx = service_context(args, "fl-privacy-report")
    topics = FlTopics.suffixed(args.topic_suffix) if args.topic_suffix else FlTopics()
    reader = LogReader(ctx.settings, ctx.keyring, ctx.metrics, worker="fl-privacy-report")
    await reader.start()
    anns: list[RoundAnnouncement] = []
    closes: list[RoundClose] = []
    versions: list[ModelVersion] = []
    reassembler = Reassembler()
    try:
        tps = [*await reader.partitions(topics.rounds), *await reader.partitions(topics.models)]
        await reader.assign(dict.fromkeys(tps))
        for event in await reader.read_to_end():
            msg, producer = event.message, event.envelope.producer_id
            if event.record.topic == topics.rounds and producer == args.coordinator_id:
                if isinstance(msg, RoundAnnouncement):
                    anns.append(msg)
                elif isinstance(msg, RoundClose):
                    closes.append(msg)
            elif event.record.topic == topics.models and producer == args.models_id:
                done = reassembler.add(msg) if isinstance(msg, Chunk) else None
                if done is not None:
                    versions.append(ModelVersion.FromString(done.payload))
                elif isinstance(msg, ModelVersion):
                    versions.append(msg)
    finally:
        await reader.stop()
    return privacy_report(args.model, anns, closes, versions)


def fl_privacy_report(args: argparse.Namespace) -> int:
    """Print the report as one JSON line; exit 1 when a published figure does not hold up."""
    report = asyncio.run(_read(args))
    print(json.dumps(report, default=float), flush=True)
    return 0 if report["ok"] else 1
