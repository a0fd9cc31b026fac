"""The kiosk agent: card reads and liveness observations are fused and published; commands are applied.

Everything here is wiring: the reader (``edge_agent.sensors``), the fusion rules (``edge_agent.fusion``), the
liveness pipeline and triage (plugged in as ``LivenessSource`` / ``TriageBackend``), the durable outbox
(``streams``). Each part is its own task; a crash in one is logged loudly and stops the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from edge_agent.agent._commands import CommandPolicy, ScalingChange, authorize_command
from edge_agent.agent._config import KioskConfig
from edge_agent.agent._telemetry import KioskGauges, StageTimer, build_telemetry
from edge_agent.fusion import CardRead as FusionCard
from edge_agent.fusion import ClockOffsetConfig, ClockOffsetEstimator, Decision, Fuser, FusionConfig, Verdict
from edge_agent.fusion import LivenessResult as FusionLiveness
from edge_agent.sensors import CardFrame, RfidReader, RfidReaderConfig
from schemas import CardRead as CardReadMsg
from schemas import (
    Chunk,
    IdentityCheck,
    IdentityVerdict,
    LivenessResult,
    ModelVersion,
    RejectReason,
    ScalingCommand,
    Telemetry,
)
from streams import (
    CONTROL_SCALING,
    FL_MODELS,
    KIOSK_IDENTITY,
    KIOSK_INFERENCE,
    KIOSK_TELEMETRY,
    BusMetrics,
    BusSettings,
    ConsumerConfig,
    EnvelopeConsumer,
    EnvelopeRejected,
    Keyring,
    Outbox,
    OutboxSender,
    Reassembler,
    SealRequest,
    VerifiedEvent,
    run_consumer,
    supervise,
)

__all__ = ["EdgeAgent", "LivenessObservation", "LivenessSource", "ModelSink", "TriageBackend"]

log = logging.getLogger(__name__)

_VERDICTS = {
    Verdict.VERIFIED: IdentityVerdict.IDENTITY_VERDICT_VERIFIED,
    Verdict.NO_FACE: IdentityVerdict.IDENTITY_VERDICT_NO_FACE,
    Verdict.NOT_LIVE: IdentityVerdict.IDENTITY_VERDICT_NOT_LIVE,
    Verdict.OUTSIDE_WINDOW: IdentityVerdict.IDENTITY_VERDICT_OUTSIDE_WINDOW,
    Verdict.AMBIGUOUS: IdentityVerdict.IDENTITY_VERDICT_AMBIGUOUS,
}


@dataclass(frozen=True, slots=True)
class LivenessObservation:
    """One processed camera frame, as the agent fuses it."""

    #: Capture stamp (camera clock).
    captured_at_ns: int
    face_found: bool
    #: P(live); None: a face without a score yet (its track is younger than the model's history), never 0.0.
    live_score: float | None
    face_box: tuple[int, int, int, int] | None
    model_version: str
    #: Detection + preprocessing + model time for this frame.
    latency_ns: int = 0
    #: When the frame reached the kiosk (kiosk clock), for the online clock-offset estimate; None: not known.
    received_at_ns: int | None = None


class LivenessSource(Protocol):
    """Camera + face detection + liveness model: yields one observation per processed frame."""

    def observations(self) -> Any: ...  # AsyncIterator[LivenessObservation]

    def set_fps(self, fps: float) -> None: ...

    async def aclose(self) -> None: ...


class TriageBackend(Protocol):
    """Ranks departments for selected symptoms and builds the ``InferenceResult`` to publish."""

    async def infer(self, request_id: str, symptoms: list[str]) -> Any: ...  # schemas.InferenceResult

    def resize(self, workers: int) -> None: ...

    def set_max_batch(self, max_batch: int) -> None: ...

    @property
    def queue_depth(self) -> int: ...

    @property
    def capacity_per_s(self) -> float: ...

    async def aclose(self) -> None: ...


#: Receives a new model version (name, version, weight bytes); returns once it is serving or raises.
ModelSink = Callable[[str, int, bytes], Awaitable[None]]


class EdgeAgent:
    def __init__(
        self,
        config: KioskConfig,
        settings: BusSettings,
        keyring: Keyring,
        metrics: BusMetrics,
        *,
        liveness: LivenessSource | None = None,
        triage: TriageBackend | None = None,
        model_sinks: dict[str, ModelSink] | None = None,
        synthetic: bool = False,
    ) -> None:
        self.config = config
        self._settings = settings
        self._keyring = keyring
        self._metrics = metrics
        self._synthetic = synthetic
        self._data_key = keyring.latest_data_key(config.hospital_id)
        self.outbox = Outbox(
            settings.state_dir / config.kiosk_id / "outbox.db", signing_key=keyring.signing_key(config.kiosk_id)
        )
        self.sender = OutboxSender(self.outbox, settings, metrics)
        fusion = config.fusion
        self.fuser = Fuser(
            FusionConfig(
                window_ns=int(fusion.window_ms * 1e6),
                lateness_ns=int(fusion.lateness_ms * 1e6),
                clock_offset_ns=int(fusion.clock_offset_ms * 1e6),
                live_threshold=config.liveness.threshold,
                conflict_score=min(0.5, config.liveness.threshold),
            )
        )
        self.clock = ClockOffsetEstimator(
            ClockOffsetConfig(
                window=fusion.offset_window, min_samples=fusion.offset_min_samples, percentile=fusion.offset_percentile
            )
        )
        self.rfid = RfidReader(
            RfidReaderConfig(
                port=config.rfid.port,
                baudrate=config.rfid.baudrate,
                debounce_ms=config.rfid.debounce_ms,
                frame_formats=tuple(config.rfid.formats),  # type: ignore[arg-type]
                line_min_chars=config.rfid.line_min_chars,
                line_max_chars=config.rfid.line_max_chars,
                line_lengths=tuple(config.rfid.line_lengths),
                line_alphabet=config.rfid.line_alphabet,  # type: ignore[arg-type]
            ),
            on_frame=self._on_card,
        )
        self.liveness = liveness
        self.triage = triage
        self._model_sinks = model_sinks or {}
        self._reassembler = Reassembler()
        self.timer = StageTimer()
        self._gauges = KioskGauges(metrics.registry, config.kiosk_id)
        self._policy = CommandPolicy(
            kiosk_id=config.kiosk_id,
            groups=tuple(config.commands.groups),
            allowed_producers=tuple(config.commands.allowed_producers),
        )
        self.commands = EnvelopeConsumer(
            ConsumerConfig(
                topics=[CONTROL_SCALING.name, FL_MODELS.name],
                group_id=f"kiosk-{config.kiosk_id}",
                worker=config.kiosk_id,
                decrypt=True,
                auto_offset_reset="latest",
            ),
            settings,
            keyring,
            metrics,
            self._on_command,
        )
        self._tasks: list[asyncio.Task[Any]] = []
        self.identity_checks = 0
        #: Per stream, [first, last] ranges of this run's sequence numbers routed to the hospital (not telemetry).
        self.routed_seqs: dict[str, list[list[int]]] = {}
        self.inferences = 0
        self.camera_frames = 0
        self.applied: list[ScalingChange] = []
        self.models: dict[str, int] = {}
        self._clock_offset_ns = int(fusion.clock_offset_ms * 1e6)
        self._clock_offset_estimated = False
        self._last_obs: dict[int, LivenessObservation] = {}
        self._final: dict[str, Any] | None = None
        self._command_stop = asyncio.Event()

    # --- inputs -------------------------------------------------------------------------------------

    async def _on_card(self, frame: CardFrame) -> None:
        self.fuser.add_card(FusionCard(card_number=frame.card_number, read_at_ns=frame.arrived_at_ns))

    async def _camera_loop(self) -> None:
        assert self.liveness is not None
        async for obs in self.liveness.observations():
            self.camera_frames += 1
            self.timer.observe("liveness", obs.latency_ns / 1e9)
            self.timer.observe("capture_to_liveness", (time.time_ns() - obs.captured_at_ns) / 1e9)
            if obs.received_at_ns is not None:
                self._track_clock(obs.captured_at_ns, obs.received_at_ns)
            self.fuser.add_liveness(
                FusionLiveness(captured_at_ns=obs.captured_at_ns, face_found=obs.face_found, live_score=obs.live_score)
            )
            self._last_obs[obs.captured_at_ns] = obs
            if len(self._last_obs) > 256:
                self._last_obs.pop(next(iter(self._last_obs)))

    def _track_clock(self, captured_at_ns: int, received_at_ns: int) -> None:
        self.clock.add(captured_at_ns, received_at_ns)
        if not self.config.fusion.estimate_clock_offset:
            return
        estimate = self.clock.estimate()
        if estimate is not None and estimate != self._clock_offset_ns:
            self._clock_offset_ns = estimate
            self._clock_offset_estimated = True
            self.fuser.set_clock_offset(estimate)

    async def _fusion_loop(self) -> None:
        while True:
            decisions = self.fuser.poll(time.time_ns())
            if decisions:
                await self._publish_decisions(decisions)
            await asyncio.sleep(0.01)

    async def _publish_decisions(self, decisions: list[Decision]) -> None:
        started = time.perf_counter()
        requests = [
            SealRequest(
                topic=KIOSK_IDENTITY.name,
                key=self.config.kiosk_id.encode(),
                message=self._identity_check(d),
                hospital_id=self.config.hospital_id,
                data_key=self._data_key,
            )
            for d in decisions
        ]
        self._record_routed(KIOSK_IDENTITY.name, await asyncio.to_thread(self.outbox.put, requests))
        stored = time.time_ns()
        for d in decisions:
            # Includes the fusion wait (window + lateness) by design: a decision is final only then.
            self.timer.observe("card_to_outbox", (stored - d.card.read_at_ns) / 1e9)
            if d.liveness is not None:
                self.timer.observe("capture_to_outbox", (stored - d.liveness.captured_at_ns) / 1e9)
        self.sender.notify()
        self.identity_checks += len(requests)
        self.timer.observe("outbox", time.perf_counter() - started)

    def _identity_check(self, d: Decision) -> IdentityCheck:
        msg = IdentityCheck(
            kiosk_id=self.config.kiosk_id,
            hospital_id=self.config.hospital_id,
            card=CardReadMsg(
                kiosk_id=self.config.kiosk_id,
                card_number=d.card.card_number,
                read_at=d.card.read_at_ns,
            ),
            verdict=_VERDICTS[d.verdict],
            skew_ns=abs(d.skew_ns or 0),
            window_ns=self.fuser.config.window_ns,
            synthetic=self._synthetic,
        )
        if d.liveness is not None:
            obs = self._last_obs.get(d.liveness.captured_at_ns)
            msg.liveness.CopyFrom(
                LivenessResult(
                    kiosk_id=self.config.kiosk_id,
                    captured_at=d.liveness.captured_at_ns,
                    face_found=d.liveness.face_found,
                    live_score=d.liveness.live_score or 0.0,
                    unscored=d.liveness.face_found and d.liveness.live_score is None,
                    face_box=list(obs.face_box) if obs and obs.face_box else [],
                    model_version=obs.model_version if obs else "",
                )
            )
        return msg

    def _record_routed(self, stream: str, seqs: list[int]) -> None:
        """Remember which sequence numbers carry patient events (routed to the hospital), as ranges."""
        ranges = self.routed_seqs.setdefault(stream, [])
        for seq in seqs:
            if ranges and ranges[-1][1] == seq - 1:
                ranges[-1][1] = seq
            else:
                ranges.append([seq, seq])

    # --- triage -------------------------------------------------------------------------------------

    async def triage_request(self, request_id: str, symptoms: list[str]) -> Any:
        """Rank departments for a patient's symptoms and publish the result on ``kiosk.inference.v1``."""
        if self.triage is None:
            raise RuntimeError("this kiosk runs no triage model")
        started = time.perf_counter()
        result = await self.triage.infer(request_id, symptoms)
        self.timer.observe("triage", time.perf_counter() - started)
        self.timer.observe("request", time.perf_counter() - started)
        req = SealRequest(
            topic=KIOSK_INFERENCE.name,
            key=self.config.kiosk_id.encode(),
            message=result,
            hospital_id=self.config.hospital_id,
            data_key=self._data_key,
        )
        self._record_routed(KIOSK_INFERENCE.name, await asyncio.to_thread(self.outbox.put, [req]))
        self.sender.notify()
        self.inferences += 1
        return result

    async def _serve_triage(self, listen: str) -> None:
        """Local line-JSON endpoint for the kiosk UI: {"request_id", "symptoms": [...]} -> the ranking."""
        import json

        host, _, port = listen.rpartition(":")

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            from google.protobuf.json_format import MessageToDict

            try:
                while line := await reader.readline():
                    try:
                        req = json.loads(line)
                        result = await self.triage_request(str(req["request_id"]), list(req["symptoms"]))
                        reply: dict[str, Any] = MessageToDict(result, preserving_proto_field_name=True)
                    except (ValueError, KeyError, TypeError) as exc:
                        reply = {"error": str(exc)}
                    writer.write(json.dumps(reply).encode() + b"\n")
                    await writer.drain()
            finally:
                writer.close()

        server = await asyncio.start_server(handle, host or "127.0.0.1", int(port))
        async with server:
            await server.serve_forever()

    # --- commands and models ------------------------------------------------------------------------

    async def _on_command(self, event: VerifiedEvent) -> None:
        if isinstance(event.message, (Chunk, ModelVersion)):
            producer = event.envelope.producer_id
            info = self._keyring.producers.get(producer)
            if producer not in self.config.commands.model_producers or info is None or info.hospital_id:
                raise EnvelopeRejected(
                    RejectReason.REJECT_REASON_UNAUTHORIZED,
                    f"{producer} may not install models",
                    producer_id=producer,
                    seq=event.envelope.seq,
                )
        if isinstance(event.message, Chunk):
            assembled = self._reassembler.add(event.message)
            if assembled is not None:
                await self._on_model(ModelVersion.FromString(assembled.payload))
            return
        if isinstance(event.message, ModelVersion):
            await self._on_model(event.message)
            return
        if isinstance(event.message, ScalingCommand):
            change = authorize_command(event, self._policy, self._keyring)
            if change is not None:
                self.apply(change)

    def apply(self, change: ScalingChange) -> None:
        """Apply a scaling change to the running parts (each field only if given)."""
        if change.inference_workers and self.triage is not None:
            self.triage.resize(change.inference_workers)
        if change.max_batch and self.triage is not None:
            self.triage.set_max_batch(change.max_batch)
        if change.camera_fps and self.liveness is not None:
            self.liveness.set_fps(change.camera_fps)
        self.applied.append(change)
        log.info("%s: applied command %s", self.config.kiosk_id, change.command_id)

    async def _on_model(self, version: ModelVersion) -> None:
        sink = self._model_sinks.get(version.model_name)
        if sink is None:
            return  # a model this kiosk does not serve
        if version.version <= self.models.get(version.model_name, 0):
            return
        try:
            await sink(version.model_name, version.version, bytes(version.weights))
        except Exception:  # the old version keeps serving; the failure is logged and counted
            log.exception("%s: model %s v%d rejected", self.config.kiosk_id, version.model_name, version.version)
            self._metrics.reject(FL_MODELS.name, "model_rejected")
            return
        self.models[version.model_name] = version.version

    # --- telemetry ----------------------------------------------------------------------------------

    def telemetry(self, outbox_depth: int) -> Telemetry:
        """The telemetry record now (load, latencies, the clock offset in use and how it was obtained)."""
        return build_telemetry(
            kiosk_id=self.config.kiosk_id,
            hospital_id=self.config.hospital_id,
            timer=self.timer,
            queue_depth=self.triage.queue_depth if self.triage else 0,
            outbox_depth=outbox_depth,
            clock_offset_ns=self._clock_offset_ns,
            clock_offset_estimated=self._clock_offset_estimated,
            clock_offset_samples=self.clock.samples,
            clock_offset_spread_ns=self.clock.spread(),
            capacity_per_s=self.triage.capacity_per_s if self.triage else 0.0,
        )

    async def _telemetry_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.telemetry.interval_s)
            depth, _ = await asyncio.to_thread(self.outbox.depth)
            msg = self.telemetry(depth)
            self._gauges.update(msg)
            req = SealRequest(
                topic=KIOSK_TELEMETRY.name,
                key=self.config.kiosk_id.encode(),
                message=msg,
                hospital_id=self.config.hospital_id,
                data_key=None,
            )
            await asyncio.to_thread(self.outbox.put, [req])
            self.sender.notify()

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.sender.start()
        await self.rfid.start()
        await self.commands.start()

        def task(coro: Awaitable[Any], name: str) -> None:
            self._tasks.append(supervise(asyncio.ensure_future(coro)))
            self._tasks[-1].set_name(name)

        task(self._fusion_loop(), "fusion")
        task(self._telemetry_loop(), "telemetry")
        task(run_consumer(self.commands, self._command_stop), "commands")
        if self.liveness is not None:
            task(self._camera_loop(), "camera")
        if self.triage is not None and self.config.triage.listen:
            task(self._serve_triage(self.config.triage.listen), "triage-endpoint")

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set or a part crashes (then raise its error)."""
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({stopper, *self._tasks}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for t in done:
            if t is not stopper and not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]

    async def stop(self, drain_s: float = 30.0) -> bool:
        """Stop inputs, publish the last decisions, drain the outbox; True if nothing is left unsent."""
        await self.rfid.stop()
        if self.liveness is not None:
            await self.liveness.aclose()
        self._command_stop.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.commands.stop()
        remaining = self.fuser.flush()
        if remaining:
            await self._publish_decisions(remaining)
        if self.triage is not None:
            await self.triage.aclose()
        drained = await self.sender.drain(drain_s)
        await self.sender.stop()
        self._final = self.stats()
        self.outbox.close()
        return drained

    def stats(self) -> dict[str, Any]:
        if self._final is not None:
            return self._final
        depth, _ = self.outbox.depth()
        rfid = self.rfid.stats()
        return {
            "service": self.config.kiosk_id,
            "hospital_id": self.config.hospital_id,
            "identity_checks": self.identity_checks,
            "inferences": self.inferences,
            "outbox_depth": depth,
            "cards": rfid.frames,
            "rfid_connected": rfid.connected,
            "commands_applied": len(self.applied),
            "camera_frames": self.camera_frames,
            "stages_ms": {
                k: {"p50": round(a, 3), "p99": round(b, 3)} for k, (a, b) in self.timer.percentiles().items()
            },
            "published_seqs": {stream: [list(r) for r in ranges] for stream, ranges in self.routed_seqs.items()},
            "models": dict(self.models),
            "ready": self.commands.assigned.is_set(),
        }
