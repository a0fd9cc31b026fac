"""The gateway's exactly-once output on brokers with transactions (Apache Kafka): consume-transform-produce.

One Kafka transaction per input batch holds the forwarded envelopes, the gateway-signed audit records, the
chain links the batch changed (on the compacted ``gateway.chains.v1``) and the input offsets
(``send_offsets_to_transaction``). Either all of it becomes visible to ``read_committed`` readers or none of it
does, so a gateway killed at any point restarts from the last committed batch with chains, audit chain and
offsets that agree, and hospitals see each event exactly once on the wire, not only in effect.

State lives on the broker rather than on the gateway's disk, so any gateway instance can take over a partition:
on every assignment the gateway re-reads ``gateway.chains.v1`` (read_committed) for the links other instances
committed. The outbox path (``Gateway`` without ``transactional``) stays for brokers without transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from streams import AUDIT, BatchItem, BusSettings, ChainState, SealRequest, seal, seal_batch
from streams._catalog import GATEWAY_CHAINS
from streams._chain import ChainLink
from streams._keys import SigningKey
from streams._sender import make_transactional_producer, send_rows

__all__ = ["ChainStateTopic", "TransactionalOutput"]

log = logging.getLogger(__name__)


def _link_key(producer_id: str, stream: str) -> bytes:
    return f"{producer_id}\x1f{stream}".encode()


def _encode(link: ChainLink) -> bytes:
    return json.dumps(
        {
            "producer_id": link.producer_id,
            "stream": link.stream,
            "last_seq": link.last_seq,
            "last_hash": link.last_hash.hex(),
            "last_ts": link.last_ts,
            "recent": [[seq, digest.hex()] for seq, digest in list(link.recent.items())[-64:]],
        },
        separators=(",", ":"),
    ).encode()


def _decode(raw: bytes) -> ChainLink:
    from collections import OrderedDict

    d: dict[str, Any] = json.loads(raw)
    return ChainLink(
        str(d["producer_id"]),
        str(d["stream"]),
        int(d["last_seq"]),
        bytes.fromhex(d["last_hash"]),
        int(d["last_ts"]),
        "",
        OrderedDict((int(s), bytes.fromhex(h)) for s, h in d["recent"]),
    )


class ChainStateTopic:
    """Reads the committed chain links (and each gateway's own audit chain) from ``gateway.chains.v1``."""

    def __init__(self, settings: BusSettings, topic: str = GATEWAY_CHAINS.name) -> None:
        self._settings = settings
        self.topic = topic

    async def load(self, timeout_s: float = 120.0) -> tuple[list[ChainLink], dict[str, ChainState]]:
        """Every committed link, and the audit chain of every gateway (``audit_chains[gateway_id]``).

        Waits while another producer's open transaction holds the topic's last stable offset back (at most
        the transaction timeout); raises ``TimeoutError`` rather than return state it could not read whole."""
        consumer = AIOKafkaConsumer(
            **self._settings.kafka_kwargs(), group_id=None, enable_auto_commit=False, isolation_level="read_committed"
        )
        await consumer.start()
        links: dict[bytes, ChainLink] = {}
        audit: dict[str, ChainState] = {}
        try:
            parts = (await consumer._client.fetch_all_metadata()).partitions_for_topic(self.topic) or set()
            tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
            if not tps:
                return [], {}
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            pending = {tp for tp in tps if ends[tp] > 0}
            deadline = asyncio.get_running_loop().time() + timeout_s
            while pending:
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"could not read {self.topic} to its end in {timeout_s:g}s")
                batches = await consumer.getmany(*pending, timeout_ms=500)
                for records in batches.values():
                    for r in records:
                        key = r.key or b""
                        if key.startswith(b"audit\x1f"):
                            d = json.loads(r.value or b"{}")
                            audit[key.decode().split("\x1f", 1)[1]] = ChainState(
                                int(d["seq"]), bytes.fromhex(d["prev_hash"])
                            )
                        elif r.value:
                            links[key] = _decode(r.value)
                for tp in list(pending):
                    # Transaction markers take offsets too: done once the position reaches the end.
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
                if pending and not batches:
                    log.info(
                        "still reading %s (position, end): %s",
                        self.topic,
                        {tp.partition: (await consumer.position(tp), ends[tp]) for tp in pending},
                    )
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
        log.info("loaded %d chain links and %d audit chains from %s", len(links), len(audit), self.topic)
        return list(links.values()), audit


class TransactionalOutput:
    """Commits one gateway batch (forwards, audits, links, offsets) as one Kafka transaction."""

    def __init__(
        self,
        settings: BusSettings,
        signing_key: SigningKey,
        *,
        group_id: str,
        transactional_id: str,
        audit_chain: ChainState,
        state_topic: str = GATEWAY_CHAINS.name,
        batch_sign: bool = True,
    ) -> None:
        self._settings = settings
        self._signing_key = signing_key
        self._group_id = group_id
        self._transactional_id = transactional_id
        self._state_topic = state_topic
        self.audit_chain = audit_chain
        #: One Merkle batch signature per transaction's audit records (``seal_batch``) instead of one each.
        self.batch_sign = batch_sign
        self._producer: AIOKafkaProducer | None = None
        self.committed_batches = 0

    async def start(self) -> None:
        if self._producer is None:
            producer = make_transactional_producer(self._settings, self._transactional_id)
            await producer.start()  # fences an older incarnation's open transaction
            self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), timeout=10)

    async def commit(
        self,
        raw: Iterable[tuple[str, bytes, bytes]],
        audits: Iterable[SealRequest],
        links: Iterable[ChainLink],
        offsets: dict[tuple[str, int], int],
    ) -> None:
        """Publish the batch atomically; raises ``KafkaError`` (after aborting) when the broker fails it."""
        assert self._producer is not None, "start() first"
        producer = self._producer
        chain = self.audit_chain
        requests = list(audits)
        if self.batch_sign and requests:
            items = [BatchItem(req.message, AUDIT.name, req.hospital_id, req.data_key) for req in requests]
            recs, chains = seal_batch(items, signing_key=self._signing_key, chains={AUDIT.name: chain})
            chain = chains[AUDIT.name]
        else:
            recs = []
            for req in requests:
                rec, chain = seal(
                    req.message, signing_key=self._signing_key, chain=chain, hospital_id=req.hospital_id,
                    data_key=req.data_key, stream=AUDIT.name,
                )  # fmt: skip
                recs.append(rec)
        sealed = [(req.key, rec.SerializeToString()) for req, rec in zip(requests, recs, strict=True)]
        await producer.begin_transaction()
        try:
            rows: list[tuple[str, bytes | None, bytes]] = list(raw)
            rows += [(AUDIT.name, key, value) for key, value in sealed]
            rows += [(self._state_topic, _link_key(link.producer_id, link.stream), _encode(link)) for link in links]
            if sealed:
                me = f"audit\x1f{self._signing_key.producer_id}".encode()
                state = json.dumps({"seq": chain.seq, "prev_hash": chain.prev_hash.hex()}).encode()
                rows.append((self._state_topic, me, state))
            await asyncio.gather(*(future for future, _ in await send_rows(producer, rows)))
            await producer.send_offsets_to_transaction(
                {TopicPartition(t, p): OffsetAndMetadata(o, "") for (t, p), o in offsets.items()}, self._group_id
            )
            await producer.commit_transaction()
        except BaseException as exc:
            log.warning("gateway transaction failed (%s); aborting", type(exc).__name__)
            with contextlib.suppress(Exception):
                await producer.abort_transaction()
            if isinstance(exc, KafkaError | TimeoutError | OSError):
                # The producer may be fenced or broken: start a fresh one (same transactional id) next time.
                await self.stop()
            raise
        self.audit_chain = chain
        self.committed_batches += 1
