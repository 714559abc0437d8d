"""One stream-API client connection (TCP socket or pseudo-terminal) of the simulator.

Owns reading bytes, deframing and parsing `ToRadio`, and framing `FromRadio` out with a
bounded write backlog. Hands every parsed message to the radio; keeps no radio state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from meshtastic.protobuf import mesh_pb2

from station.mesh.sim.framing import FrameDecoder, encode_frame
from station.mesh.sim.radio import SimRadio

logger = logging.getLogger(__name__)

READ_CHUNK = 4096
PARTIAL_FRAME_TIMEOUT_S = 1.0  # a frame still incomplete after this much silence was truncated
MAX_WRITE_BACKLOG = 256 * 1024  # bytes queued for a client that stopped reading; then drop


class StreamSession:
    """Implements radio.ClientLink over an asyncio reader/writer pair."""

    def __init__(
        self,
        name: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        radio: SimRadio,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._reader = reader
        self._writer = writer
        self._radio = radio
        self._on_close = on_close
        self._inbox: list[Any] = []
        self._decoder = FrameDecoder(accept=self._parse)
        self._dropping = False
        self.finished = asyncio.Event()

    def send(self, message: Any) -> None:
        transport = self._writer.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size() > MAX_WRITE_BACKLOG:
            if not self._dropping:
                logger.warning("client not reading; dropping frames", extra={"client": self.name})
            self._dropping = True
            return
        self._dropping = False
        self._writer.write(encode_frame(message.SerializeToString()))

    def close(self) -> None:
        """Drop the connection; run() then finishes."""
        self._writer.close()
        if self._on_close is not None:
            self._on_close()

    async def run(self) -> None:
        self._radio.attach(self)
        logger.info("session open", extra={"client": self.name})
        try:
            await self._read_loop()
        except (ConnectionError, OSError) as exc:
            logger.info("client link failed", extra={"client": self.name, "error": str(exc)})
        finally:
            self._radio.detach(self)
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
            logger.info("session closed", extra={"client": self.name})
            self.finished.set()

    async def _read_loop(self) -> None:
        while True:
            timeout = PARTIAL_FRAME_TIMEOUT_S if self._decoder.pending else None
            try:
                data = await asyncio.wait_for(self._reader.read(READ_CHUNK), timeout)
            except TimeoutError:
                self._decoder.resync()
                self._dispatch()
                continue
            if not data:
                return
            self._decoder.feed(data)
            self._dispatch()

    def _parse(self, payload: bytes) -> bool:
        """FrameDecoder's check: a frame counts only if it is a ToRadio with content."""
        message = mesh_pb2.ToRadio()
        try:
            message.ParseFromString(payload)
        except DecodeError:
            return False
        if message.WhichOneof("payload_variant") is None:
            return False
        self._inbox.append(message)
        return True

    def _dispatch(self) -> None:
        inbox, self._inbox = self._inbox, []
        for message in inbox:
            self._radio.handle(self, message)
