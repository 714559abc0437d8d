"""Enrollment codes against a real database: shown once, stored hashed, single use even when
two boards race for one, refused when expired, for another profile or board, and rate limited."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from edge_agent.crypto import compare_digest
from edge_agent.enroll_proof import code_key, code_lookup, request_proof, response_proof
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
    ProofInvalid,
    PublicKeyInUse,
    Redeemed,
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


def _request(code: str, board_id: str, key: bytes, profile: str = "esp32") -> tuple[bytes, bytes]:
    """The lookup and proof a board holding `code` sends in its enroll_request."""
    raw = normalize_code(code)
    assert raw is not None
    return code_lookup(raw), request_proof(code_key(raw), board_id, profile, key)


def test_a_proof_of_the_code_enrolls_and_the_answer_proves_the_code_back(
        enrollment: Enrollment, ca: BoardCA, registry: BoardRegistry) -> None:
    issued = enrollment.create_code()
    key = new_key()
    lookup, proof = _request(issued.code, "esp32-01", key)
    redeemed = enrollment.redeem_request(lookup, proof, "esp32-01", key, "esp32", source=SERIAL)
    assert isinstance(redeemed, Redeemed) and registry.is_trusted("esp32-01", key, redeemed.cert)
    k = code_key(issued.code.replace("-", ""))
    assert "key=" not in repr(redeemed).replace("public_key=", "")  # K stays out of logs and tracebacks
    answer = redeemed.response_proof("st-1", ca.station_public_key)
    assert compare_digest(answer, response_proof(k, "esp32-01", key, redeemed.cert, "st-1", ca.station_public_key))
    # the answer covers everything the board will store: change any of it and it no longer verifies
    for tampered in (("esp32-02", key, redeemed.cert, "st-1", ca.station_public_key),
                     ("esp32-01", new_key(), redeemed.cert, "st-1", ca.station_public_key),
                     ("esp32-01", key, redeemed.cert + b"\x00", "st-1", ca.station_public_key),
                     ("esp32-01", key, redeemed.cert, "st-2", ca.station_public_key),
                     ("esp32-01", key, redeemed.cert, "st-1", new_key())):
        assert not compare_digest(answer, response_proof(k, *tampered))
    assert not compare_digest(answer, response_proof(code_key("ZZZZZZZZ"), "esp32-01", key, redeemed.cert, "st-1",
                                                     ca.station_public_key))


@pytest.mark.parametrize("forge", ["wrong proof", "proof for another key", "proof for another profile",
                                   "unknown lookup", "no lookup", "short lookup", "no proof"])
def test_a_request_that_does_not_prove_a_live_code_is_refused_and_counted(
        enrollment: Enrollment, registry: BoardRegistry, forge: str) -> None:
    issued = enrollment.create_code()
    key = new_key()
    lookup, proof = _request(issued.code, "esp32-01", key)
    other_lookup = code_lookup("ZZZZZZZZ" if issued.code != "ZZZZ-ZZZZ" else "YYYYYYYY")
    sent: tuple[object, object] = {
        "wrong proof": (lookup, bytes(32)),
        "proof for another key": (lookup, _request(issued.code, "esp32-01", new_key())[1]),
        "proof for another profile": (lookup, _request(issued.code, "esp32-01", key, "rp2040")[1]),
        "unknown lookup": (other_lookup, proof),
        "no lookup": (None, proof),
        "short lookup": (lookup[:7], proof),
        "no proof": (lookup, None),
    }[forge]
    expected = ProofInvalid if forge.startswith("proof") or forge == "wrong proof" else CodeUnknown
    assert enrollment.failures.check(SERIAL) is None
    for _ in range(FAILED_PER_SOURCE):
        with pytest.raises(expected):
            enrollment.redeem_request(*sent, "esp32-01", key, "esp32", source=SERIAL)
    with pytest.raises(EnrollmentRateLimited):  # each one was counted as a wrong guess
        enrollment.redeem_request(lookup, proof, "esp32-01", key, "esp32", source=SERIAL)
    assert registry.list() == []
    enrollment.redeem_request(lookup, proof, "esp32-01", key, "esp32", source="tcp:10.0.0.7")  # not spent


def test_used_and_expired_codes_are_refused_by_lookup_and_counted(enrollment: Enrollment, clock: Clock) -> None:
    used, expired = enrollment.create_code(ttl_s=3600), enrollment.create_code(ttl_s=600)
    key = new_key()
    enrollment.redeem_request(*_request(used.code, "esp32-01", key), "esp32-01", key, "esp32")
    clock.advance(600)
    other = new_key()
    with pytest.raises(CodeUsed):
        enrollment.redeem_request(*_request(used.code, "esp32-02", other), "esp32-02", other, "esp32", source=SERIAL)
    with pytest.raises(CodeExpired):
        enrollment.redeem_request(*_request(expired.code, "esp32-02", other), "esp32-02", other, "esp32",
                                  source=SERIAL)
    for _ in range(FAILED_PER_SOURCE - 2):
        with pytest.raises(CodeUnknown):
            enrollment.redeem("ZZZZ-ZZZ0", "esp32-02", other, "esp32", source=SERIAL)
    with pytest.raises(EnrollmentRateLimited):
        enrollment.redeem(enrollment.create_code().code, "esp32-02", other, "esp32", source=SERIAL)


def test_the_database_holds_no_code_and_no_usable_key(enrollment: Enrollment, database: Database) -> None:
    issued = enrollment.create_code()
    raw = issued.code.replace("-", "")
    k, lookup = code_key(raw), code_lookup(raw)
    row = dict(database.connection.execute("SELECT * FROM board_enrollment_codes").fetchone())
    stored = b"".join(value if isinstance(value, bytes) else str(value).encode() for value in row.values())
    for secret in (raw.encode(), issued.code.encode(), k, k.hex().encode(), lookup, lookup.hex().encode()):
        assert secret not in stored  # the lookup is a 40-bit search away from the code: keyed too
    assert len(row["sealed_key"]) == 12 + 32 + 16  # nonce, K sealed, GCM tag
    key = new_key()
    enrollment.redeem(issued.code, "esp32-01", key, "esp32")
    used = dict(database.connection.execute("SELECT * FROM board_enrollment_codes").fetchone())
    assert used["sealed_key"] is None and used["used_by_board_id"] == "esp32-01"  # nothing left to prove


def test_a_sealed_key_moved_to_another_code_opens_nothing(enrollment: Enrollment, database: Database) -> None:
    """The sealed key is bound to its code: a database writer who copies one code's key onto
    another does not make the other code's proofs check against a key they know."""
    first, second = enrollment.create_code(), enrollment.create_code()
    with database.transaction() as db:
        db.execute("UPDATE board_enrollment_codes SET sealed_key = (SELECT sealed_key FROM board_enrollment_codes"
                   " WHERE id = ?) WHERE id = ?", (first.code_id, second.code_id))
    key = new_key()
    second_lookup = _request(second.code, "esp32-01", key)[0]
    for proof_from in (first.code, second.code):
        with pytest.raises(ProofInvalid):
            enrollment.redeem_request(second_lookup, _request(proof_from, "esp32-01", key)[1], "esp32-01", key,
                                      "esp32")
    enrollment.redeem(first.code, "esp32-01", key, "esp32")  # the untouched code still works
