"""Meshtastic stream-protocol framing: `0x94 0xC3`, big-endian uint16 length, payload.

Owns the frame encoder and the incremental decoder that resynchronises on garbage,
oversize headers and payloads its caller rejects. Knows nothing about protobufs or
sockets: bytes in, payloads out.
"""

from __future__ import annotations

from collections.abc import Callable

from station.mesh.sim.errors import FrameTooLarge

START1 = 0x94
START2 = 0xC3
HEADER_LEN = 4
MAX_FRAME_SIZE = 512  # firmware's MAX_TO_FROM_RADIO_SIZE; larger lengths mean a false start

PayloadCheck = Callable[[bytes], bool]


def encode_frame(payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME_SIZE:
        raise FrameTooLarge(len(payload), MAX_FRAME_SIZE)
    return bytes((START1, START2, len(payload) >> 8, len(payload) & 0xFF)) + payload


class FrameDecoder:
    """Feed it bytes as they arrive; it returns the complete payloads found so far.

    Bytes before a start marker are skipped (the client's 0xC3 wake-up, device log text).
    A header announcing more than MAX_FRAME_SIZE bytes is a false start: scanning resumes
    at the byte after its 0x94. If `accept` rejects a payload (it does not parse), the
    frame was probably a truncated one swallowing the next frame's header, so scanning
    also resumes right after the rejected frame's 0x94 instead of after its end.
    """

    def __init__(self, accept: PayloadCheck | None = None, limit: int = MAX_FRAME_SIZE) -> None:
        self._accept = accept
        self._limit = limit
        self._buffer = bytearray()
        self.skipped_bytes = 0  # garbage and false starts, for diagnostics
        self.rejected_frames = 0

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buffer)

    def reset(self) -> None:
        """Forget everything buffered (the sender reconnected)."""
        self.skipped_bytes += len(self._buffer)
        self._buffer.clear()

    def resync(self) -> list[bytes]:
        """Give up on the partial frame at the head of the buffer (its sender went quiet).

        A truncated frame's length swallows whatever follows it, so the bytes after its
        start marker are scanned again for complete frames.
        """
        if not self._buffer:
            return []
        del self._buffer[:1]
        self.skipped_bytes += 1
        return self.feed(b"")

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        payloads: list[bytes] = []
        consumed = self._scan(payloads)
        del self._buffer[:consumed]
        return payloads

    def _scan(self, payloads: list[bytes]) -> int:
        """Extract payloads; return how many leading buffer bytes are no longer needed."""
        buf = self._buffer
        pos = 0
        while True:
            start = buf.find(START1, pos)
            if start < 0:
                self.skipped_bytes += len(buf) - pos
                return len(buf)
            self.skipped_bytes += start - pos
            if len(buf) - start < 2:
                return start
            if buf[start + 1] != START2:
                pos = start + 1
                self.skipped_bytes += 1
                continue
            if len(buf) - start < HEADER_LEN:
                return start
            length = (buf[start + 2] << 8) | buf[start + 3]
            if length > self._limit:
                pos = start + 1
                self.skipped_bytes += 1
                continue
            end = start + HEADER_LEN + length
            if len(buf) < end:
                return start
            payload = bytes(buf[start + HEADER_LEN : end])
            if self._accept is not None and not self._accept(payload):
                self.rejected_frames += 1
                self.skipped_bytes += 1
                pos = start + 1
                continue
            payloads.append(payload)
            pos = end
