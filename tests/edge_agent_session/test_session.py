"""Sealed frames after the handshake: what opens, and every way a frame is refused."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.crypto.hmac_sha256 import hmac_sha256
from edge_agent.protocol import (
    FILE_CHUNK_SIZE,
    InvalidField,
    decode_frame,
    encode_frame,
    encode_message,
    mac_split,
    make,
)
from edge_agent.session import BadMac, Replay, Session
from tests.edge_agent_session import parties

PING = make("command", id=7, cmd="read_sensor", args={"sensor": "t1"})
SESSIONS = settings(max_examples=60, deadline=None)


@pytest.fixture(scope="module")
def pair() -> tuple[Session, Session]:
    """One handshake for the module; tests that count frames make their own."""
    return parties.handshake()


def _payload(msg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in msg.items() if k not in ("n", "mac")}


def test_sealed_messages_open_on_the_other_side_in_both_directions() -> None:
    station, board = parties.handshake()
    for i in range(3):
        opened = board.open(station.seal(PING))
        assert _payload(opened) == PING and opened["n"] == i
        reply = board.seal(make("result", id=7, ok=True, value=i))
        assert station.open(reply)["value"] == i


def test_a_sealed_body_survives_framing() -> None:
    station, board = parties.handshake()
    frame = encode_frame(station.seal(PING))
    assert board.open(decode_frame(frame[1:-1]))["id"] == 7


def test_seal_does_not_change_the_callers_message_and_replaces_n_and_mac() -> None:
    station, board = parties.handshake()
    original = dict(PING)
    board.open(station.seal({**PING, "n": 99, "mac": bytes(32)}))
    assert original == PING
    assert board.open(station.seal(PING))["n"] == 1


def test_a_replayed_frame_is_refused_and_the_session_continues() -> None:
    station, board = parties.handshake()
    frame = station.seal(PING)
    board.open(frame)
    with pytest.raises(Replay) as caught:
        board.open(frame)
    assert (caught.value.n, caught.value.expected_at_least) == (0, 1)
    assert board.open(station.seal(PING))["n"] == 1


def test_reordered_frames_are_refused_and_dropped_frames_are_not() -> None:
    station, board = parties.handshake()
    first, second, third = (station.seal(PING) for _ in range(3))
    assert board.open(second)["n"] == 1  # first was lost on the link
    with pytest.raises(Replay):
        board.open(first)
    assert board.open(third)["n"] == 2


@SESSIONS
@given(st.integers(0, 2**20))
def test_any_flipped_bit_is_refused(pair: tuple[Session, Session], position: int) -> None:
    station, board = pair
    frame = station.seal(PING)  # its length grows with n, so the position wraps around it
    bit = position % (len(frame) * 8)
    flipped = bytearray(frame)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(BadMac):
        board.open(bytes(flipped))
    board.open(frame)  # the forgery changed nothing


@pytest.mark.parametrize("cut", [1, 32, 38, 39])
def test_truncated_and_unsealed_bodies_are_refused(cut: int) -> None:
    station, board = parties.handshake()
    frame = station.seal(PING)
    with pytest.raises(BadMac):
        board.open(frame[:-cut])
    with pytest.raises(BadMac, match="no session mac"):
        board.open(encode_message(PING))
    with pytest.raises(BadMac):
        board.open(b"")


def test_a_frame_reflected_to_its_sender_is_refused() -> None:
    station, board = parties.handshake()
    to_board = station.seal(PING)
    with pytest.raises(BadMac):
        station.open(to_board)
    to_station = board.seal(make("result", id=7, ok=True))
    with pytest.raises(BadMac):
        board.open(to_station)


def test_a_frame_spliced_from_another_session_is_refused() -> None:
    station_a, board_a = parties.handshake()
    station_b, board_b = parties.handshake()
    with pytest.raises(BadMac):
        board_b.open(station_a.seal(PING))
    with pytest.raises(BadMac):
        station_a.open(board_b.seal(make("result", id=7, ok=True)))
    with pytest.raises(BadMac):
        station_b.open(board_a.seal(make("result", id=7, ok=True)))
    assert board_b.open(station_b.seal(PING))["n"] == 0


def test_an_authentic_frame_without_n_is_a_protocol_error() -> None:
    """seal() always sets n; only a broken peer holding the key sends a MAC without one."""
    key, other = bytes(range(32)), bytes(range(1, 33))
    receiver = Session(other, key, bytes(32))
    covered, _ = mac_split(encode_message({**PING, "mac": bytes(32)}))
    with pytest.raises(InvalidField, match="required in a session"):
        receiver.open(covered + hmac_sha256(key, covered))


def test_forged_frames_never_reach_the_cbor_decoder() -> None:
    """A forged body full of hostile CBOR (a 2**63-byte string head) fails the MAC first."""
    _, board = parties.handshake()
    hostile = b"\xbb\x7f\xff\xff\xff\xff\xff\xff\xff" + b"\x63mac\x58\x20" + bytes(32)
    with pytest.raises(BadMac, match="does not verify"):
        board.open(hostile)


values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20) | st.binary(max_size=40)
    | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@SESSIONS
@given(
    st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=6),
    st.integers(0, 2**64 - 1),
    st.binary(max_size=FILE_CHUNK_SIZE),
)
def test_any_message_content_round_trips(
    pair: tuple[Session, Session], readings: dict[str, Any], ts: int, chunk: bytes
) -> None:
    station, board = pair
    telemetry = make("telemetry", values=readings, ts=ts)
    assert _payload(station.open(board.seal(telemetry))) == telemetry
    file_chunk = make("file_chunk", xfer=1, off=ts, data=chunk)
    assert _payload(board.open(station.seal(file_chunk))) == file_chunk
