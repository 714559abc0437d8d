"""Enrollment codes against a real database: shown once, stored hashed, single use even when
two boards race for one, refused when expired, for another profile or board, and rate limited."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from station.boards import (
    BoardAlreadyEnrolled,
    BoardCA,
    BoardEnrolled,
    BoardEvent,
    BoardRegistry,
    BoardStateChanged,
    CodeExpired,
    CodeForAnotherBoard,
    CodeUnknown,
    CodeUsed,
    Enrollment,
    EnrollmentRateLimited,
    FailedRedemptions,
    InvalidBoardKey,
    ProfileMismatch,
    PublicKeyInUse,
    TooManyLiveCodes,
)
from station.boards.enrollment import (
    CODE_ALPHABET,
    FAILED_PER_SOURCE,
    FAILED_TOTAL,
    FAILURE_WINDOW_S,
    MAX_LIVE_CODES,
    normalize_code,
)
from station.boards.errors import InvalidBoardInput
from station.bus import EventBus
from station.store import Database, open_database
from tests.boards.conftest import Clock, new_key

SMALL_ORDER_KEY = b"\x01" + bytes(31)
SERIAL = "serial:/dev/ttyUSB0"


def test_code_is_short_typeable_and_never_stored(enrollment: Enrollment, database: Database) -> None:
    issued = enrollment.create_code(profile="esp32")
    assert re.fullmatch(f"[{CODE_ALPHABET}]{{4}}-[{CODE_ALPHABET}]{{4}}", issued.code)
    assert not set("ILOU") & set(issued.code)
    row = dict(database.connection.execute("SELECT * FROM board_enrollment_codes").fetchone())
    raw = issued.code.replace("-", "")
    assert all(raw not in str(value) and issued.code not in str(value) for value in row.values())
    assert row["profile"] == "esp32"
    assert len(row["code_mac"]) == 64


def test_codes_are_forgiving_to_type() -> None:
    assert normalize_code("abcd-efgh") == "ABCDEFGH"
    assert normalize_code(" ab cd ef gh ") == "ABCDEFGH"
    assert normalize_code("OIL2-3456") == "0112" + "3456"
    assert normalize_code("ABCD-EFGU") is None  # U is not in the alphabet
    assert normalize_code("ABCDEFG") is None
    assert normalize_code(12345678) is None


def test_redeem_enrolls_and_publishes(enrollment: Enrollment, ca: BoardCA, registry: BoardRegistry,
                                      events: list[BoardEvent], clock: Clock) -> None:
    issued = enrollment.create_code()
    key = new_key()
    cert = enrollment.redeem(issued.code.lower(), "esp32-01", key, "esp32", source=SERIAL)
    info = ca.verify(cert, clock())
    assert (info.board_id, info.public_key, info.profile) == ("esp32-01", key, "esp32")
    board = registry.get("esp32-01")
    assert (board.state, board.public_key, board.cert_serial) == ("enrolled", key, info.serial)
    assert board.enrolled_at == clock()
    assert events == [
        BoardEnrolled(board_id="esp32-01", profile="esp32", cert_serial=info.serial,
                      cert_not_after=info.not_after, reenrolled=False, at=events[0].at),
        BoardStateChanged(board_id="esp32-01", old=None, new="enrolled", at=events[1].at),
    ]
    assert registry.is_trusted("esp32-01", key, cert)


def test_code_works_once(enrollment: Enrollment) -> None:
    issued = enrollment.create_code()
    enrollment.redeem(issued.code, "esp32-01", new_key(), "esp32")
    with pytest.raises(CodeUsed):
        enrollment.redeem(issued.code, "esp32-02", new_key(), "esp32")
    with pytest.raises(CodeUsed):
        enrollment.redeem(issued.code, "esp32-01", new_key(), "esp32")


def _race(desks: list[Enrollment], code: str, board_ids: list[str]) -> list[object]:
    """Each desk redeems `code` in its own thread, all released at once."""
    barrier = threading.Barrier(len(desks))
    outcomes: list[object] = []

    def redeem(desk: Enrollment, board_id: str) -> None:
        barrier.wait()
        try:
            outcomes.append(desk.redeem(code, board_id, new_key(), "esp32", source=board_id))
        except CodeUsed as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=redeem, args=pair) for pair in zip(desks, board_ids, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_redemptions_of_one_code_enroll_one_board(tmp_path: Path, ca: BoardCA, clock: Clock) -> None:
    """Two links, two connections to the database, one code: exactly one board gets a certificate."""
    databases = [open_database(tmp_path / "station.db") for _ in range(2)]
    try:
        desks = [Enrollment(database, EventBus(), ca, clock=clock) for database in databases]
        for round_number in range(8):
            code = desks[0].create_code().code
            outcomes = _race(desks, code, [f"race{round_number}-a", f"race{round_number}-b"])
            assert sorted(type(outcome).__name__ for outcome in outcomes) == ["CodeUsed", "bytes"]
        connection = databases[0].connection
        enrolled = connection.execute("SELECT COUNT(*) FROM boards").fetchone()[0]
        certificates = connection.execute("SELECT COUNT(*) FROM board_certificates").fetchone()[0]
        assert enrolled == certificates == 8
    finally:
        for database in databases:
            database.close()


def test_expired_code_is_refused(enrollment: Enrollment, clock: Clock) -> None:
    issued = enrollment.create_code(ttl_s=600)
    clock.advance(600)
    with pytest.raises(CodeExpired) as caught:
        enrollment.redeem(issued.code, "esp32-01", new_key(), "esp32")
    assert caught.value.expired_at == issued.expires_at


def test_wrong_codes_are_rate_limited_per_link(enrollment: Enrollment, clock: Clock) -> None:
    issued = enrollment.create_code(ttl_s=3600)
    wrong = "ZZZZ-ZZZZ" if issued.code != "ZZZZ-ZZZZ" else "YYYY-YYYY"
    for _ in range(FAILED_PER_SOURCE - 1):
        with pytest.raises(CodeUnknown):
            enrollment.redeem(wrong, "esp32-01", new_key(), "esp32", source=SERIAL)
    with pytest.raises(CodeUnknown):
        enrollment.redeem("not a code", "esp32-01", new_key(), "esp32", source=SERIAL)  # malformed counts too
    # now even the right code is refused on that link: a guesser learns nothing more
    with pytest.raises(EnrollmentRateLimited) as caught:
        enrollment.redeem(issued.code, "esp32-01", new_key(), "esp32", source=SERIAL)
    assert (caught.value.scope, caught.value.limit) == (SERIAL, FAILED_PER_SOURCE)
    assert 0 < caught.value.retry_after_s <= FAILURE_WINDOW_S
    # another link is not affected; the code was not consumed
    enrollment.redeem(issued.code, "esp32-01", new_key(), "esp32", source="tcp:10.0.0.7")


def test_limit_lifts_after_the_window(enrollment: Enrollment, clock: Clock) -> None:
    for _ in range(FAILED_PER_SOURCE):
        with pytest.raises(CodeUnknown):
            enrollment.redeem("ZZZZ-ZZZ0", "esp32-01", new_key(), "esp32", source=SERIAL)
    with pytest.raises(EnrollmentRateLimited):
        enrollment.redeem("ZZZZ-ZZZ0", "esp32-01", new_key(), "esp32", source=SERIAL)
    clock.advance(FAILURE_WINDOW_S)
    issued = enrollment.create_code()
    enrollment.redeem(issued.code, "esp32-01", new_key(), "esp32", source=SERIAL)


def test_station_wide_limit_across_links(enrollment: Enrollment) -> None:
    for index in range(FAILED_TOTAL):
        with pytest.raises(CodeUnknown):
            enrollment.redeem("ZZZZ-ZZZ0", "esp32-01", new_key(), "esp32", source=f"tcp:10.0.0.{index}")
    issued = enrollment.create_code()
    with pytest.raises(EnrollmentRateLimited) as caught:
        enrollment.redeem(issued.code, "esp32-01", new_key(), "esp32", source="tcp:10.0.1.1")
    assert caught.value.scope == "all links"


def test_failures_that_are_not_guesses_are_not_counted() -> None:
    limiter = FailedRedemptions(per_source=1, total=10, window_s=60, clock=lambda: 0.0)
    limiter.check("a")
    limiter.record("a")
    with pytest.raises(EnrollmentRateLimited):
        limiter.check("a")
    limiter.check("b")


def test_small_order_and_malformed_keys_are_refused(enrollment: Enrollment, registry: BoardRegistry) -> None:
    issued = enrollment.create_code()
    for key in (SMALL_ORDER_KEY, b"\x00" * 31, b"\xff" * 32, bytes(33), "a" * 32):
        with pytest.raises(InvalidBoardKey):
            enrollment.redeem(issued.code, "esp32-01", key, "esp32")  # type: ignore[arg-type]
    assert registry.list() == []
    enrollment.redeem(issued.code, "esp32-01", new_key(), "esp32")  # the code was not spent


def test_profile_mismatch_is_refused_and_keeps_the_code(enrollment: Enrollment) -> None:
    issued = enrollment.create_code(profile="esp32")
    with pytest.raises(ProfileMismatch) as caught:
        enrollment.redeem(issued.code, "pico-01", new_key(), "rp2040")
    assert (caught.value.expected, caught.value.got) == ("esp32", "rp2040")
    enrollment.redeem(issued.code, "esp32-01", new_key(), "esp32")


def test_enrolled_board_needs_a_reenrollment_code(enrollment: Enrollment, events: list[BoardEvent]) -> None:
    enrollment.redeem(enrollment.create_code().code, "esp32-01", new_key(), "esp32")
    with pytest.raises(BoardAlreadyEnrolled):
        enrollment.redeem(enrollment.create_code().code, "esp32-01", new_key(), "esp32")
    for_01 = enrollment.create_code(reenroll_board_id="esp32-01")
    with pytest.raises(CodeForAnotherBoard):
        enrollment.redeem(for_01.code, "esp32-02", new_key(), "esp32")
    events.clear()
    enrollment.redeem(for_01.code, "esp32-01", new_key(), "esp32")
    assert isinstance(events[0], BoardEnrolled) and events[0].reenrolled
    assert len(events) == 1  # enrolled -> enrolled is no state change


def test_reenrollment_replaces_the_key(enrollment: Enrollment, registry: BoardRegistry) -> None:
    old_key, new = new_key(), new_key()
    old_cert = enrollment.redeem(enrollment.create_code().code, "esp32-01", old_key, "esp32")
    new_cert = enrollment.redeem(enrollment.create_code(reenroll_board_id="esp32-01").code, "esp32-01", new, "esp32")
    assert registry.is_trusted("esp32-01", new, new_cert)
    assert not registry.is_trusted("esp32-01", old_key, old_cert)
    assert [cert["reason"] for cert in registry.certificates("esp32-01")] == ["enroll", "reenroll"]


def test_revoked_board_may_enroll_again_only_with_a_new_key(enrollment: Enrollment, registry: BoardRegistry,
                                                            events: list[BoardEvent]) -> None:
    key = new_key()
    enrollment.redeem(enrollment.create_code().code, "esp32-01", key, "esp32")
    registry.revoke("esp32-01", "stolen")
    code = enrollment.create_code().code
    with pytest.raises(InvalidBoardKey, match="revoked"):
        enrollment.redeem(code, "esp32-01", key, "esp32")
    events.clear()
    enrollment.redeem(code, "esp32-01", new_key(), "esp32")
    board = registry.get("esp32-01")
    assert (board.state, board.revoked_at, board.revoked_reason) == ("enrolled", None, None)
    assert events[1] == BoardStateChanged(board_id="esp32-01", old="revoked", new="enrolled", at=events[1].at)


def test_one_key_one_board(enrollment: Enrollment) -> None:
    key = new_key()
    enrollment.redeem(enrollment.create_code().code, "esp32-01", key, "esp32")
    with pytest.raises(PublicKeyInUse) as caught:
        enrollment.redeem(enrollment.create_code().code, "esp32-02", key, "esp32")
    assert caught.value.holder == "esp32-01"


def test_live_codes_are_bounded(enrollment: Enrollment, clock: Clock) -> None:
    for _ in range(MAX_LIVE_CODES):
        enrollment.create_code()
    with pytest.raises(TooManyLiveCodes):
        enrollment.create_code()
    clock.advance(3600)  # all expired
    enrollment.create_code()


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"ttl_s": 1}, "ttl_s"), ({"ttl_s": 10 * 86400}, "ttl_s"), ({"profile": "ESP 32"}, "profile"),
    ({"reenroll_board_id": "no spaces"}, "board_id"), ({"by": ""}, "by"),
])
def test_create_code_checks_its_inputs(enrollment: Enrollment, kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidBoardInput) as caught:
        enrollment.create_code(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_redeem_checks_board_id_and_profile(enrollment: Enrollment) -> None:
    code = enrollment.create_code().code
    with pytest.raises(InvalidBoardInput):
        enrollment.redeem(code, "bad id", new_key(), "esp32")
    with pytest.raises(InvalidBoardInput):
        enrollment.redeem(code, "esp32-01", new_key(), "../etc")
    enrollment.redeem(code, "esp32-01", new_key(), "esp32")
