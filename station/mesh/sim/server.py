"""The simulator's transports: a TCP listener and a pseudo-terminal that pyserial can open.

Owns sockets, the pty pair, its optional stable symlink and the client sessions running
over them. One TCP client at a time: a new connection takes over from the previous one
(as a station restarting after a crash would need). The radio and the world keep running
with no client at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import tty
from pathlib import Path
from typing import Any

from station.mesh.sim.errors import TransportError
from station.mesh.sim.radio import SimRadio
from station.mesh.sim.session import StreamSession

logger = logging.getLogger(__name__)

SESSION_CLOSE_TIMEOUT_S = 2.0  # shutdown waits this long for each session to wind down


class TcpListener:
    def __init__(self, radio: SimRadio) -> None:
        self._radio = radio
        self._server: asyncio.Server | None = None
        self._sessions: set[StreamSession] = set()
        self.address = ""

    async def start(self, host: str, port: int) -> str:
        try:
            self._server = await asyncio.start_server(self._on_client, host, port)
        except OSError as exc:
            raise TransportError("tcp", f"{host}:{port}", exc.strerror or str(exc)) from exc
        bound = self._server.sockets[0].getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.address = f"{shown}:{bound[1]}"
        return self.address

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for previous in list(self._sessions):
            logger.info("new client takes over", extra={"previous": previous.name})
            previous.close()
        peer = writer.get_extra_info("peername")
        session = StreamSession(f"tcp:{peer[0]}:{peer[1]}", reader, writer, self._radio)
        self._sessions.add(session)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)

    def disconnect(self) -> None:
        for session in list(self._sessions):
            session.close()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        sessions = list(self._sessions)
        for session in sessions:
            session.close()
        for session in sessions:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.finished.wait(), SESSION_CLOSE_TIMEOUT_S)
        if self._server is not None:
            await self._server.wait_closed()


class PtyEndpoint:
    """A pseudo-terminal in raw mode; the client opens its slave side like a USB serial port.

    We keep the slave open ourselves so the master never reports EIO/hang-up while no
    client has the port open (between station restarts). `reset()` replaces the pty, the
    way unplugging and replugging a USB radio would.
    """

    def __init__(self, radio: SimRadio, link: Path | None) -> None:
        self._radio = radio
        self._link = link
        self._slave_fd = -1
        self._session: StreamSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._read_transport: asyncio.BaseTransport | None = None
        self.path = ""

    async def start(self) -> str:
        loop = asyncio.get_running_loop()
        try:
            master_fd, self._slave_fd = os.openpty()
            tty.setraw(self._slave_fd)
            self.path = os.ttyname(self._slave_fd)
            write_fd = os.dup(master_fd)
        except OSError as exc:
            raise TransportError("pty", "(new)", exc.strerror or str(exc)) from exc
        reader = asyncio.StreamReader()
        self._read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(master_fd, "rb", buffering=0)
        )
        # StreamReaderProtocol (over an unused reader) gives the writer drain() and wait_closed()
        write_transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()),
            os.fdopen(write_fd, "wb", buffering=0),
        )
        writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
        session = StreamSession(f"pty:{self.path}", reader, writer, self._radio, self._close_read)
        self._session = session
        self._task = loop.create_task(session.run())
        if self.link is not None:
            self._publish_link(self.link)
        return self.path

    @property
    def link(self) -> Path | None:
        return self._link

    def _publish_link(self, link: Path) -> None:
        staging = link.with_name(f".{link.name}.{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
        try:
            staging.symlink_to(self.path)
            staging.replace(link)  # atomic: a reader never sees a missing link
        except OSError as exc:
            raise TransportError("pty link", str(link), exc.strerror or str(exc)) from exc

    def _close_read(self) -> None:
        if self._read_transport is not None:
            self._read_transport.close()

    async def reset(self) -> str:
        """Drop the client the hard way: a new pty replaces the old one (and the link)."""
        await self._stop_session()
        return await self.start()

    async def _stop_session(self) -> None:
        if self._session is not None:
            self._session.close()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), SESSION_CLOSE_TIMEOUT_S)
            if not self._task.done():
                self._task.cancel()
        if self._slave_fd >= 0:
            os.close(self._slave_fd)
            self._slave_fd = -1
        self._session = self._task = None

    async def aclose(self) -> None:
        await self._stop_session()
        if self._link is not None and self._link.is_symlink():
            with contextlib.suppress(OSError):
                if os.readlink(self._link) == self.path:
                    self._link.unlink()


class SimServer:
    """All transports the options ask for."""

    def __init__(self, radio: SimRadio) -> None:
        self._radio = radio
        self.tcp: TcpListener | None = None
        self.pty: PtyEndpoint | None = None

    async def start(self, tcp: tuple[str, int] | None, pty: bool, pty_link: Path | None) -> None:
        if tcp is not None:
            self.tcp = TcpListener(self._radio)
            await self.tcp.start(*tcp)
        if pty or pty_link is not None:
            self.pty = PtyEndpoint(self._radio, pty_link)
            await self.pty.start()

    def describe(self) -> dict[str, Any]:
        pty_path: str | None = None
        if self.pty is not None:
            pty_path = str(self.pty.link) if self.pty.link is not None else self.pty.path
        return {
            "tcp": self.tcp.address if self.tcp is not None else None,
            "pty": pty_path,
            "pty_device": self.pty.path if self.pty is not None else None,
        }

    async def disconnect_clients(self) -> None:
        if self.tcp is not None:
            self.tcp.disconnect()
        if self.pty is not None:
            await self.pty.reset()

    async def aclose(self) -> None:
        if self.tcp is not None:
            await self.tcp.aclose()
        if self.pty is not None:
            await self.pty.aclose()
