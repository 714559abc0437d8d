"""Board-link frames: 0x00, COBS(body + CRC32(body) little-endian), 0x00.

Owns frame encoding and the incremental decoder that drops corrupted, truncated and
oversize frames, counts them and resynchronises at the next delimiter. Knows nothing
about CBOR or messages, and never touches a transport: bytes in, bodies out.
"""

import gc
import struct
from binascii import crc32

from edge_agent.protocol.cobs import cobs_decode, cobs_encode, max_encoded_size
from edge_agent.protocol.errors import ChecksumMismatch, FrameTooLarge, FrameTooShort, ProtocolError

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

# A board with a 64 KiB heap must hold, at once, the encoded frame, its COBS-decoded copy
# and the decoded message, for one frame arriving while the previous one is handled:
# 2 x 3 x 4 KiB = 24 KiB, leaving more than half the heap to the agent. File-transfer
# chunk sizes derive from this (messages.FILE_CHUNK_SIZE).
MAX_FRAME_BODY = 4096
DELIMITER = 0
CRC_SIZE = 4  # CRC32 (the zlib/Ethernet polynomial, binascii.crc32 on both runtimes)
# Bytes between two delimiters of the largest valid frame; anything longer is dropped.
MAX_ENCODED_FRAME = max_encoded_size(MAX_FRAME_BODY + CRC_SIZE)

_DELIM = b"\x00"


def encode_frame(body: bytes) -> bytes:
    """Wrap a message body for the wire; raises FrameTooLarge beyond MAX_FRAME_BODY."""
    if len(body) > MAX_FRAME_BODY:
        raise FrameTooLarge(len(body), MAX_FRAME_BODY)
    payload = bytes(body) + struct.pack("<I", crc32(body) & 0xFFFFFFFF)
    return _DELIM + cobs_encode(payload) + _DELIM


def decode_frame(encoded: bytes | bytearray, max_body: int = MAX_FRAME_BODY) -> bytes:
    """Check and unwrap the bytes between two delimiters; raise a FrameError if they are bad."""
    if len(encoded) > max_encoded_size(max_body + CRC_SIZE):
        raise FrameTooLarge(len(encoded), max_encoded_size(max_body + CRC_SIZE))
    payload = cobs_decode(encoded)
    if len(payload) < CRC_SIZE:
        raise FrameTooShort(len(payload), CRC_SIZE)
    size = len(payload) - CRC_SIZE
    if size > max_body:
        raise FrameTooLarge(size, max_body)
    body = memoryview(payload)[:size]
    expected = struct.unpack("<I", payload[size:])[0]
    actual = crc32(body) & 0xFFFFFFFF
    if expected != actual:
        raise ChecksumMismatch(expected, actual)
    return bytes(body)


class FrameDecoder:
    """Feed it bytes as they arrive; it returns the complete, CRC-checked bodies found.

    It starts unsynchronised: bytes before the first delimiter belong to a frame whose
    start it never saw (a board printing its boot banner, a link opened mid-frame) and
    are skipped, not counted as drops. A frame that grows past the encoded limit is
    dropped at once (the buffer never holds more than MAX_ENCODED_FRAME bytes) and the
    rest of it is skipped up to the next delimiter. feed() never raises on any bytes.
    """

    def __init__(self, max_body: int = MAX_FRAME_BODY) -> None:
        self.max_body = max_body
        self.max_encoded = max_encoded_size(max_body + CRC_SIZE)
        self._buffer = bytearray()
        self._skipping = True  # until the first delimiter, and after an oversize drop
        self.frames_ok = 0
        self.dropped_crc = 0
        self.dropped_oversize = 0
        self.dropped_malformed = 0  # bad COBS, or too short to hold the CRC
        self.dropped_memory = 0  # no heap to decode it (a board's fragmented heap)
        self.skipped_bytes = 0  # before the first delimiter and after an oversize drop
        self.last_error: ProtocolError | None = None

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame (never above max_encoded)."""
        return len(self._buffer)

    def counters(self) -> dict[str, int]:
        """The counters, for heartbeats and diagnostics."""
        return {
            "frames_ok": self.frames_ok,
            "dropped_crc": self.dropped_crc,
            "dropped_oversize": self.dropped_oversize,
            "dropped_malformed": self.dropped_malformed,
            "dropped_memory": self.dropped_memory,
            "skipped_bytes": self.skipped_bytes,
        }

    def reset(self) -> None:
        """Forget the partial frame and wait for a delimiter again (the link was reopened)."""
        self.skipped_bytes += len(self._buffer)
        self._buffer = bytearray()
        self._skipping = True

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Consume `data`; return the bodies of the frames it completed."""
        if isinstance(data, memoryview):
            data = bytes(data)
        elif not isinstance(data, (bytes, bytearray)):  # never bytes(n): an int would allocate n bytes
            return []
        bodies: list[bytes] = []
        start = 0
        end = len(data)
        while start < end:
            stop = data.find(_DELIM, start)
            if stop < 0:
                self._hold(data, start, end)
                break
            if self._buffer or self._skipping:
                self._hold(data, start, stop)
                self._complete(self._buffer, bodies)
                self._buffer = bytearray()
            else:  # the whole frame is in `data`: no copy into the buffer
                self._complete(data[start:stop], bodies)
            start = stop + 1
        return bodies

    def _hold(self, data: Any, start: int, stop: int) -> None:
        if self._skipping:
            self.skipped_bytes += stop - start
        elif len(self._buffer) + stop - start > self.max_encoded:
            self.dropped_oversize += 1
            self.last_error = FrameTooLarge(len(self._buffer) + stop - start, self.max_encoded)
            self.skipped_bytes += stop - start
            self._buffer = bytearray()
            self._skipping = True
        else:
            self._buffer += data[start:stop]

    def _complete(self, encoded: Any, bodies: list[bytes]) -> None:
        """A delimiter arrived: `encoded` is everything since the previous one."""
        if self._skipping:
            self._skipping = False
            return
        if not encoded:  # back-to-back delimiters: one frame's end, the next one's start
            return
        try:
            bodies.append(decode_frame(encoded, self.max_body))
        except MemoryError:  # a fragmented heap on a small board: drop the frame, the sender repeats it
            self._buffer = bytearray()
            gc.collect()
            self.dropped_memory += 1
        except ChecksumMismatch as exc:
            self.dropped_crc += 1
            self.last_error = exc
        except FrameTooLarge as exc:
            self.dropped_oversize += 1
            self.last_error = exc
        except ProtocolError as exc:
            self.dropped_malformed += 1
            self.last_error = exc
        else:
            self.frames_ok += 1
