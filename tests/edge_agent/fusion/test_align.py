"""Card/face fusion: the rules at their boundaries, and seeded streams with skew, jitter and reordering."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

import edge_agent.fusion as fusion
from edge_agent.fusion import (
    CardRead,
    Decision,
    Fuser,
    FusionConfig,
    LivenessResult,
    Verdict,
    estimate_clock_offset,
    fuse_batch,
)

pytestmark = pytest.mark.timeout(60)

MS = 1_000_000
W = 50 * MS
L = 100 * MS
C = 2 * W
N = 4 * W
T0 = 1_700_000_000_000_000_000


def face(at: int, score: float = 0.99, found: bool = True) -> LivenessResult:
    return LivenessResult(captured_at_ns=at, face_found=found, live_score=score)


def one(cards: list[CardRead], results: list[LivenessResult], **cfg: object) -> list[Decision]:
    return fuse_batch(cards, results, FusionConfig(**cfg))  # type: ignore[arg-type]


def test_public_surface() -> None:
    assert set(fusion.__all__) == {
        "CardRead",
        "ClockOffsetConfig",
        "ClockOffsetEstimator",
        "Decision",
        "Fuser",
        "FusionConfig",
        "LivenessResult",
        "Verdict",
        "estimate_clock_offset",
        "fuse_batch",
    }


# --- the rules at their boundaries --------------------------------------------------------------------------


@pytest.mark.parametrize("d", [-W, W, 0, -W + 1, W - 1])
def test_a_live_face_within_the_window_inclusive_verifies(d: int) -> None:
    card = CardRead("1234567890123", T0)
    [decision] = one([card], [face(T0 + d)])
    assert decision.verdict is Verdict.VERIFIED
    assert decision.skew_ns == d
    assert decision.liveness == face(T0 + d)


@pytest.mark.parametrize(
    ("d", "verdict"),
    [
        (W + 1, "OUTSIDE_WINDOW"),
        (-W - 1, "OUTSIDE_WINDOW"),
        (N, "OUTSIDE_WINDOW"),
        (-N, "OUTSIDE_WINDOW"),
        (N + 1, "NO_FACE"),
        (-N - 1, "NO_FACE"),
    ],
)
def test_faces_outside_the_window(d: int, verdict: str) -> None:
    [decision] = one([CardRead("C", T0)], [face(T0 + d)])
    assert decision.verdict == verdict
    assert decision.skew_ns == (d if verdict == "OUTSIDE_WINDOW" else None)


def test_results_without_a_face_never_count() -> None:
    [decision] = one([CardRead("C", T0)], [face(T0, 1.0, found=False), face(T0 + 3 * W, 1.0, found=False)])
    assert decision.verdict is Verdict.NO_FACE
    assert decision.liveness is None


def test_the_threshold_is_strict() -> None:
    [at] = one([CardRead("C", T0)], [face(T0 + 5 * MS, 0.98)])
    [above] = one([CardRead("C", T0)], [face(T0 + 5 * MS, 0.9800001)])
    assert at.verdict is Verdict.NOT_LIVE
    assert above.verdict is Verdict.VERIFIED
    [best] = one([CardRead("C", T0)], [face(T0 - 40 * MS, 0.97), face(T0 + 1 * MS, 0.6), face(T0 + 90 * MS, 0.999)])
    assert best.verdict is Verdict.NOT_LIVE
    assert best.liveness == face(T0 - 40 * MS, 0.97)  # the highest-scoring candidate


def test_candidates_that_disagree_strongly_are_ambiguous() -> None:
    [conflict] = one([CardRead("C", T0)], [face(T0 + 2 * MS, 0.995), face(T0 - 30 * MS, 0.49)])
    [fine] = one([CardRead("C", T0)], [face(T0 + 2 * MS, 0.995), face(T0 - 30 * MS, 0.5)])
    assert conflict.verdict is Verdict.AMBIGUOUS
    assert conflict.liveness == face(T0 + 2 * MS, 0.995)
    assert fine.verdict is Verdict.VERIFIED


@pytest.mark.parametrize(("gap", "verdict"), [(0, "AMBIGUOUS"), (C, "AMBIGUOUS"), (C + 1, "VERIFIED")])
def test_two_different_cards_within_two_windows_are_ambiguous(gap: int, verdict: str) -> None:
    cards = [CardRead("A", T0), CardRead("B", T0 + gap)]
    decisions = one(cards, [face(T0), face(T0 + gap)])
    assert [d.verdict for d in decisions] == [verdict, verdict]


def test_a_repeat_of_the_same_card_competes_with_nobody() -> None:
    cards = [CardRead("A", T0), CardRead("A", T0 + 10 * MS)]
    assert [d.verdict for d in one(cards, [face(T0 + 4 * MS)])] == ["VERIFIED", "VERIFIED"]


def test_nearest_wins_then_higher_score_then_earlier() -> None:
    [d] = one([CardRead("C", T0)], [face(T0 + 20 * MS, 0.999), face(T0 - 5 * MS, 0.99)])
    assert d.skew_ns == -5 * MS
    [d] = one([CardRead("C", T0)], [face(T0 + 10 * MS, 0.999), face(T0 - 10 * MS, 0.99)])
    assert d.skew_ns == 10 * MS
    [d] = one([CardRead("C", T0)], [face(T0 + 10 * MS, 0.99), face(T0 - 10 * MS, 0.99)])
    assert d.skew_ns == -10 * MS


def test_the_clock_offset_moves_camera_stamps_onto_the_kiosk_clock() -> None:
    offset = 5_123 * MS  # kiosk = camera + offset
    [d] = one([CardRead("C", T0)], [face(T0 - offset + 10 * MS)], clock_offset_ns=offset)
    assert (d.verdict, d.skew_ns) == (Verdict.VERIFIED, 10 * MS)
    [d] = one([CardRead("C", T0)], [face(T0 + 10 * MS)], clock_offset_ns=offset)
    assert d.verdict is Verdict.NO_FACE


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        FusionConfig(window_ns=0)
    with pytest.raises(ValueError):
        FusionConfig(conflict_score=0.99)
    with pytest.raises(ValueError):
        FusionConfig(near_factor=0)


# --- incremental: when decisions become final ----------------------------------------------------------------


def test_a_decision_with_a_candidate_is_final_after_two_windows_plus_lateness() -> None:
    fuser = Fuser(FusionConfig(lateness_ns=L))
    fuser.add_card(CardRead("C", T0))
    fuser.add_liveness(face(T0 + 10 * MS))
    assert fuser.poll(T0 + C + L - 1) == []
    [d] = fuser.poll(T0 + C + L)
    assert d.verdict is Verdict.VERIFIED
    assert fuser.poll(T0 + 10 * N) == []
    assert fuser.pending == 0


def test_no_face_waits_for_the_near_horizon_and_a_late_face_still_counts() -> None:
    fuser = Fuser(FusionConfig(lateness_ns=L))
    fuser.add_card(CardRead("C", T0))
    assert fuser.poll(T0 + C + L) == []
    fuser.add_liveness(face(T0 + N))  # stamped N after the read, arriving within its lateness
    assert fuser.poll(T0 + N + L - 1) == []
    [d] = fuser.poll(T0 + N + L)
    assert d.verdict is Verdict.OUTSIDE_WINDOW
    assert fuser.late_events == 0


def test_a_rival_read_arriving_late_within_the_allowance_still_makes_both_ambiguous() -> None:
    fuser = Fuser(FusionConfig(lateness_ns=L))
    fuser.add_card(CardRead("A", T0))
    fuser.add_liveness(face(T0))
    assert fuser.poll(T0 + C + L - 1) == []
    fuser.add_card(CardRead("B", T0 + C))
    assert [d.verdict for d in fuser.poll(T0 + C + L)] == ["AMBIGUOUS"]
    assert [d.verdict for d in fuser.poll(T0 + 2 * C + L)] == ["AMBIGUOUS"]


def test_events_breaking_the_lateness_promise_are_counted_and_flush_decides_the_rest() -> None:
    fuser = Fuser(FusionConfig(lateness_ns=L))
    fuser.poll(T0)
    fuser.add_liveness(face(T0 - L - 1))
    fuser.add_card(CardRead("C", T0 - L - 1))
    assert fuser.late_events == 2
    fuser.add_card(CardRead("D", T0 + 10 * N))
    assert fuser.poll(T0 + C - 2) == []
    assert [d.card.card_number for d in fuser.poll(T0 + C - 1)] == ["C"]  # due at its stamp + C + L
    assert [d.card.card_number for d in fuser.flush()] == ["D"]
    assert fuser.pending == 0


# --- clock offset -------------------------------------------------------------------------------------------


def test_estimate_clock_offset_is_a_robust_median() -> None:
    assert estimate_clock_offset([(0, 10)]) == 10
    assert estimate_clock_offset([(0, 10), (0, 20)]) == 15
    rng = random.Random(3)
    true = 3_217 * MS
    pairs = [(c, c + true + rng.randint(-MS // 2, MS // 2)) for c in range(0, 41 * 33 * MS, 33 * MS)]
    for i in rng.sample(range(41), 20):  # just under half are wild
        pairs[i] = (pairs[i][0], pairs[i][1] + rng.choice([-1, 1]) * rng.randint(50, 500) * MS)
    assert abs(estimate_clock_offset(pairs) - true) <= MS // 2
    with pytest.raises(ValueError):
        estimate_clock_offset([])


# --- seeded streams: skew, jitter, reordering against a ground truth -----------------------------------------

FRAME = 33_333_333  # 30 fps
GUARD = 4 * MS  # no frame lies closer than this to a window edge, and nearest frames differ by twice it


@dataclass
class Truth:
    verdict: Verdict
    chosen: LivenessResult | None  # None: no result chosen, or not checked (rival reads)
    check_chosen: bool = True


def safe_phase(rng: random.Random) -> int:
    # Frames sit at t + phase + j·FRAME. W = 1.5 frames and N = 6 frames, so a phase at least GUARD away from
    # 0, FRAME/2 and FRAME keeps every frame GUARD away from ±W and ±N and makes the nearest frame unique.
    while True:
        phase = rng.randint(GUARD, FRAME - GUARD)
        if abs(phase - FRAME // 2) >= GUARD:
            return phase


def scene(rng: random.Random, t: int, kind: str) -> tuple[list[CardRead], list[tuple[int, bool, float]], list[Truth]]:
    """Card reads and frames (design kiosk time, face, score) around ``t``, with the verdicts they must get."""
    phase = safe_phase(rng)
    grid = [t + phase + j * FRAME for j in range(-15, 16)]

    def live() -> float:
        return rng.uniform(0.985, 0.999)

    frames = [(k, True, live()) for k in grid]
    cards = [CardRead(f"{rng.randrange(10**13):013d}", t)]

    def nearest_live(read_at: int, fs: list[tuple[int, bool, float]]) -> tuple[int, bool, float]:
        pool = [f for f in fs if f[1] and f[2] > 0.98 and abs(f[0] - read_at) <= W]
        return min(pool, key=lambda f: abs(f[0] - read_at))

    if kind == "verified":
        if rng.random() < 0.5:  # the nearest frame is a shade below the threshold: the next one is chosen
            i = min(range(len(grid)), key=lambda j: abs(grid[j] - t))
            frames[i] = (grid[i], True, 0.9)
        return cards, frames, [Truth(Verdict.VERIFIED, _as_result(nearest_live(t, frames)))]
    if kind == "not_live":
        frames = [(k, True, rng.uniform(0.6, 0.97)) for k in grid]
        best = max((f for f in frames if abs(f[0] - t) <= W), key=lambda f: f[2])
        return cards, frames, [Truth(Verdict.NOT_LIVE, _as_result(best))]
    if kind == "no_face":
        frames = [(k, abs(k - t) > N + 100 * MS, live()) for k in grid]
        return cards, frames, [Truth(Verdict.NO_FACE, None)]
    if kind == "camera_dropout":
        return cards, [], [Truth(Verdict.NO_FACE, None)]
    if kind == "outside":
        side = rng.choice([-1, 1])
        frames = [(k, W < side * (k - t) <= N, live()) for k in grid]
        near = min((f for f in frames if f[1]), key=lambda f: abs(f[0] - t))
        return cards, frames, [Truth(Verdict.OUTSIDE_WINDOW, _as_result(near))]
    if kind == "conflict":
        in_window = [j for j, k in enumerate(grid) if abs(k - t) <= W]
        j = rng.choice(in_window)
        frames[j] = (grid[j], True, rng.uniform(0.05, 0.45))
        return cards, frames, [Truth(Verdict.AMBIGUOUS, _as_result(nearest_live(t, frames)))]
    if kind == "rivals":
        cards.append(CardRead(f"{rng.randrange(10**13):013d}", t + rng.randint(0, C - GUARD)))
        return cards, frames, [Truth(Verdict.AMBIGUOUS, None, check_chosen=False)] * 2
    if kind == "same_card_twice":
        again = CardRead(cards[0].card_number, t + rng.choice([1, 2]) * FRAME)
        cards.append(again)
        truths = [Truth(Verdict.VERIFIED, _as_result(nearest_live(c.read_at_ns, frames))) for c in cards]
        return cards, frames, truths
    if kind == "two_cards_apart":
        other = CardRead(f"{rng.randrange(10**13):013d}", t + rng.choice([4, 5]) * FRAME)  # > C + GUARD
        cards.append(other)
        truths = [Truth(Verdict.VERIFIED, _as_result(nearest_live(c.read_at_ns, frames))) for c in cards]
        return cards, frames, truths
    raise AssertionError(kind)


def _as_result(frame: tuple[int, bool, float]) -> LivenessResult:
    # Placeholder keyed by design time; replaced by the camera-clock result in the stream.
    return LivenessResult(frame[0], frame[1], frame[2])


KINDS = [
    "verified",
    "not_live",
    "no_face",
    "camera_dropout",
    "outside",
    "conflict",
    "rivals",
    "same_card_twice",
    "two_cards_apart",
]


@pytest.mark.parametrize("seed", range(8))
def test_seeded_streams_match_the_ground_truth(seed: int) -> None:
    rng = random.Random(seed)
    true_offset = rng.randint(-5_000, 5_000) * MS + rng.randint(0, MS)  # kiosk = camera + offset
    sync = [(c, c + true_offset + rng.randint(-MS // 3, MS // 3)) for c in range(0, 61 * FRAME, FRAME)]
    for i in rng.sample(range(61), 25):
        sync[i] = (sync[i][0], sync[i][1] + rng.choice([-1, 1]) * rng.randint(20, 800) * MS)
    config = FusionConfig(clock_offset_ns=estimate_clock_offset(sync), lateness_ns=L)

    events: list[tuple[int, float, CardRead | LivenessResult]] = []  # (arrival on the kiosk clock, tiebreak, event)
    truth: dict[CardRead, Truth] = {}
    kinds = [KINDS[i % len(KINDS)] for i in range(60)]
    rng.shuffle(kinds)
    for n, kind in enumerate(kinds):
        t = T0 + n * 2_000 * MS + rng.randint(0, 300 * MS)
        cards, frames, truths = scene(rng, t, kind)
        by_design: dict[int, LivenessResult] = {}
        for k, found, score in frames:
            result = LivenessResult(k - true_offset + rng.randint(-MS, MS), found, score)  # camera clock, jitter
            by_design[k] = result
            events.append((k + rng.randint(20 * MS, 95 * MS), rng.random(), result))
        for card, want in zip(cards, truths, strict=True):
            chosen = by_design[want.chosen.captured_at_ns] if want.chosen is not None else None
            truth[card] = Truth(want.verdict, chosen, want.check_chosen)
            events.append((card.read_at_ns + rng.randint(0, 5 * MS), rng.random(), card))
    events.sort(key=lambda e: (e[0], e[1]))

    fuser = Fuser(config)
    emitted: dict[CardRead, tuple[int, Decision]] = {}

    def poll(now: int) -> None:
        for d in fuser.poll(now):
            assert d.card not in emitted, "two decisions for one read"
            emitted[d.card] = (now, d)

    next_tick = events[0][0]
    for arrival, _, event in events:
        while next_tick <= arrival:  # the kiosk polls every 10 ms
            poll(next_tick)
            next_tick += 10 * MS
        poll(arrival)
        if isinstance(event, CardRead):
            fuser.add_card(event)
        else:
            fuser.add_liveness(event)
    end = events[-1][0] + 10 * N
    while next_tick <= end:
        poll(next_tick)
        next_tick += 10 * MS

    assert fuser.late_events == 0
    assert fuser.pending == 0
    assert set(emitted) == set(truth)
    for card, want in truth.items():
        at, decision = emitted[card]
        assert decision.verdict is want.verdict, (card, decision, want)
        if want.check_chosen:
            assert decision.liveness == want.chosen, (card, decision, want)
        if want.chosen is not None and want.check_chosen:
            assert decision.skew_ns is not None
            assert decision.skew_ns == want.chosen.captured_at_ns + config.clock_offset_ns - card.read_at_ns
        # Emitted at the first tick at or after the moment it became final, never before.
        early = want.verdict not in (Verdict.NO_FACE, Verdict.OUTSIDE_WINDOW)
        final_at = card.read_at_ns + (C if early else N) + L
        assert final_at <= at < final_at + 10 * MS + 1
    # The incremental fuser agrees with deciding everything at once.
    batch = fuse_batch(
        [e for _, _, e in events if isinstance(e, CardRead)],
        [e for _, _, e in events if isinstance(e, LivenessResult)],
        config,
    )
    assert {d.card: d for d in batch} == {card: d for card, (_, d) in emitted.items()}
