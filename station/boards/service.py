"""The boards service: owns the board CA, enrollment, the registry and one session task per
configured `[[boards.links]]` entry; closes a board's session the moment it is revoked or
re-enrolled. The methods below are what the API calls. Must not parse frames (session.py does)
or decide trust (registry.py and enrollment.py do).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from station.boards._link import CommandResult, LinkSettings, LinkState, SessionEnded, TrustStore
from station.boards.ca import BoardCA
from station.boards.deploy import Deployer
from station.boards.enrollment import Enrollment, EnrollmentCode
from station.boards.errors import BoardIsRevoked, BoardNotFound
from station.boards.events import BoardEnrolled, BoardRevoked
from station.boards.logbook import BoardLogBook
from station.boards.registry import BoardRegistry
from station.boards.session import COMMAND_TIMEOUT_S, BoardSession
from station.boards.transport import BoardTransport, open_transport
from station.bus import EventBus, Unsubscribe
from station.config import BoardsConfig
from station.services import Service, ServiceState
from station.store import Database
from station.store.board_deploys import DeployRecord
from station.store.boards import BoardRecord

logger = logging.getLogger(__name__)


class BoardService(Service):
    name = "boards"

    def __init__(self, config: BoardsConfig, database: Database, bus: EventBus, data_dir: Path,
                 opener: Callable[[str], Awaitable[BoardTransport]] = open_transport) -> None:
        super().__init__()
        self._config, self._database, self._bus, self._data_dir = config, database, bus, data_dir
        self._opener = opener
        self._trust: TrustStore | None = None
        self._sessions: list[BoardSession] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: list[Unsubscribe] = []
        self._deployer: Deployer | None = None
        self.logbook = BoardLogBook(database, bus, config.log_lines_per_board)

    # ---- life cycle

    async def start(self) -> None:
        config = self._config
        ca = BoardCA.open(self._data_dir)  # file I/O: here, not in the constructor
        registry = BoardRegistry(self._database, self._bus, ca, config.cert_valid_days)
        enrollment = Enrollment(self._database, self._bus, ca, config.cert_valid_days)
        self._trust = TrustStore(ca, enrollment, registry, self._bus, station_id=f"firefly-{ca.station_fingerprint}")
        settings = LinkSettings(config.heartbeat_timeout_s, config.offline_after_s, config.backoff_initial_s,
                                config.backoff_max_s)
        self._unsubscribe = [self._bus.subscribe(BoardRevoked, self._on_revoked),
                             self._bus.subscribe(BoardEnrolled, self._on_enrolled)]
        self.logbook.start()
        for link in config.links:
            session = BoardSession(link.name, link.url, self._trust, settings, self._opener, self._refresh_health)
            self._sessions.append(session)
            self._tasks.append(asyncio.create_task(session.run(), name=f"board-link-{link.name}"))
        self._deployer = Deployer(self._database, self._bus, self._data_dir, self.session_for)
        self._deployer.start()
        self._refresh_health()

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self._deployer is not None:
            await self._deployer.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.logbook.close()  # after the sessions: their last lines are written too

    # ---- bus

    def _on_revoked(self, event: BoardRevoked) -> None:
        self._close(event.board_id, "revoked")

    def _on_enrolled(self, event: BoardEnrolled) -> None:
        if event.reenrolled:  # a session still open with the old key must go
            self._close(event.board_id, "reenrolled")

    def _close(self, board_id: str, reason: str) -> None:
        for session in self._sessions:
            if session.board_id == board_id:
                logger.warning("board session closed", extra={"board_id": board_id, "link": session.name,
                                                              "reason": reason})
                session.close_session(reason)

    # ---- for the API

    @property
    def trust(self) -> TrustStore:
        if self._trust is None:
            raise RuntimeError("the boards service is not started")
        return self._trust

    @property
    def deploys(self) -> Deployer:
        if self._deployer is None:
            raise RuntimeError("the boards service is not started")
        return self._deployer

    def deploy_file(self, board_id: str, path: str, data: bytes, by: str = "operator") -> DeployRecord:
        """Queue a file for the board (sent when it is connected); BoardNotFound, BoardIsRevoked."""
        self._deployable(board_id)
        return self.deploys.submit_file(board_id, path, data, by)

    def deploy_config(self, board_id: str, options: dict[str, Any], by: str = "operator") -> DeployRecord:
        """Queue agent options for the board (write_config when it is connected)."""
        self._deployable(board_id)
        return self.deploys.submit_config(board_id, options, by)

    def _deployable(self, board_id: str) -> None:
        record = self.trust.registry.get(board_id)
        if record.state == "revoked":
            raise BoardIsRevoked(board_id, record.revoked_reason)

    def create_code(self, profile: str | None = None, ttl_s: float | None = None,
                    reenroll_board_id: str | None = None, by: str = "operator") -> EnrollmentCode:
        ttl = self._config.enrollment_code_ttl_s if ttl_s is None else ttl_s
        return self.trust.enrollment.create_code(profile, ttl, reenroll_board_id, by)

    def revoke(self, board_id: str, reason: str, by: str = "operator") -> BoardRecord:
        """Revoke in the registry; its BoardRevoked event closes the session at once."""
        return self.trust.registry.revoke(board_id, reason, by)

    def sessions(self) -> list[dict[str, Any]]:
        return [session.status() for session in self._sessions]

    def session_for(self, board_id: str) -> BoardSession:
        for session in self._sessions:
            if session.board_id == board_id and session.state in (LinkState.CONNECTED, LinkState.STALE):
                return session
        raise BoardNotFound(board_id)

    async def command(self, board_id: str, cmd: str, args: dict[str, Any] | None = None,
                      timeout_s: float = COMMAND_TIMEOUT_S) -> CommandResult:
        """Run `cmd` on a connected board; BoardNotFound when none is, CommandTimeout, SessionEnded."""
        try:
            session = self.session_for(board_id)
        except BoardNotFound:
            raise SessionEnded(board_id, "not connected") from None
        return await session.command(cmd, args, timeout_s)

    def _refresh_health(self) -> None:
        """Called on every link state change: counts per state; degraded while a link is down."""
        counts = Counter(session.state.value for session in self._sessions)
        self.health.detail = {"links": len(self._sessions), "states": dict(counts)}
        down = any(session.state not in (LinkState.CONNECTED, LinkState.STOPPED) for session in self._sessions)
        if self.health.state in (ServiceState.RUNNING, ServiceState.DEGRADED):
            self.health.state = ServiceState.DEGRADED if down else ServiceState.RUNNING
