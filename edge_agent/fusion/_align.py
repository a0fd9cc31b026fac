"""Pure card/face fusion: join each card read with the liveness results captured around it, on one clock.

Notation: a card read at ``t`` (kiosk clock); a liveness result captured at ``c`` (camera clock) sits at
``k = c + clock_offset_ns`` on the kiosk clock (the offset in effect when the result was added) and at skew
``d = k - t``. ``W = window_ns``, ``C = 2·W`` (two reads whose ±W windows overlap could claim the same frame),
``N = near_factor·W``, ``T = live_threshold``, ``X = conflict_score``. A result is a *face* if ``face_found``;
a face is *live* if ``live_score > T`` (strictly: the seed accepts only *above* 0.98). A face whose
``live_score`` is None has no score yet (its track is younger than the model's history): it is a face, but
never live and never evidence *against* liveness, so it cannot make a check ``AMBIGUOUS`` (rule 4).

Rules, applied in order, give exactly one verdict per card read:

1. ``AMBIGUOUS``: another read of a *different* card number has ``|t' - t| <= C`` (a repeat of the same number
   is the same person and competes with nobody). Chosen: the nearest face with ``|d| <= W``, if any.
2. Candidates are the faces with ``|d| <= W`` (both ends inclusive). None: ``OUTSIDE_WINDOW`` if some face has
   ``|d| <= N`` (chosen: the nearest), else ``NO_FACE`` (chosen: none). Results without a face never count.
3. No live candidate: ``NOT_LIVE`` (chosen: the highest-scoring candidate, unscored ones last).
4. A live candidate and another *scored* candidate scoring below ``X``: ``AMBIGUOUS`` (the frames disagree strongly,
   e.g. a photo held up beside a live face). Chosen: the nearest live candidate.
5. Otherwise ``VERIFIED``. Chosen: the nearest live candidate.

"Nearest" is the smallest ``|d|``; ties go to the higher score, then the earlier capture. The ``Fuser`` decides
a read once nothing that arrives later can change the verdict, given that every event stamped ``s`` (kiosk
clock) is added before the first ``poll(now)`` with ``now >= s + lateness_ns``: at ``t + C + lateness_ns`` when
rule 1 applies or a candidate exists, else at ``t + max(C, N) + lateness_ns``. Events that break that promise
are still used where they can be, and counted in ``late_events``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

try:
    from enum import StrEnum
except ImportError:  # Python 3.10: JetPack 6's own interpreter, in the Jetson image
    from enum import Enum

    class StrEnum(str, Enum):  # type: ignore[no-redef]  # noqa: UP042 - enum.StrEnum is what 3.10 lacks
        """What 3.11's StrEnum is: members are their values, also under str() and format()."""

        def __str__(self) -> str:
            return str(self.value)


__all__ = [
    "CardRead",
    "Decision",
    "Fuser",
    "FusionConfig",
    "LivenessResult",
    "Verdict",
    "estimate_clock_offset",
    "fuse_batch",
]


class Verdict(StrEnum):
    """The outcome of one identity check (mirrors ``schemas.IdentityVerdict``)."""

    VERIFIED = "VERIFIED"
    NO_FACE = "NO_FACE"
    NOT_LIVE = "NOT_LIVE"
    OUTSIDE_WINDOW = "OUTSIDE_WINDOW"
    AMBIGUOUS = "AMBIGUOUS"


@dataclass(frozen=True, slots=True)
class CardRead:
    """A card read, stamped on the kiosk clock."""

    card_number: str
    read_at_ns: int


@dataclass(frozen=True, slots=True)
class LivenessResult:
    """A camera frame's face/liveness result, stamped on the camera clock; ``live_score`` None: not scored yet."""

    captured_at_ns: int
    face_found: bool
    live_score: float | None


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one card read; ``skew_ns`` is the chosen result's signed ``d`` (None when none chosen)."""

    card: CardRead
    verdict: Verdict
    reason: str
    liveness: LivenessResult | None
    skew_ns: int | None


@dataclass(frozen=True, kw_only=True)
class FusionConfig:
    """Alignment parameters; the defaults are the seed's (±50 ms, accept above 0.98)."""

    #: Add to a camera timestamp to get the kiosk time (see ``estimate_clock_offset``).
    clock_offset_ns: int = 0
    window_ns: int = 50_000_000
    live_threshold: float = 0.98
    #: How long after an event's timestamp it may still arrive (liveness inference, queues).
    lateness_ns: int = 100_000_000
    near_factor: int = 4
    conflict_score: float = 0.5

    def __post_init__(self) -> None:
        if self.window_ns <= 0 or self.lateness_ns < 0 or self.near_factor < 1:
            raise ValueError("need window_ns > 0, lateness_ns >= 0, near_factor >= 1")
        if not 0.0 <= self.conflict_score <= self.live_threshold <= 1.0:
            raise ValueError("need 0 <= conflict_score <= live_threshold <= 1")

    @property
    def contention_ns(self) -> int:
        return 2 * self.window_ns

    @property
    def near_ns(self) -> int:
        return self.near_factor * self.window_ns


def estimate_clock_offset(pairs: Iterable[tuple[int, int]]) -> int:
    """The camera->kiosk offset from ``(camera_ns, kiosk_ns)`` stamps of the same instants: the median difference.

    The median ignores outliers (a stalled frame, a scheduling hiccup) as long as fewer than half the pairs
    are off; with an even count it is the mean of the two middle values, rounded down.
    """
    diffs = sorted(kiosk - camera for camera, kiosk in pairs)
    if not diffs:
        raise ValueError("estimate_clock_offset needs at least one pair")
    mid = len(diffs) // 2
    return diffs[mid] if len(diffs) % 2 else (diffs[mid - 1] + diffs[mid]) // 2


def _score(result: LivenessResult) -> float:
    """The score for ordering: an unscored face sorts below every scored one."""
    return -1.0 if result.live_score is None else result.live_score


def _ms(ns: int) -> str:
    return f"{ns / 1e6:+.1f} ms"


def _decide(
    card: CardRead, others: Sequence[CardRead], results: Sequence[tuple[int, LivenessResult]], cfg: FusionConfig
) -> Decision:
    """Apply the module's rules; ``results`` are ``(kiosk_ns, result)`` pairs (any order, any range)."""
    t, w = card.read_at_ns, cfg.window_ns
    faces = [(k - t, r) for k, r in results if r.face_found]
    in_window = [(d, r) for d, r in faces if abs(d) <= w]

    def nearest(pairs: list[tuple[int, LivenessResult]]) -> tuple[int, LivenessResult]:
        return min(pairs, key=lambda p: (abs(p[0]), -_score(p[1]), p[0]))

    def decision(verdict: Verdict, reason: str, chosen: tuple[int, LivenessResult] | None) -> Decision:
        if chosen is None:
            return Decision(card, verdict, reason, None, None)
        return Decision(card, verdict, reason, chosen[1], chosen[0])

    rivals = [o for o in others if o.card_number != card.card_number and abs(o.read_at_ns - t) <= cfg.contention_ns]
    if rivals:
        rival = min(rivals, key=lambda o: (abs(o.read_at_ns - t), o.read_at_ns))
        reason = (
            f"card {rival.card_number} read {_ms(rival.read_at_ns - t)} away "
            f"(within ±{cfg.contention_ns / 1e6:.1f} ms): both could claim the same face"
        )
        return decision(Verdict.AMBIGUOUS, reason, nearest(in_window) if in_window else None)
    if not in_window:
        near = [(d, r) for d, r in faces if abs(d) <= cfg.near_ns]
        if near:
            chosen = nearest(near)
            reason = f"no face within ±{w / 1e6:.1f} ms; nearest face at {_ms(chosen[0])}"
            return decision(Verdict.OUTSIDE_WINDOW, reason, chosen)
        return decision(Verdict.NO_FACE, f"no face within ±{cfg.near_ns / 1e6:.1f} ms", None)
    live = [(d, r) for d, r in in_window if r.live_score is not None and r.live_score > cfg.live_threshold]
    if not live:
        best = min(in_window, key=lambda p: (-_score(p[1]), abs(p[0]), p[0]))
        if best[1].live_score is None:
            reason = f"{len(in_window)} face(s) in window, none scored yet (face track too young)"
        else:
            reason = (
                f"best of {len(in_window)} face(s) in window scores {best[1].live_score:.3f}, "
                f"not above {cfg.live_threshold:.3f}"
            )
        return decision(Verdict.NOT_LIVE, reason, best)
    chosen = nearest(live)
    assert chosen[1].live_score is not None
    worst = min(r.live_score for _, r in in_window if r.live_score is not None)
    if worst < cfg.conflict_score:
        reason = f"faces in window disagree: live {chosen[1].live_score:.3f} and {worst:.3f} (< {cfg.conflict_score})"
        return decision(Verdict.AMBIGUOUS, reason, chosen)
    reason = f"live face (score {chosen[1].live_score:.3f}) at {_ms(chosen[0])}"
    return decision(Verdict.VERIFIED, reason, chosen)


def fuse_batch(
    cards: Sequence[CardRead], results: Sequence[LivenessResult], config: FusionConfig | None = None
) -> list[Decision]:
    """Decide every read at once with everything known (the reference the incremental ``Fuser`` must match)."""
    cfg = config or FusionConfig()
    on_kiosk = [(r.captured_at_ns + cfg.clock_offset_ns, r) for r in results]
    return [_decide(c, cards, on_kiosk, cfg) for c in cards]


class Fuser:
    """Incremental fusion: add reads and results as they arrive, in any order; ``poll`` emits final decisions.

    Exactly one decision per ``add_card`` call, emitted by the first ``poll`` at which it is final (see the
    module docstring); within one poll, in read order. Memory is bounded by what the horizons still need.
    """

    def __init__(self, config: FusionConfig | None = None) -> None:
        self.config = config or FusionConfig()
        self._offset = self.config.clock_offset_ns
        self._seq = 0
        self._pending: list[tuple[int, int, CardRead]] = []
        self._cards: list[tuple[int, int, CardRead]] = []  # every read still within reach of a pending one
        self._results: list[tuple[int, int, LivenessResult]] = []
        self._now: int | None = None
        self.late_events = 0

    @property
    def pending(self) -> int:
        """Card reads still waiting for their decision."""
        return len(self._pending)

    def set_clock_offset(self, offset_ns: int) -> None:
        """Use a newly measured camera->kiosk offset for results added from now on."""
        self._offset = offset_ns

    def add_card(self, read: CardRead) -> None:
        """A card read (kiosk clock)."""
        self._note_lateness(read.read_at_ns)
        self._seq += 1
        entry = (read.read_at_ns, self._seq, read)
        bisect.insort(self._pending, entry)
        bisect.insort(self._cards, entry)

    def add_liveness(self, result: LivenessResult) -> None:
        """A liveness result (camera clock; converted with the current offset)."""
        kiosk_ns = result.captured_at_ns + self._offset
        self._note_lateness(kiosk_ns)
        self._seq += 1
        bisect.insort(self._results, (kiosk_ns, self._seq, result))

    def poll(self, now_ns: int) -> list[Decision]:
        """The decisions that became final by ``now_ns`` (kiosk clock)."""
        cfg = self.config
        self._now = now_ns if self._now is None else max(self._now, now_ns)
        early = cfg.contention_ns + cfg.lateness_ns
        late = max(cfg.contention_ns, cfg.near_ns) + cfg.lateness_ns
        out: list[Decision] = []
        keep: list[tuple[int, int, CardRead]] = []
        for entry in self._pending:
            t = entry[0]
            decision = self._decide(entry[2]) if now_ns >= t + early else None
            if decision is not None and (
                now_ns >= t + late or decision.verdict not in (Verdict.NO_FACE, Verdict.OUTSIDE_WINDOW)
            ):
                out.append(decision)
            else:
                keep.append(entry)
        self._pending = keep
        self._prune()
        return out

    def flush(self) -> list[Decision]:
        """Decide every pending read now with what is known (at shutdown)."""
        out = [self._decide(entry[2]) for entry in self._pending]
        self._pending = []
        return out

    def _decide(self, card: CardRead) -> Decision:
        cfg, t = self.config, card.read_at_ns
        reach = max(cfg.window_ns, cfg.near_ns)
        lo = bisect.bisect_left(self._results, (t - reach,))
        hi = bisect.bisect_right(self._results, (t + reach + 1,))
        results = [(k, r) for k, _, r in self._results[lo:hi]]
        lo = bisect.bisect_left(self._cards, (t - cfg.contention_ns,))
        hi = bisect.bisect_right(self._cards, (t + cfg.contention_ns + 1,))
        others = [c for _, _, c in self._cards[lo:hi] if c is not card]
        return _decide(card, others, results, cfg)

    def _note_lateness(self, stamp_ns: int) -> None:
        if self._now is not None and stamp_ns + self.config.lateness_ns < self._now:
            self.late_events += 1

    def _prune(self) -> None:
        # A read added later (on time) is stamped >= now - lateness and looks back at most max(C, N) from there;
        # a pending read looks back from its own stamp.
        cfg = self.config
        assert self._now is not None
        horizon = self._now - cfg.lateness_ns - max(cfg.contention_ns, cfg.near_ns)
        if self._pending:
            horizon = min(horizon, self._pending[0][0] - max(cfg.contention_ns, cfg.near_ns))
        cut = bisect.bisect_left(self._results, (horizon,))
        del self._results[:cut]
        cut = bisect.bisect_left(self._cards, (horizon,))
        del self._cards[:cut]
