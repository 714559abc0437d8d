"""Stream framing with real bytes: round trips, garbage, truncated and oversize frames."""

from __future__ import annotations

import pytest
from meshtastic.protobuf import mesh_pb2

from station.mesh.sim.errors import FrameTooLarge
from station.mesh.sim.framing import MAX_FRAME_SIZE, START1, START2, FrameDecoder, encode_frame


def _to_radio(nonce: int) -> bytes:
    return bytes(mesh_pb2.ToRadio(want_config_id=nonce).SerializeToString())


def _is_to_radio(payload: bytes) -> bool:
    message = mesh_pb2.ToRadio()
    try:
        message.ParseFromString(payload)
    except Exception:
        return False
    return message.WhichOneof("payload_variant") is not None


def test_round_trip_of_several_frames_in_one_chunk() -> None:
    payloads = [_to_radio(n) for n in (1, 2**31, 69420)] + [b"", b"\x94\xc3" * 10]
    wire = b"".join(encode_frame(p) for p in payloads)
    assert FrameDecoder().feed(wire) == payloads


def test_header_is_magic_and_big_endian_length() -> None:
    frame = encode_frame(b"x" * 300)
    assert frame[:4] == bytes((START1, START2, 0x01, 0x2C))


def test_frames_split_byte_by_byte_are_reassembled() -> None:
    payloads = [_to_radio(7), _to_radio(8)]
    decoder = FrameDecoder()
    out: list[bytes] = []
    for byte in b"".join(encode_frame(p) for p in payloads):
        out += decoder.feed(bytes([byte]))
    assert out == payloads
    assert decoder.pending == 0


def test_wake_up_bytes_and_log_text_before_a_frame_are_skipped() -> None:
    decoder = FrameDecoder()
    garbage = bytes([START2] * 32) + b"INFO | boot\r\n" + bytes([START1, 0x00, START1])
    assert decoder.feed(garbage + encode_frame(_to_radio(5))) == [_to_radio(5)]
    assert decoder.skipped_bytes == len(garbage)


def test_oversize_length_is_a_false_start() -> None:
    decoder = FrameDecoder()
    bogus = bytes((START1, START2, 0x02, 0x01))  # 513 bytes: over the limit
    assert decoder.feed(bogus + encode_frame(_to_radio(9))) == [_to_radio(9)]


def test_truncated_frame_is_rescanned_when_its_payload_does_not_parse() -> None:
    decoder = FrameDecoder(accept=_is_to_radio)
    good = encode_frame(_to_radio(11))
    # a header that claims 6 bytes, then only 2 arrive before the next frame starts
    truncated = bytes((START1, START2, 0x00, 0x06)) + b"\xff\xff"
    wire = truncated + good + encode_frame(_to_radio(12))
    assert decoder.feed(wire) == [_to_radio(11), _to_radio(12)]
    assert decoder.rejected_frames == 1


def test_resync_after_silence_recovers_a_frame_swallowed_by_a_long_claim() -> None:
    decoder = FrameDecoder(accept=_is_to_radio)
    truncated = bytes((START1, START2, 0x01, 0x00))  # claims 256 bytes that never come
    assert decoder.feed(truncated + encode_frame(_to_radio(13))) == []
    assert decoder.pending > 0
    assert decoder.resync() == [_to_radio(13)]
    assert decoder.pending == 0


def test_incomplete_header_waits_for_more_bytes() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(_to_radio(3))
    assert decoder.feed(frame[:1]) == []
    assert decoder.feed(frame[1:3]) == []
    assert decoder.feed(frame[3:]) == [_to_radio(3)]


def test_encoding_more_than_the_limit_raises_with_the_sizes() -> None:
    with pytest.raises(FrameTooLarge) as caught:
        encode_frame(b"\x00" * (MAX_FRAME_SIZE + 1))
    assert (caught.value.size, caught.value.limit) == (MAX_FRAME_SIZE + 1, MAX_FRAME_SIZE)


def test_garbage_only_leaves_nothing_buffered() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(bytes(range(0x00, 0x90)) * 4) == []
    assert decoder.pending == 0
