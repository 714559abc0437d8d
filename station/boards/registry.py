"""The registry of enrolled boards: who they are, which key and certificate they hold, their
state, and the trust decision a handshake asks for. Owns revocation, certificate renewal and
state updates, and publishes an event for each once it is committed. Must not know transports
or sessions: the board link calls `is_trusted` after a challenge-response and listens for
BoardRevoked to drop a session at once.

States: connecting, enrolling, enrolled, connected, stale, offline (set by the board link), and
revoked (only through `revoke`; nothing but a new enrollment leaves it).
"""

from __future__ import annotations

import builtins
import enum
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from station.boards.ca import DEFAULT_CERT_VALID_DAYS, BoardCA, CertInfo, check_line, check_valid_days
from station.boards.errors import (
    BoardChanged,
    BoardIsRevoked,
    BoardNotFound,
    CertificateExpired,
    CertificateInvalid,
    InvalidBoardInput,
)
from station.boards.events import BoardCertificateRenewed, BoardRevoked, BoardStateChanged
from station.bus import EventBus
from station.store import Database
from station.store import boards as store
from station.store.boards import BoardRecord

logger = logging.getLogger(__name__)

BOARD_STATES = ("connecting", "enrolling", "enrolled", "connected", "stale", "offline", "revoked")
LINK_STATES = BOARD_STATES[:-1]  # what set_state accepts; "revoked" only comes from revoke()
# Renew when a fifth of the validity is left: 73 days of a one-year certificate, so a board that
# connects once a month gets two chances, and the renewal does not churn on every connection.
RENEW_WHEN_LEFT_FRACTION = 0.2
# last_seen is written at most once a minute per board, not on every 5 s heartbeat: a Pi's SD
# card wears with every write, and the live value is the session's, not the database's.
LAST_SEEN_WRITE_INTERVAL_S = 60.0
REASON_MAX_CHARS = 200  # one line in `firefly board list`; the audit log holds the story
ACTOR_MAX_CHARS = 100
VERSION_MAX_CHARS = 64  # 'v1.24.0-preview.123.g0123abcd' with room to spare
MAX_CAPABILITIES = 64  # a hello lists a board's features, not its files
CAPABILITY_MAX_CHARS = 64
MAX_LIST_LIMIT = 1000  # boards per listing: bounds one query and one API response
DEFAULT_LIST_LIMIT = 100


class TrustRefusal(enum.StrEnum):
    UNKNOWN_BOARD = "unknown_board"
    REVOKED = "revoked"
    NO_CERTIFICATE = "no_certificate"
    CERT_INVALID = "cert_invalid"  # forged, another station's, garbage, not yet valid
    CERT_EXPIRED = "cert_expired"
    CERT_MISMATCH = "cert_mismatch"  # a genuine certificate, but for another board or never recorded
    KEY_MISMATCH = "key_mismatch"  # the key that answered the challenge is not the enrolled one


@dataclass(frozen=True)
class TrustVerdict:
    """The answer to a handshake: true only when `refusal` is None. `detail` is for the log and
    the board's error message; `cert` is the verified certificate when it got that far."""

    board_id: str
    refusal: TrustRefusal | None
    detail: str
    cert: CertInfo | None = None

    @property
    def trusted(self) -> bool:
        return self.refusal is None

    def __bool__(self) -> bool:
        return self.refusal is None


def needs_renewal(cert: BoardRecord | CertInfo, now: float) -> bool:
    """True when at most RENEW_WHEN_LEFT_FRACTION of the certificate's validity is left. Pass the
    certificate the board presented (a board may have missed its last renewal)."""
    if isinstance(cert, BoardRecord):
        start, end = cert.cert_not_before, cert.cert_not_after
    else:
        start, end = cert.not_before, cert.not_after
    return end - now <= (end - start) * RENEW_WHEN_LEFT_FRACTION


class BoardRegistry:
    def __init__(self, database: Database, bus: EventBus, ca: BoardCA, cert_valid_days: int = DEFAULT_CERT_VALID_DAYS,
                 clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._cert_valid_days = check_valid_days(cert_valid_days)
        self._bus = bus
        self._ca = ca
        self._clock = clock
        self._seen_written: dict[str, float] = {}

    def get(self, board_id: str) -> BoardRecord:
        board = store.get_board(self._database, board_id)
        if board is None:
            raise BoardNotFound(board_id)
        return board

    def list(self, state: str | None = None, limit: int = DEFAULT_LIST_LIMIT) -> builtins.list[BoardRecord]:
        """By board id."""
        if state is not None and state not in BOARD_STATES:
            raise InvalidBoardInput("state", state, f"must be one of {', '.join(BOARD_STATES)}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidBoardInput("limit", limit, f"must be an integer from 1 to {MAX_LIST_LIMIT}")
        return store.list_boards(self._database, state, limit)

    def counts(self) -> dict[str, int]:
        """Boards per state, every state present."""
        found = store.counts(self._database)
        return {state: found.get(state, 0) for state in BOARD_STATES}

    def is_trusted(self, board_id: str, public_key: bytes, cert_der: bytes | None,
                   now: float | None = None) -> TrustVerdict:
        """May this board connect? `public_key` is the key whose signature answered the challenge,
        `cert_der` the certificate it presented. Never raises for a bad certificate."""
        at = self._clock() if now is None else now
        board = store.get_board(self._database, board_id)
        if board is None:
            return TrustVerdict(board_id, TrustRefusal.UNKNOWN_BOARD, "no enrolled board with this id")
        if board.state == "revoked":
            return TrustVerdict(board_id, TrustRefusal.REVOKED, f"revoked: {board.revoked_reason}")
        if cert_der is None:
            return TrustVerdict(board_id, TrustRefusal.NO_CERTIFICATE, "no certificate presented")
        try:
            info = self._ca.verify(cert_der, at)
        except CertificateExpired as exc:
            return TrustVerdict(board_id, TrustRefusal.CERT_EXPIRED, str(exc))
        except CertificateInvalid as exc:
            return TrustVerdict(board_id, TrustRefusal.CERT_INVALID, exc.reason)
        return self._match(board, public_key, info)

    def _match(self, board: BoardRecord, public_key: bytes, info: CertInfo) -> TrustVerdict:
        if info.board_id != board.id:
            return TrustVerdict(board.id, TrustRefusal.CERT_MISMATCH, f"certificate is for board {info.board_id}")
        if bytes(public_key) != board.public_key:
            return TrustVerdict(board.id, TrustRefusal.KEY_MISMATCH, "the answering key is not the enrolled key")
        if info.public_key != board.public_key:
            return TrustVerdict(board.id, TrustRefusal.KEY_MISMATCH, "certificate is for another key of this board")
        if info.profile != board.profile:
            return TrustVerdict(board.id, TrustRefusal.CERT_MISMATCH,
                                f"certificate is for profile {info.profile}, the board is {board.profile}")
        issued = store.find_certificate(self._database, info.serial)
        if issued is None or issued["board_id"] != board.id or issued["public_key"] != board.public_key:
            return TrustVerdict(board.id, TrustRefusal.CERT_MISMATCH, f"serial {info.serial} was never issued to it")
        return TrustVerdict(board.id, None, "trusted", info)

    def revoke(self, board_id: str, reason: str, by: str = "operator") -> BoardRecord:
        """Refuse the board from now on. Revoking a revoked board changes nothing (no event)."""
        why = check_line("reason", reason, REASON_MAX_CHARS)
        actor = check_line("by", by, ACTOR_MAX_CHARS)
        board, old = store.revoke(self._database, board_id, why, actor, self._clock())
        if board is None:
            raise BoardNotFound(board_id)
        if old is not None:
            logger.warning("board revoked", extra={"board_id": board_id, "reason": why, "by": actor})
            self._bus.publish(BoardRevoked(board_id=board_id, reason=why, by=actor))
            self._bus.publish(BoardStateChanged(board_id=board_id, old=old, new="revoked"))
        return board

    def set_state(self, board_id: str, state: str) -> BoardRecord:
        """Record the board link's view of the board. Refused for a revoked board."""
        if state not in LINK_STATES:
            raise InvalidBoardInput("state", state, f"must be one of {', '.join(LINK_STATES)}")
        board, old = store.set_state(self._database, board_id, state, self._clock())
        if board is None:
            raise BoardNotFound(board_id)
        if board.state == "revoked":
            raise BoardIsRevoked(board_id, board.revoked_reason)
        if old is not None:
            logger.info("board state changed", extra={"board_id": board_id, "old": old, "new": state})
            self._bus.publish(BoardStateChanged(board_id=board_id, old=old, new=state))
        return board

    def mark_seen(self, board_id: str, at: float | None = None) -> bool:
        """Note that the board was heard; written at most every LAST_SEEN_WRITE_INTERVAL_S.
        Returns whether it was written."""
        seen = self._clock() if at is None else at
        if seen - self._seen_written.get(board_id, float("-inf")) < LAST_SEEN_WRITE_INTERVAL_S:
            return False
        written = store.mark_seen(self._database, board_id, seen)
        if written:
            self._seen_written[board_id] = seen
        return written

    def update_agent(self, board_id: str, agent_version: str, capabilities: Iterable[str] = (),
                     firmware_version: str | None = None, platform: str | None = None) -> BoardRecord:
        """Record what the board's hello said about its software."""
        caps = tuple(capabilities)
        if len(caps) > MAX_CAPABILITIES:
            raise InvalidBoardInput("capabilities", f"<{len(caps)} items>", f"at most {MAX_CAPABILITIES}")
        caps = tuple(check_line("capabilities", cap, CAPABILITY_MAX_CHARS) for cap in caps)
        board = store.set_agent_info(
            self._database, board_id, check_line("agent_version", agent_version, VERSION_MAX_CHARS),
            None if firmware_version is None else check_line("firmware_version", firmware_version, VERSION_MAX_CHARS),
            None if platform is None else check_line("platform", platform, VERSION_MAX_CHARS),
            caps, self._clock(),
        )
        if board is None:
            raise BoardNotFound(board_id)
        return board

    def needs_renewal(self, board: BoardRecord | CertInfo, now: float | None = None) -> bool:
        return needs_renewal(board, self._clock() if now is None else now)

    def renew(self, board_id: str, valid_days: int | None = None) -> bytes:
        """A new certificate for the board's enrolled key (valid `valid_days`, by default the
        configured validity), recorded before it is returned. Call it only over a session that
        `is_trusted` accepted; the previous certificate stays valid until it expires, so a board
        that misses the new one can still connect."""
        valid_days = self._cert_valid_days if valid_days is None else check_valid_days(valid_days)
        board = self.get(board_id)
        if board.state == "revoked":
            raise BoardIsRevoked(board_id, board.revoked_reason)
        at = self._clock()
        cert_der = self._ca.issue(board_id, board.public_key, board.profile, valid_days, at)
        info = self._ca.verify(cert_der, at)
        cert = store.NewCertificate(serial=info.serial, public_key=info.public_key, not_before=info.not_before,
                                    not_after=info.not_after, der=cert_der)
        renewed, changed = store.renew(self._database, board_id, cert, at)
        if not changed:
            if renewed is not None and renewed.state == "revoked":
                raise BoardIsRevoked(board_id, renewed.revoked_reason)
            raise BoardChanged(board_id, "renewal")
        logger.info("board certificate renewed", extra={"board_id": board_id, "cert_serial": info.serial})
        self._bus.publish(BoardCertificateRenewed(board_id=board_id, cert_serial=info.serial,
                                                  cert_not_after=info.not_after))
        return cert_der

    def certificates(self, board_id: str) -> builtins.list[dict[str, Any]]:
        """Every certificate issued to the board, oldest first (without DER)."""
        return store.list_certificates(self._database, board_id)
