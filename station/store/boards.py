"""Board trust tables: enrolled boards, the certificates issued to them and one-time enrollment
codes. Each function is one transaction, so a kill -9 between two calls leaves a board either
fully enrolled, renewed or revoked, or untouched, and a code used at most once. Knows the tables
and the enrollment rules that must hold atomically (single use, one key per board); signing,
validation and events belong to station.boards."""

from __future__ import annotations

import enum
import json
import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from station.store.database import Database, new_id


@dataclass(frozen=True)
class BoardRecord:
    id: str
    profile: str
    public_key: bytes
    cert_serial: int
    cert_not_before: float
    cert_not_after: float
    state: str
    enrolled_at: float
    last_seen: float | None
    revoked_at: float | None
    revoked_reason: str | None
    revoked_by: str | None
    agent_version: str | None
    firmware_version: str | None
    platform: str | None
    capabilities: tuple[str, ...]
    updated_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> BoardRecord:
        fields = dict(row)
        fields["public_key"] = bytes(fields["public_key"])
        fields["capabilities"] = tuple(json.loads(fields["capabilities"]))
        return cls(**fields)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the key as hex, capabilities as a list."""
        fields = asdict(self)
        fields["public_key"] = self.public_key.hex()
        fields["capabilities"] = list(self.capabilities)
        return fields


@dataclass(frozen=True)
class NewCertificate:
    serial: int
    public_key: bytes
    not_before: float
    not_after: float
    der: bytes


@dataclass(frozen=True)
class NewCode:
    code_mac: str  # HMAC of the code: unique, kept as the audit trail's name for it
    lookup_mac: str  # HMAC of the code's lookup: how a board's enroll_request finds it
    sealed_key: bytes  # the code's proof key K, sealed under a key only the station holds
    profile: str | None
    reenroll_board_id: str | None
    created_by: str
    expires_at: float


class Refusal(enum.StrEnum):
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    FOR_ANOTHER_BOARD = "for_another_board"
    PROFILE_MISMATCH = "profile_mismatch"
    ALREADY_ENROLLED = "already_enrolled"
    KEY_IN_USE = "key_in_use"
    KEY_REVOKED = "key_revoked"
    BAD_PROOF = "bad_proof"  # decided by station.boards.enrollment: the store does not check proofs


@dataclass(frozen=True)
class Redemption:
    """What redeem_code did: a refusal (nothing changed) or the board as enrolled."""

    refusal: Refusal | None
    code: dict[str, Any] | None = None  # the code's row, without its MACs and sealed key
    previous: BoardRecord | None = None  # the board's record before (re-enrollment)
    board: BoardRecord | None = None
    key_holder: str | None = None  # KEY_IN_USE: the board that holds the key


def insert_code(database: Database, code: NewCode, at: float, max_live: int,
                keep_s: float) -> dict[str, Any] | None:
    """Store a code unless `max_live` unused, unexpired codes exist (then None). Codes that
    expired unused more than `keep_s` ago are deleted; used ones stay as the audit trail."""
    row = {"id": new_id(), **asdict(code), "created_at": at, "used_at": None, "used_by_board_id": None}
    with database.transaction() as db:
        db.execute("DELETE FROM board_enrollment_codes WHERE used_at IS NULL AND expires_at < ?",
                   (at - keep_s,))
        live = db.execute("SELECT COUNT(*) FROM board_enrollment_codes WHERE used_at IS NULL"
                          " AND expires_at > ?", (at,)).fetchone()[0]
        if live >= max_live:
            return None
        db.execute("INSERT INTO board_enrollment_codes (id, code_mac, lookup_mac, sealed_key, profile,"
                   " reenroll_board_id, created_by, created_at, expires_at, used_at, used_by_board_id) VALUES"
                   " (:id, :code_mac, :lookup_mac, :sealed_key, :profile, :reenroll_board_id, :created_by,"
                   " :created_at, :expires_at, :used_at, :used_by_board_id)", row)
    return _public_code(row)


def sealed_code_key(database: Database, lookup_mac: str) -> bytes | None:
    """The sealed proof key of the code with this lookup; None when there is no such code or it
    was used (its key is dropped then: nothing is left to prove)."""
    row = database.connection.execute("SELECT sealed_key FROM board_enrollment_codes WHERE lookup_mac = ?",
                                      (lookup_mac,)).fetchone()
    return None if row is None or row[0] is None else bytes(row[0])


def redeem_code(database: Database, lookup_mac: str, sealed_key: bytes | None, board_id: str, profile: str,
                cert: NewCertificate, at: float) -> Redemption:
    """Use the code and enroll the board with `cert`, or refuse and change nothing. Checking and
    using the code is one IMMEDIATE transaction, so of two concurrent redemptions one wins. The
    caller checked the board's proof with the key sealed in `sealed_key` (from sealed_code_key);
    an unused code sealing another key (or none) is refused as unknown: its proof was not checked."""
    with database.transaction() as db:
        found = db.execute("SELECT * FROM board_enrollment_codes WHERE lookup_mac = ?", (lookup_mac,)).fetchone()
        if found is None or (found["used_at"] is None and (
                sealed_key is None or found["sealed_key"] is None or bytes(found["sealed_key"]) != sealed_key)):
            return Redemption(Refusal.UNKNOWN)
        code = _public_code(dict(found))
        previous = _board(db, board_id)
        refusal, holder = _check_redemption(db, code, previous, board_id, profile, cert.public_key, at)
        if refusal is not None:
            return Redemption(refusal, code=code, previous=previous, key_holder=holder)
        reason = "enroll" if previous is None else "reenroll"
        _upsert_enrolled(db, board_id, profile, cert, at)
        _insert_certificate(db, board_id, reason, cert, at)
        db.execute("UPDATE board_enrollment_codes SET used_at = ?, used_by_board_id = ?, sealed_key = NULL"
                   " WHERE id = ?", (at, board_id, code["id"]))
        board = _board(db, board_id)
    return Redemption(None, code={**code, "used_at": at, "used_by_board_id": board_id},
                      previous=previous, board=board)


def _check_redemption(db: sqlite3.Connection, code: dict[str, Any], previous: BoardRecord | None,
                      board_id: str, profile: str, public_key: bytes,
                      at: float) -> tuple[Refusal | None, str | None]:
    if code["used_at"] is not None:
        return Refusal.USED, None
    if code["expires_at"] <= at:
        return Refusal.EXPIRED, None
    if code["reenroll_board_id"] is not None and code["reenroll_board_id"] != board_id:
        return Refusal.FOR_ANOTHER_BOARD, None
    if code["profile"] is not None and code["profile"] != profile:
        return Refusal.PROFILE_MISMATCH, None
    if previous is not None and previous.state != "revoked" and code["reenroll_board_id"] != board_id:
        return Refusal.ALREADY_ENROLLED, None
    if previous is not None and previous.state == "revoked" and previous.public_key == public_key:
        return Refusal.KEY_REVOKED, None
    # a key is only ever certified for one board id: a second id with it is a cloned image
    holder = db.execute("SELECT board_id FROM board_certificates WHERE public_key = ? AND board_id != ?"
                        " LIMIT 1", (public_key, board_id)).fetchone()
    if holder is not None:
        return Refusal.KEY_IN_USE, str(holder[0])
    return None, None


def _upsert_enrolled(db: sqlite3.Connection, board_id: str, profile: str, cert: NewCertificate,
                     at: float) -> None:
    db.execute(
        "INSERT INTO boards (id, profile, public_key, cert_serial, cert_not_before, cert_not_after, state,"
        " enrolled_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'enrolled', ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET profile = excluded.profile, public_key = excluded.public_key,"
        " cert_serial = excluded.cert_serial, cert_not_before = excluded.cert_not_before,"
        " cert_not_after = excluded.cert_not_after, state = 'enrolled', enrolled_at = excluded.enrolled_at,"
        " revoked_at = NULL, revoked_reason = NULL, revoked_by = NULL, updated_at = excluded.updated_at",
        (board_id, profile, cert.public_key, cert.serial, cert.not_before, cert.not_after, at, at),
    )


def _insert_certificate(db: sqlite3.Connection, board_id: str, reason: str, cert: NewCertificate,
                        at: float) -> None:
    db.execute("INSERT INTO board_certificates (id, serial, board_id, public_key, reason, not_before,"
               " not_after, der, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (new_id(), cert.serial, board_id, cert.public_key, reason, cert.not_before, cert.not_after,
                cert.der, at))


def renew(database: Database, board_id: str, cert: NewCertificate,
          at: float) -> tuple[BoardRecord | None, bool]:
    """Record a renewed certificate for the board's current key. Refused (False) when the board
    was revoked or re-enrolled with another key meanwhile."""
    with database.transaction() as db:
        changed = db.execute(
            "UPDATE boards SET cert_serial = ?, cert_not_before = ?, cert_not_after = ?, updated_at = ?"
            " WHERE id = ? AND state != 'revoked' AND public_key = ?",
            (cert.serial, cert.not_before, cert.not_after, at, board_id, cert.public_key),
        ).rowcount == 1
        if changed:
            _insert_certificate(db, board_id, "renew", cert, at)
        return _board(db, board_id), changed


def revoke(database: Database, board_id: str, reason: str, by: str,
           at: float) -> tuple[BoardRecord | None, str | None]:
    """Revoke the board. Returns its record after the attempt and its state before, or None for
    the old state when it was already revoked (nothing changed)."""
    with database.transaction() as db:
        before = _board(db, board_id)
        if before is None or before.state == "revoked":
            return before, None
        db.execute("UPDATE boards SET state = 'revoked', revoked_at = ?, revoked_reason = ?, revoked_by = ?,"
                   " updated_at = ? WHERE id = ?", (at, reason, by, at, board_id))
        return _board(db, board_id), before.state


def set_state(database: Database, board_id: str, state: str,
              at: float) -> tuple[BoardRecord | None, str | None]:
    """Move a board that is not revoked to `state`. Returns its record after the attempt and its
    state before when it changed (None: unchanged, revoked or unknown)."""
    with database.transaction() as db:
        before = _board(db, board_id)
        if before is None or before.state in ("revoked", state):
            return before, None
        db.execute("UPDATE boards SET state = ?, updated_at = ? WHERE id = ?", (state, at, board_id))
        return _board(db, board_id), before.state


def mark_seen(database: Database, board_id: str, at: float) -> bool:
    with database.transaction() as db:
        return db.execute("UPDATE boards SET last_seen = ? WHERE id = ? AND (last_seen IS NULL OR last_seen < ?)",
                          (at, board_id, at)).rowcount == 1


def set_agent_info(database: Database, board_id: str, agent_version: str | None, firmware_version: str | None,
                   platform: str | None, capabilities: tuple[str, ...], at: float) -> BoardRecord | None:
    with database.transaction() as db:
        db.execute("UPDATE boards SET agent_version = ?, firmware_version = ?, platform = ?, capabilities = ?,"
                   " updated_at = ? WHERE id = ?",
                   (agent_version, firmware_version, platform, json.dumps(list(capabilities)), at, board_id))
        return _board(db, board_id)


def get_board(database: Database, board_id: str) -> BoardRecord | None:
    return _board(database.connection, board_id)


def list_boards(database: Database, state: str | None, limit: int) -> list[BoardRecord]:
    """By id, optionally only those in `state`."""
    if state is None:
        rows = database.connection.execute("SELECT * FROM boards ORDER BY id LIMIT ?", (limit,))
    else:
        rows = database.connection.execute("SELECT * FROM boards WHERE state = ? ORDER BY id LIMIT ?",
                                           (state, limit))
    return [BoardRecord.from_row(row) for row in rows]


def counts(database: Database) -> dict[str, int]:
    """Boards per state (states with none are absent)."""
    return {row[0]: row[1] for row in database.connection.execute(
        "SELECT state, COUNT(*) FROM boards GROUP BY state")}


def find_certificate(database: Database, serial: int) -> dict[str, Any] | None:
    """The issued certificate with this serial (without its DER), or None."""
    row = database.connection.execute(
        "SELECT id, serial, board_id, public_key, reason, not_before, not_after, issued_at"
        " FROM board_certificates WHERE serial = ?", (serial,)).fetchone()
    return None if row is None else {**dict(row), "public_key": bytes(row["public_key"])}


def list_certificates(database: Database, board_id: str) -> list[dict[str, Any]]:
    """Oldest first, without the DER (its size instead)."""
    rows = database.connection.execute(
        "SELECT id, serial, board_id, reason, not_before, not_after, issued_at, length(der) AS der_bytes"
        " FROM board_certificates WHERE board_id = ? ORDER BY issued_at, id", (board_id,))
    return [dict(row) for row in rows]


def _board(db: sqlite3.Connection, board_id: str) -> BoardRecord | None:
    row = db.execute("SELECT * FROM boards WHERE id = ?", (board_id,)).fetchone()
    return None if row is None else BoardRecord.from_row(row)


def _public_code(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key not in ("code_mac", "lookup_mac", "sealed_key")}
