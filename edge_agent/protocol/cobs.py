"""Consistent Overhead Byte Stuffing (Cheshire and Baker, 1999): removes every 0x00
from a byte string so that 0x00 can delimit frames. Owns the byte transform only;
knows nothing about delimiters, CRCs or bodies (framing.py adds those)."""

from edge_agent.protocol.errors import CobsError

_BLOCK = 254  # data bytes a single code byte can announce (code 0xFF = 254 bytes, no zero)
_ZERO = b"\x00"


def max_encoded_size(size: int) -> int:
    """Longest COBS encoding of `size` bytes: one code byte, plus one per full block."""
    return size + 1 + size // _BLOCK


def cobs_encode(data: bytes) -> bytes:
    """Encode `data`; the result contains no 0x00 and is at most max_encoded_size(len(data))."""
    out = bytearray()
    start = 0
    end = len(data)
    while True:
        zero = data.find(_ZERO, start)
        stop = end if zero < 0 else zero
        while stop - start >= _BLOCK:
            out.append(0xFF)
            out += data[start : start + _BLOCK]
            start += _BLOCK
        out.append(stop - start + 1)
        out += data[start:stop]
        if zero < 0:
            return bytes(out)
        start = zero + 1


def cobs_decode(data: bytes | bytearray) -> bytearray:
    """Decode one COBS block sequence (without delimiters); raise CobsError if malformed.

    Two passes, so the output is allocated once at its exact size: on a board a 4 KiB
    frame decoded by appending would reallocate and fragment a small heap."""
    end = len(data)
    if end == 0:
        raise CobsError(0, "empty input (the encoding of nothing is one byte, 0x01)")
    zero = data.find(_ZERO)
    if zero >= 0:
        raise CobsError(zero, "0x00 inside an encoded frame")
    size = 0
    pos = 0
    while pos < end:
        code = data[pos]
        stop = pos + code
        if stop > end:
            raise CobsError(pos, f"block of {code - 1} bytes runs past the end ({end - pos - 1} remain)")
        size += code - 1
        pos = stop
        if code != 0xFF and pos < end:
            size += 1
    out = bytearray(size)
    source = memoryview(data)
    pos = 0
    filled = 0
    while pos < end:
        code = data[pos]
        out[filled : filled + code - 1] = source[pos + 1 : pos + code]
        filled += code - 1
        pos += code
        if code != 0xFF and pos < end:
            filled += 1  # out is zero-filled: the 0x00 the code stood for is already there
    return out
