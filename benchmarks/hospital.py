"""Hospital subscriber benchmark on the embedded broker: the FastStream app (decoder = envelope verification,
manual ack after each record's outcome, chain state written before each ack) against the bus's aiokafka
``EnvelopeConsumer`` (the same checks, offsets and chain state committed once per fetched batch). Prints one
JSON line.

    .venv/bin/python benchmarks/hospital.py [--events 2000]

Rates are measured from the first to the last delivered event (the group join is left out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from cloud_workers.hospital import Accepted, HospitalSubscriber, SubscriberConfig
from edge_agent.simulator import synthetic_identity_check
from streams import (
    KIOSK_IDENTITY,
    BusMetrics,
    BusSettings,
    ChainState,
    ConsumerConfig,
    EnvelopeConsumer,
    Keyring,
    VerifiedEvent,
    apply_topics,
    hospital_topic,
    init_dev_keys,
    run_consumer,
    seal,
    topics_for,
)
from streams.broker import EmbeddedBroker, EmbeddedBrokerConfig


def _sealed(keyring: Keyring, n: int) -> list[bytes]:
    rng = random.Random(0)
    sk, dk = keyring.signing_key("k1"), keyring.latest_data_key("H1")
    state, out = ChainState(), []
    for i in range(n):
        msg = synthetic_identity_check(rng, "k1", "H1", time.time_ns() + i)
        rec, state = seal(msg, signing_key=sk, chain=state, hospital_id="H1", data_key=dk, stream=KIOSK_IDENTITY.name)
        out.append(rec.SerializeToString())
    return out


async def _publish(settings: BusSettings, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=5)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(hospital_topic("H1"), v, key=b"k1") for v in values])
    finally:
        await producer.stop()


class _Clock:
    def __init__(self, n: int) -> None:
        self.n, self.seen, self.first, self.last = n, 0, 0.0, 0.0
        self.done = asyncio.Event()

    def tick(self) -> None:
        now = time.perf_counter()
        self.first = self.first or now
        self.last = now
        self.seen += 1
        if self.seen >= self.n:
            self.done.set()

    def rate(self) -> float:
        return round((self.seen - 1) / max(self.last - self.first, 1e-9), 1)


async def _faststream(settings: BusSettings, keyring: Keyring, n: int) -> float:
    clock = _Clock(n)

    async def sink(event: Accepted) -> None:
        clock.tick()

    sub = HospitalSubscriber(
        SubscriberConfig(hospital_id="H1", group_id="bench-faststream"), settings, keyring, BusMetrics("bench-fs"), sink
    )
    async with sub:
        await asyncio.wait_for(clock.done.wait(), timeout=600)
    return clock.rate()


async def _aiokafka(settings: BusSettings, keyring: Keyring, n: int) -> float:
    clock = _Clock(n)

    async def handle(event: VerifiedEvent) -> None:
        clock.tick()

    consumer = EnvelopeConsumer(
        ConsumerConfig(topics=[hospital_topic("H1")], group_id="bench-aiokafka", worker="bench-aiokafka"),
        settings,
        keyring,
        BusMetrics("bench-aio"),
        handle,
    )
    await consumer.start()
    try:
        await run_consumer_until(consumer, clock.done)
    finally:
        await consumer.stop()
    return clock.rate()


async def run_consumer_until(consumer: EnvelopeConsumer, done: asyncio.Event) -> None:
    await asyncio.wait_for(run_consumer(consumer, done), timeout=600)


async def main_async(events: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with EmbeddedBroker(EmbeddedBrokerConfig(state_dir=root / "broker")) as broker:
            init_dev_keys(root / "keys", hospitals=["H1"], kiosks={"k1": "H1"})
            keyring = Keyring.load(root / "keys")
            settings = BusSettings(
                bootstrap_servers=broker.bootstrap, keys_dir=root / "keys", state_dir=root / "state", topic_partitions=1
            )
            await apply_topics(settings, topics_for(["H1"]))
            await _publish(settings, _sealed(keyring, events))
            fs = await _faststream(settings, keyring, events)
            aio = await _aiokafka(settings, keyring, events)
    return {
        "benchmark": "hospital_subscriber",
        "events": events,
        "faststream_events_per_s": fs,
        "aiokafka_events_per_s": aio,
        "faststream_over_aiokafka": round(fs / aio, 3),
        "cpu": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args.events))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
