"""The registry: the trust decision a handshake asks for, revocation, renewal and state updates,
each published on the bus after it is committed."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.boards import (
    BoardCA,
    BoardCertificateRenewed,
    BoardEvent,
    BoardIsRevoked,
    BoardNotFound,
    BoardRegistry,
    BoardRevoked,
    BoardStateChanged,
    Enrollment,
    TrustRefusal,
    needs_renewal,
)
from station.boards.errors import InvalidBoardInput
from station.boards.registry import LAST_SEEN_WRITE_INTERVAL_S, RENEW_WHEN_LEFT_FRACTION
from station.bus import EventBus
from station.store import Database, open_database
from tests.boards.conftest import Clock, new_key

DAY = 86400.0


@pytest.fixture
def board(enrollment: Enrollment, events: list[BoardEvent]) -> tuple[bytes, bytes]:
    """esp32-01 enrolled: (its public key, its certificate)."""
    key = new_key()
    cert = enrollment.redeem(enrollment.create_code().code, "esp32-01", key, "esp32")
    events.clear()
    return key, cert


def test_enrolled_board_is_trusted(registry: BoardRegistry, board: tuple[bytes, bytes]) -> None:
    key, cert = board
    verdict = registry.is_trusted("esp32-01", key, cert)
    assert verdict and verdict.trusted and verdict.refusal is None
    assert verdict.cert is not None and verdict.cert.public_key == key


def test_revoke_refuses_from_then_on(registry: BoardRegistry, board: tuple[bytes, bytes],
                                     events: list[BoardEvent]) -> None:
    key, cert = board
    revoked = registry.revoke("esp32-01", "lost in the field", by="alice")
    assert (revoked.state, revoked.revoked_reason, revoked.revoked_by) == ("revoked", "lost in the field", "alice")
    verdict = registry.is_trusted("esp32-01", key, cert)
    assert not verdict
    assert verdict.refusal is TrustRefusal.REVOKED and "lost in the field" in verdict.detail
    assert events == [
        BoardRevoked(board_id="esp32-01", reason="lost in the field", by="alice", at=events[0].at),
        BoardStateChanged(board_id="esp32-01", old="enrolled", new="revoked", at=events[1].at),
    ]
    events.clear()
    registry.revoke("esp32-01", "again")  # idempotent: nothing changes, nothing published
    assert events == []
    assert registry.get("esp32-01").revoked_reason == "lost in the field"
    with pytest.raises(BoardIsRevoked):
        registry.set_state("esp32-01", "connected")
    with pytest.raises(BoardIsRevoked):
        registry.renew("esp32-01")


def test_revocation_survives_a_restart(tmp_path: Path, registry: BoardRegistry, board: tuple[bytes, bytes],
                                       bus: EventBus) -> None:
    key, cert = board
    registry.revoke("esp32-01", "compromised")
    reopened = open_database(tmp_path / "station.db")
    try:
        fresh = BoardRegistry(reopened, bus, BoardCA.open(tmp_path / "data"))
        assert fresh.is_trusted("esp32-01", key, cert).refusal is TrustRefusal.REVOKED
    finally:
        reopened.close()


def test_unknown_board_and_missing_certificate(registry: BoardRegistry, board: tuple[bytes, bytes]) -> None:
    key, cert = board
    assert registry.is_trusted("esp32-99", key, cert).refusal is TrustRefusal.UNKNOWN_BOARD
    assert registry.is_trusted("esp32-01", key, None).refusal is TrustRefusal.NO_CERTIFICATE


def test_key_mismatch_is_refused(registry: BoardRegistry, board: tuple[bytes, bytes]) -> None:
    _key, cert = board
    verdict = registry.is_trusted("esp32-01", new_key(), cert)
    assert verdict.refusal is TrustRefusal.KEY_MISMATCH


def test_certificate_of_another_board_is_refused(enrollment: Enrollment, registry: BoardRegistry,
                                                 board: tuple[bytes, bytes]) -> None:
    key, cert = board
    enrollment.redeem(enrollment.create_code().code, "esp32-02", new_key(), "esp32")
    assert registry.is_trusted("esp32-02", key, cert).refusal is TrustRefusal.CERT_MISMATCH


def test_forged_foreign_garbage_and_expired_certificates(registry: BoardRegistry, board: tuple[bytes, bytes],
                                                         tmp_path: Path, clock: Clock) -> None:
    key, cert = board
    foreign = BoardCA.open(tmp_path / "other").issue("esp32-01", key, "esp32", 365, clock())
    assert registry.is_trusted("esp32-01", key, foreign).refusal is TrustRefusal.CERT_INVALID
    assert registry.is_trusted("esp32-01", key, b"\x30\x00garbage").refusal is TrustRefusal.CERT_INVALID
    clock.advance(366 * DAY)
    verdict = registry.is_trusted("esp32-01", key, cert)
    assert verdict.refusal is TrustRefusal.CERT_EXPIRED and "expired" in verdict.detail


def test_certificate_never_recorded_is_refused(registry: BoardRegistry, board: tuple[bytes, bytes], ca: BoardCA,
                                               clock: Clock) -> None:
    """Genuinely signed (e.g. by a restored older database's station) but not in this registry."""
    key, _cert = board
    unrecorded = ca.issue("esp32-01", key, "esp32", 365, clock())
    assert registry.is_trusted("esp32-01", key, unrecorded).refusal is TrustRefusal.CERT_MISMATCH


def test_renewal_threshold(registry: BoardRegistry, board: tuple[bytes, bytes], clock: Clock, ca: BoardCA) -> None:
    _key, cert = board
    record = registry.get("esp32-01")
    info = ca.verify(cert, clock())
    validity = record.cert_not_after - record.cert_not_before
    switch = record.cert_not_after - validity * RENEW_WHEN_LEFT_FRACTION
    assert not registry.needs_renewal(record)
    assert not needs_renewal(record, switch - 1)
    assert needs_renewal(record, switch)
    assert needs_renewal(info, switch) and not needs_renewal(info, switch - 1)


def test_renewal_issues_a_verifying_certificate(registry: BoardRegistry, board: tuple[bytes, bytes],
                                                clock: Clock, ca: BoardCA, events: list[BoardEvent]) -> None:
    key, old_cert = board
    clock.advance(300 * DAY)
    assert registry.needs_renewal(registry.get("esp32-01"))
    new_cert = registry.renew("esp32-01")
    info = ca.verify(new_cert, clock())
    assert (info.board_id, info.public_key, info.profile) == ("esp32-01", key, "esp32")
    assert info.not_after == int(clock()) + 365 * DAY
    record = registry.get("esp32-01")
    assert (record.cert_serial, record.cert_not_after) == (info.serial, info.not_after)
    assert not registry.needs_renewal(record)
    assert registry.is_trusted("esp32-01", key, new_cert)
    assert registry.is_trusted("esp32-01", key, old_cert)  # a board that missed the new one still connects
    assert events == [BoardCertificateRenewed(board_id="esp32-01", cert_serial=info.serial,
                                              cert_not_after=info.not_after, at=events[0].at)]
    assert [cert["reason"] for cert in registry.certificates("esp32-01")] == ["enroll", "renew"]
    assert all(cert["der_bytes"] < 320 for cert in registry.certificates("esp32-01"))


def test_renew_with_explicit_validity_and_bounds(registry: BoardRegistry, board: tuple[bytes, bytes],
                                                 ca: BoardCA, clock: Clock) -> None:
    assert ca.verify(registry.renew("esp32-01", 30), clock()).not_after == int(clock()) + 30 * DAY
    with pytest.raises(InvalidBoardInput):
        registry.renew("esp32-01", 0)
    with pytest.raises(BoardNotFound):
        registry.renew("esp32-99", 30)


def test_state_changes_are_published_once(registry: BoardRegistry, board: tuple[bytes, bytes],
                                          events: list[BoardEvent]) -> None:
    registry.set_state("esp32-01", "connected")
    registry.set_state("esp32-01", "connected")
    registry.set_state("esp32-01", "stale")
    assert [(event.old, event.new) for event in events if isinstance(event, BoardStateChanged)] == [
        ("enrolled", "connected"), ("connected", "stale")]
    assert registry.get("esp32-01").state == "stale"
    assert registry.counts()["stale"] == 1
    with pytest.raises(InvalidBoardInput):
        registry.set_state("esp32-01", "revoked")  # only revoke() revokes
    with pytest.raises(BoardNotFound):
        registry.set_state("esp32-99", "connected")


def test_last_seen_writes_are_throttled(registry: BoardRegistry, board: tuple[bytes, bytes], clock: Clock,
                                        database: Database) -> None:
    assert registry.mark_seen("esp32-01")
    first = clock()
    clock.advance(LAST_SEEN_WRITE_INTERVAL_S - 1)
    assert not registry.mark_seen("esp32-01")
    assert registry.get("esp32-01").last_seen == first
    clock.advance(1)
    assert registry.mark_seen("esp32-01")
    assert registry.get("esp32-01").last_seen == clock()
    assert not registry.mark_seen("esp32-99")


def test_agent_info_list_and_get(registry: BoardRegistry, board: tuple[bytes, bytes], enrollment: Enrollment) -> None:
    record = registry.update_agent("esp32-01", "0.3.1", ["heartbeat", "file", "wasm"], firmware_version="v1.24.0",
                                   platform="esp32")
    assert record.capabilities == ("heartbeat", "file", "wasm")
    assert record.as_dict()["public_key"] == board[0].hex()
    with pytest.raises(InvalidBoardInput):
        registry.update_agent("esp32-01", "0.3.1", ["x"] * 65)
    with pytest.raises(InvalidBoardInput):
        registry.update_agent("esp32-01", "line\nbreak")
    enrollment.redeem(enrollment.create_code().code, "esp32-02", new_key(), "esp32")
    registry.revoke("esp32-02", "retired")
    assert [board.id for board in registry.list()] == ["esp32-01", "esp32-02"]
    assert [board.id for board in registry.list(state="revoked")] == ["esp32-02"]
    with pytest.raises(InvalidBoardInput):
        registry.list(state="sleeping")
    with pytest.raises(BoardNotFound):
        registry.get("esp32-99")
