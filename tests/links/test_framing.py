"""Stream framing: round trips however the stream is split, and a real KISS capture."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from groundctl.links.framing import (
    CcsdsDecoder,
    CobsDecoder,
    LengthPrefixDecoder,
    SlipDecoder,
    cobs_encode,
    length_prefix_encode,
    slip_encode,
)
from groundctl.mdb.codec import primary_header

KISS = Path(__file__).parents[1] / "fixtures" / "kiss" / "example.kss"


def feed_in_pieces(decoder, stream: bytes, cuts: list[int]):
    frames = []
    start = 0
    for cut in [*sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]:
        frames += decoder.feed(stream[start:cut])
        start = cut
    return frames


frames_st = st.lists(st.binary(min_size=1, max_size=600), min_size=1, max_size=12)
cuts_st = st.lists(st.integers(0, 10_000), max_size=20)


@settings(max_examples=150, deadline=None)
@given(frames_st, cuts_st)
def test_slip_cobs_and_length_prefix_round_trip_however_split(frames, cuts):
    for encode, decoder in (
        (slip_encode, SlipDecoder),
        (cobs_encode, CobsDecoder),
        (length_prefix_encode, LengthPrefixDecoder),
    ):
        stream = b"".join(encode(f) for f in frames)
        got = feed_in_pieces(decoder(), stream, cuts)
        assert got == [(f, "") for f in frames], encode.__name__


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=10), cuts_st)
def test_space_packets_are_cut_by_their_length_field(payloads, cuts):
    packets = [primary_header(0x0800 | 5, n, 6 + len(p)) + p for n, p in enumerate(payloads)]
    got = feed_in_pieces(CcsdsDecoder(), b"".join(packets), cuts)
    assert got == [(p, "") for p in packets]


def test_real_kiss_capture_unescapes_to_its_stated_frames():
    data = KISS.read_bytes()
    assert data.count(b"\xdb\xdc") + data.count(b"\xdb\xdd") == 126
    decoder = SlipDecoder()
    frames = feed_in_pieces(decoder, data, list(range(0, len(data), 97)))
    assert len(frames) == 83 and all(problem == "" for _, problem in frames)
    assert {f[0] for f, _ in frames} == {0x00}  # KISS command byte: data frame, port 0
    assert Counter(len(f) - 1 for f, _ in frames) == {81: 81, 9: 1, 6: 1}
    assert decoder.pending() == b""
    # Re-encoding the payloads gives back the capture byte for byte.
    assert b"".join(slip_encode(f) for f, _ in frames) == data


def test_damaged_input_is_returned_with_its_reason():
    ((raw, problem),) = SlipDecoder().feed(b"\xc0ab\xdb\x41cd\xc0")
    assert raw == b"ab\xdb\x41cd" and problem == "bad escape at byte 2: 0xdb followed by 0x41"
    ((raw, problem),) = CobsDecoder().feed(b"\x05ab\x00")
    assert raw == b"\x05ab" and "cut short" in problem
    decoder = LengthPrefixDecoder(max_length=100)
    out = decoder.feed(length_prefix_encode(b"ok") + b"\xff\xff\xff\xffjunk")
    assert out[0] == (b"ok", "")
    assert out[1] == (b"\xff\xff\xff\xffjunk", "length prefix 4294967295 exceeds 100")
    assert decoder.feed(b"more") == [(b"more", "after a framing error")]
