"""The RFID frame parser and debouncer: both wire formats, damage, splits, and random interleavings."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edge_agent.sensors as sensors
from edge_agent.sensors import (
    CardFrame,
    Debouncer,
    RfidFrameParser,
    em4100_checksum,
    encode_em4100,
    encode_line,
)

pytestmark = pytest.mark.timeout(60)

HEX = "0123456789ABCDEF"
# Bytes that can be neither part of a frame nor a frame start.
JUNK = bytes(b for b in range(256) if b != 0x02 and b not in b"0123456789abcdefABCDEF")
# Junk that also ends any partial frame or token (no line break, no ETX).
SEPARATORS = bytes(b for b in JUNK if b not in (0x0A, 0x0D, 0x03))


def cards(frames: list[CardFrame]) -> list[tuple[str, str]]:
    return [(f.card_number, f.frame_format) for f in frames]


def test_public_surface() -> None:
    assert set(sensors.__all__) == {
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
    }


def test_em4100_checksum_is_xor_of_the_data_bytes() -> None:
    assert em4100_checksum("0102030405") == f"{1 ^ 2 ^ 3 ^ 4 ^ 5:02X}"
    assert encode_em4100("62E3086CED") == b"\x0262E3086CED" + em4100_checksum("62E3086CED").encode() + b"\x03"
    with pytest.raises(ValueError, match="10 hex"):
        em4100_checksum("0102")


@pytest.mark.parametrize("crlf", [False, True])
def test_valid_em4100_frames(crlf: bool) -> None:
    parser = RfidFrameParser()
    data = encode_em4100("62E3086CED", crlf=crlf) + encode_em4100("0a1b2c3d4e", crlf=crlf)
    out = parser.feed(data, 7)
    assert out == [CardFrame("62E3086CED", "em4100", 7), CardFrame("0A1B2C3D4E", "em4100", 7)]
    assert parser.stats().frames == 2
    assert parser.stats().garbage_bytes == 0


@pytest.mark.parametrize("terminator", [b"\r", b"\n", b"\r\n"])
def test_valid_line_frames(terminator: bytes) -> None:
    parser = RfidFrameParser()
    data = b"\n" + encode_line("1234567890123", terminator) + encode_line("abcdef0123456", terminator)
    assert parser.feed(data, 3) == [CardFrame("1234567890123", "line", 3), CardFrame("ABCDEF0123456", "line", 3)]
    assert parser.stats().garbage_bytes == 0


def test_line_length_and_alphabet_are_configurable() -> None:
    parser = RfidFrameParser(frame_formats=["line"], line_min_chars=13, line_max_chars=13, line_alphabet="digits")
    data = b"\n123456789012\n" + b"1234567890123\n" + b"12345678901234\n" + b"123456789012A\n"
    assert cards(parser.feed(data, 0)) == [("1234567890123", "line")]
    assert parser.stats().garbage_bytes == 12 + 14 + 13
    with pytest.raises(ValueError):
        RfidFrameParser(line_min_chars=9, line_max_chars=8)
    with pytest.raises(ValueError):
        RfidFrameParser(frame_formats=[])


def test_bad_checksum_is_counted_and_dropped() -> None:
    parser = RfidFrameParser()
    data = encode_em4100("62E3086CED", bad_checksum=True) + encode_em4100("0102030405")
    assert cards(parser.feed(data, 0)) == [("0102030405", "em4100")]
    stats = parser.stats()
    assert (stats.frames, stats.bad_checksum, stats.garbage_bytes) == (1, 1, 0)


def test_garbage_between_frames_is_skipped_and_counted() -> None:
    parser = RfidFrameParser()
    data = (
        b"\x00\xff\x03zz"
        + encode_em4100("62E3086CED")
        + b"12\x024A"  # a short token, then a truncated em4100 frame
        + encode_em4100("0102030405")
        + b"\xfe\x81\r\n"
        + encode_line("1234567890123")
        + b"\x02\x02\x03\r"
        + encode_line("9876543210987")
    )
    assert cards(parser.feed(data, 0)) == [
        ("62E3086CED", "em4100"),
        ("0102030405", "em4100"),
        ("1234567890123", "line"),
        ("9876543210987", "line"),
    ]
    assert parser.stats().garbage_bytes > 0
    assert parser.stats().bad_checksum == 0


def test_a_line_holding_junk_is_dropped_whole() -> None:
    # The tail "567890123" would be a plausible number; taking it would invent a card.
    parser = RfidFrameParser()
    assert parser.feed(b"1234\xff567890123\r\n", 0) == []
    assert parser.feed(b"1234567890123\r\n", 1) == [CardFrame("1234567890123", "line", 1)]


def test_garbage_never_grows_the_buffer() -> None:
    parser = RfidFrameParser()
    for i in range(200):
        assert parser.feed(b"0123456789ABCDEF" * 64, i) == []
        assert parser.buffered <= 20
    assert parser.feed(b"\x02" + b"A" * 5000, 0) == []
    assert parser.buffered <= 14
    assert cards(parser.feed(b"\n" + encode_line("1234567890123"), 0)) == [("1234567890123", "line")]
    assert parser.stats().garbage_bytes == 200 * 1024 + 5001


@pytest.mark.parametrize(
    ("frame", "from_end"),  # from_end: where the completing byte (ETX or first line break) sits
    [
        (encode_em4100("62E3086CED"), 1),
        (encode_em4100("62E3086CED", crlf=True), 1),
        (encode_line("1234567890123", b"\n"), 1),
        (encode_line("1234567890123", b"\r\n"), 2),
    ],
)
def test_frames_split_at_every_byte_position(frame: bytes, from_end: int) -> None:
    stream = b"\xff\n" + frame
    complete_at = len(stream) - from_end
    for cut in range(len(stream) + 1):
        parser = RfidFrameParser()
        out = parser.feed(stream[:cut], 100) + parser.feed(stream[cut:], 200)
        assert len(out) == 1
        assert out[0].arrived_at_ns == (100 if complete_at < cut else 200)
    parser = RfidFrameParser()
    out = [f for i, b in enumerate(stream) for f in parser.feed(bytes([b]), i)]
    assert [f.arrived_at_ns for f in out] == [complete_at]


def test_reset_forgets_a_partial_frame_and_resynchronises() -> None:
    parser = RfidFrameParser()
    assert parser.feed(b"\n12345", 0) == []
    parser.reset()
    # Without the reset this would read as the 18-character number "123456789012345678"; after it, the bytes
    # before the first line break may be the tail of a frame, so they are dropped too.
    assert parser.feed(b"6789012345678\r\n", 1) == []
    assert cards(parser.feed(b"1234567890123\r\n", 2)) == [("1234567890123", "line")]


# --- property: valid frames and garbage, interleaved and cut anywhere --------------------------------------

hex_text = st.text(alphabet=HEX + "abcdef", min_size=10, max_size=10)
em_frame = st.builds(lambda c, crlf: ("em", c, crlf), hex_text, st.booleans())
line_frame = st.builds(
    lambda c, term: ("line", c, term),
    st.text(alphabet=HEX, min_size=8, max_size=20),
    st.sampled_from([b"\r", b"\n", b"\r\n"]),
)
separator = st.sampled_from(list(SEPARATORS)).map(lambda b: bytes([b]))
garbage_piece = st.one_of(
    st.binary(min_size=1, max_size=24).map(lambda b: bytes(x for x in b if x in JUNK) or b"\xff"),
    st.text(alphabet=HEX, min_size=1, max_size=7).map(str.encode),
    st.builds(lambda c: encode_em4100(c, bad_checksum=True), hex_text.map(str.upper)),
    st.builds(lambda c, n: b"\x02" + c.encode()[:n], hex_text, st.integers(0, 11)),
)
garbage = st.builds(lambda piece, sep: ("junk", piece + sep, None), garbage_piece, separator)
items = st.lists(st.one_of(em_frame, line_frame, garbage), max_size=30)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(items=items, cuts=st.lists(st.integers(0, 2000), max_size=12))
def test_interleaved_frames_and_garbage_yield_exactly_the_valid_frames(
    items: list[tuple[str, object, object]], cuts: list[int]
) -> None:
    stream = bytearray(b"\n")  # a fresh parser is out of sync until a line break or a frame start
    expected: list[tuple[str, str, int]] = []  # card, format, offset of the completing byte
    for i, (kind, a, b) in enumerate(items):
        if kind == "em":
            assert isinstance(a, str) and isinstance(b, bool)
            stream += encode_em4100(a, crlf=b)
            expected.append((a.upper(), "em4100", len(stream) - 1))
        elif kind == "line":
            assert isinstance(a, str) and isinstance(b, bytes)
            stream += encode_line(a, b)
            expected.append((a, "line", len(stream) - len(b)))
        else:
            assert isinstance(a, bytes)
            stream += a
            if i + 1 < len(items) and items[i + 1][0] == "line":
                stream += b"\n"  # a line right after junk needs a line break to be readable (by design)
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    parser = RfidFrameParser()
    out: list[CardFrame] = []
    for chunk_no, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        out += parser.feed(bytes(stream[lo:hi]), chunk_no)
    chunk_of = [next(n for n, hi in enumerate(bounds[1:]) if off < hi) for _, _, off in expected]
    assert [(f.card_number, f.frame_format, f.arrived_at_ns) for f in out] == [
        (card, fmt, chunk) for (card, fmt, _), chunk in zip(expected, chunk_of, strict=True)
    ]
    assert parser.buffered <= 20


damage_op = st.tuples(st.integers(0, 20), st.integers(0, 2), st.integers(0, 255))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    data=st.lists(st.tuples(hex_text, st.booleans()), min_size=1, max_size=12, unique_by=lambda t: t[0].upper()),
    damage=st.dictionaries(st.integers(0, 11), damage_op),
)
def test_damaged_em4100_frames_never_invent_a_card(
    data: list[tuple[str, bool]], damage: dict[int, tuple[int, int, int]]
) -> None:
    """One substitution, deletion or insertion per frame at most: a damaged frame is dropped or still reads
    as its own card (a case change, a dropped CR); it never reads as another card, nor spoils a neighbour."""
    frames = [bytearray(encode_em4100(c, crlf=crlf)) for c, crlf in data]
    damaged = {which for which in damage if which < len(frames)}
    for which in damaged:
        pos, op, byte = damage[which]
        frame = frames[which]
        pos %= len(frame)
        if op == 0:
            frame[pos] = byte
        elif op == 1:
            del frame[pos]
        else:
            frame.insert(pos, byte)
    parser = RfidFrameParser(frame_formats=["em4100"])
    out = [f.card_number for f in parser.feed(b"".join(frames), 0)]
    remaining = iter(enumerate(c.upper() for c, _ in data))
    matched = [next(i for i, c in remaining if c == card) for card in out]  # StopIteration: invented
    assert set(range(len(frames))) - damaged <= set(matched)


# --- debouncing -------------------------------------------------------------------------------------------


def test_debouncer_suppresses_repeats_within_a_sliding_window() -> None:
    d = Debouncer(window_ns=1000)
    a = [CardFrame("A", "line", t) for t in (0, 400, 800, 1200, 2199, 3200)]
    b = CardFrame("B", "line", 500)
    assert d.filter([a[0], a[1], b, a[2], a[3]]) == [a[0], b]
    # 2199 is within 1000 of 1200 (the window restarts at every sighting); 3200 is not within 1000 of 2199.
    assert d.filter([a[4], a[5]]) == [a[5]]
    assert d.suppressed == 4


def test_debouncer_boundary_and_clock_step_back() -> None:
    d = Debouncer(window_ns=1000)
    assert d.accept(CardFrame("A", "em4100", 5000))
    assert not d.accept(CardFrame("A", "em4100", 5999))
    assert d.accept(CardFrame("A", "em4100", 6999))  # exactly one window after the last sighting
    assert d.accept(CardFrame("A", "em4100", 10))  # the clock stepped back: let it through
    assert Debouncer(0).filter([CardFrame("A", "line", 1)] * 3) == [CardFrame("A", "line", 1)] * 3
