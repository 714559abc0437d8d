"""A station and an enrolled board for the session tests: the keys and ids of
board_peer.py, a station-side registry standing in for the station's board records,
and a helper that runs a whole handshake in memory."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_agent.crypto.ed25519 import SigningKey
from edge_agent.session import BoardHandshake, Session, StationHandshake
from tests.edge_agent_session.board_peer import BOARD_ID, BOARD_SEED, CERT, STATION_ID, STATION_SEED

STATION_KEY = SigningKey(STATION_SEED)
BOARD_KEY = SigningKey(BOARD_SEED)


@dataclass
class Registry:
    """The station's records: (board id, certificate) -> board public key, minus revocations."""

    keys: dict[tuple[str, bytes], bytes] = field(default_factory=lambda: {(BOARD_ID, CERT): BOARD_KEY.public_key})
    revoked: set[str] = field(default_factory=set)
    asked: list[tuple[str, bytes]] = field(default_factory=list)

    def lookup(self, board_id: str, cert: bytes) -> bytes | None:
        self.asked.append((board_id, cert))
        if board_id in self.revoked:
            return None
        return self.keys.get((board_id, cert))


def station(
    registry: Registry | None = None,
    board_id: str = BOARD_ID,
    key: SigningKey = STATION_KEY,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> StationHandshake:
    lookup = (registry or Registry()).lookup
    return StationHandshake(key, STATION_ID, board_id, lookup, random_bytes)


def board(
    key: SigningKey = BOARD_KEY,
    board_id: str = BOARD_ID,
    station_pubkey: bytes = STATION_KEY.public_key,
    cert: bytes = CERT,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> BoardHandshake:
    return BoardHandshake(key, board_id, cert, STATION_ID, station_pubkey, random_bytes)


def handshake() -> tuple[Session, Session]:
    """(station session, board session) of one successful handshake."""
    s = station()
    response, board_session = board().respond(s.challenge())
    return s.finish(response), board_session
