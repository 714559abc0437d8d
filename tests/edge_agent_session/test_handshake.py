"""The handshake between a station and a board, honest and under attack."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from edge_agent.crypto.ed25519 import SigningKey, verify
from edge_agent.protocol import CHALLENGE, CHALLENGE_RESPONSE, ERROR, PROTOCOL_VERSION, make
from edge_agent.session import (
    LABEL,
    BadMac,
    HandshakeFailed,
    Session,
    SessionError,
    board_transcript,
    station_transcript,
)
from tests.edge_agent_session import parties
from tests.edge_agent_session.board_peer import (
    BOARD_ID,
    BOARD_RNG_SEED,
    CERT,
    STATION_ID,
    STATION_RNG_SEED,
    counter_rng,
)

OTHER_KEY = SigningKey(bytes(range(200, 232)))
PING = make("command", id=1, cmd="read_sensor", args={"sensor": "t1"})


def _flip(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


def test_a_full_handshake_gives_both_sides_matching_sessions() -> None:
    registry = parties.Registry()
    station = parties.station(registry)
    challenge = station.challenge()
    assert challenge["t"] == CHALLENGE and len(challenge["nonce"]) == 32 and len(challenge["epk"]) == 32
    response, board_session = parties.board().respond(challenge)
    assert response["t"] == CHALLENGE_RESPONSE and response["nonce"] == challenge["nonce"]
    assert response["cert"] == CERT
    station_session = station.finish(response)

    assert registry.asked == [(BOARD_ID, CERT)]
    assert station_session.transcript_hash == board_session.transcript_hash
    assert board_session.open(station_session.seal(PING))["args"] == {"sensor": "t1"}
    reply = make("result", id=1, ok=True, value=21)
    assert station_session.open(board_session.seal(reply))["value"] == 21


def test_transcripts_and_keys_follow_the_documented_layout() -> None:
    """Recomputes T_S, T_B and both keys from the documented formula with OpenSSL's
    X25519 and HKDF, from the same seeded randomness as the two roles."""
    station = parties.station(random_bytes=counter_rng(STATION_RNG_SEED))
    challenge = station.challenge()
    response, board_session = parties.board(random_bytes=counter_rng(BOARD_RNG_SEED)).respond(challenge)
    station_session = station.finish(response)

    station_rng = counter_rng(STATION_RNG_SEED)
    nonce, station_private = station_rng(32), station_rng(32)
    assert challenge["nonce"] == nonce
    t_s = (
        b"firefly-board-handshake-v1" + b"S" + PROTOCOL_VERSION.to_bytes(2, "big")
        + len(STATION_ID).to_bytes(2, "big") + STATION_ID.encode()
        + len(BOARD_ID).to_bytes(2, "big") + BOARD_ID.encode()
        + nonce + challenge["epk"]
    )  # fmt: skip
    assert station_transcript(STATION_ID, BOARD_ID, nonce, challenge["epk"]) == t_s
    t_b = t_s + challenge["sig"] + b"B" + len(CERT).to_bytes(2, "big") + CERT + response["epk"]
    assert board_transcript(t_s, challenge["sig"], CERT, response["epk"]) == t_b
    assert verify(parties.STATION_KEY.public_key, t_s, challenge["sig"])
    assert verify(parties.BOARD_KEY.public_key, t_b, response["sig"])

    shared = X25519PrivateKey.from_private_bytes(station_private).exchange(
        X25519PublicKey.from_public_bytes(response["epk"])
    )
    th = hashlib.sha256(t_b + response["sig"]).digest()
    assert station_session.transcript_hash == th

    def hkdf(info: bytes) -> bytes:
        return HKDF(algorithm=SHA256(), length=32, salt=th, info=LABEL + info).derive(shared)

    # A session built from the independently derived keys talks to both roles.
    independent = Session(hkdf(b" station->board"), hkdf(b" board->station"), th)
    assert board_session.open(independent.seal(PING))["args"] == PING["args"]
    reply = board_session.seal(make("result", id=1, ok=True))
    assert independent.open(reply) == station_session.open(reply)


def test_seeded_handshakes_are_reproducible() -> None:
    def run() -> tuple[dict[str, Any], dict[str, Any]]:
        station = parties.station(random_bytes=counter_rng(STATION_RNG_SEED))
        challenge = station.challenge()
        return challenge, parties.board(random_bytes=counter_rng(BOARD_RNG_SEED)).respond(challenge)[0]

    assert run() == run()


# --- the board refuses -------------------------------------------------------


def test_board_refuses_a_tampered_station_signature() -> None:
    challenge = parties.station().challenge()
    challenge["sig"] = _flip(challenge["sig"], 5)
    with pytest.raises(HandshakeFailed, match="station signature"):
        parties.board().respond(challenge)


def test_board_refuses_a_station_it_did_not_enroll_with() -> None:
    challenge = parties.station(key=OTHER_KEY).challenge()
    with pytest.raises(HandshakeFailed, match="station signature"):
        parties.board().respond(challenge)


def test_board_refuses_a_challenge_meant_for_another_board() -> None:
    challenge = parties.station(board_id="board-8").challenge()
    with pytest.raises(HandshakeFailed, match="station signature"):
        parties.board().respond(challenge)


def test_board_refuses_a_challenge_with_a_swapped_epk() -> None:
    challenge = parties.station().challenge()
    challenge["epk"] = X25519PrivateKey.generate().public_key().public_bytes_raw()  # the attacker's
    with pytest.raises(HandshakeFailed, match="station signature"):
        parties.board().respond(challenge)


def test_board_refuses_a_challenge_without_an_ephemeral_key() -> None:
    with pytest.raises(HandshakeFailed, match="lacks epk or sig"):
        parties.board().respond(make(CHALLENGE, nonce=bytes(32)))


@pytest.mark.parametrize("message", [make("hello", board_id="b", profile="p", agent_version="1", proto=1, caps=[]),
                                     {"v": 1, "t": CHALLENGE, "nonce": b"short"}, "not a message"])
def test_board_refuses_anything_but_a_challenge(message: Any) -> None:
    with pytest.raises(HandshakeFailed):
        parties.board().respond(message)


def test_board_refuses_a_signed_low_order_epk() -> None:
    """Only the station's own key can sign an epk, but a buggy station must not make
    the board derive keys from an all-zero secret."""
    nonce, epk = bytes(range(32)), bytes(32)
    sig = parties.STATION_KEY.sign(station_transcript(STATION_ID, BOARD_ID, nonce, epk))
    with pytest.raises(HandshakeFailed, match="low-order"):
        parties.board().respond(make(CHALLENGE, nonce=nonce, epk=epk, sig=sig))


# --- the station refuses -----------------------------------------------------


def test_station_refuses_a_tampered_board_signature() -> None:
    station = parties.station()
    response, _ = parties.board().respond(station.challenge())
    response["sig"] = _flip(response["sig"], 40)
    with pytest.raises(HandshakeFailed, match="signature does not verify"):
        station.finish(response)


def test_station_refuses_a_board_signing_with_another_key() -> None:
    station = parties.station()
    response, _ = parties.board(key=OTHER_KEY).respond(station.challenge())  # an impostor with the real cert
    with pytest.raises(HandshakeFailed, match="signature does not verify"):
        station.finish(response)


def test_station_refuses_when_its_records_hold_another_key() -> None:
    registry = parties.Registry(keys={(BOARD_ID, CERT): OTHER_KEY.public_key})
    station = parties.station(registry)
    response, _ = parties.board().respond(station.challenge())
    with pytest.raises(HandshakeFailed, match="signature does not verify"):
        station.finish(response)


@pytest.mark.parametrize("registry", [parties.Registry(revoked={BOARD_ID}), parties.Registry(keys={})],
                         ids=["revoked", "unknown"])
def test_station_refuses_revoked_and_unknown_boards(registry: parties.Registry) -> None:
    station = parties.station(registry)
    response, _ = parties.board().respond(station.challenge())
    with pytest.raises(HandshakeFailed, match="unknown, revoked"):
        station.finish(response)


def test_station_refuses_a_swapped_board_epk() -> None:
    station = parties.station()
    response, _ = parties.board().respond(station.challenge())
    response["epk"] = X25519PrivateKey.generate().public_key().public_bytes_raw()
    with pytest.raises(HandshakeFailed, match="signature does not verify"):
        station.finish(response)


def test_station_refuses_a_swapped_certificate() -> None:
    """The board signs the certificate it presents, so another valid one cannot be swapped in."""
    other_cert = CERT + b"-reissued"
    registry = parties.Registry(keys={(BOARD_ID, CERT): parties.BOARD_KEY.public_key,
                                      (BOARD_ID, other_cert): parties.BOARD_KEY.public_key})
    station = parties.station(registry)
    response, _ = parties.board().respond(station.challenge())
    response["cert"] = other_cert
    with pytest.raises(HandshakeFailed, match="signature does not verify"):
        station.finish(response)


def test_station_refuses_a_response_recorded_from_an_earlier_handshake() -> None:
    old = parties.station()
    recorded, _ = parties.board().respond(old.challenge())
    station = parties.station()
    station.challenge()
    with pytest.raises(HandshakeFailed, match="another challenge"):
        station.finish(recorded)
    fresh = parties.station()
    fresh.challenge()
    recorded["nonce"] = fresh._nonce  # echo the right nonce: the signature still covers the old one
    with pytest.raises(HandshakeFailed, match="signature does not verify"):
        fresh.finish(recorded)


def test_man_in_the_middle_relaying_with_its_own_ephemerals_is_refused_by_both() -> None:
    station = parties.station()
    challenge = station.challenge()
    mallory = X25519PrivateKey.generate().public_key().public_bytes_raw()
    with pytest.raises(HandshakeFailed):
        parties.board().respond({**challenge, "epk": mallory})
    response, _ = parties.board().respond(challenge)
    with pytest.raises(HandshakeFailed):
        station.finish({**response, "epk": mallory})


def test_a_replayed_challenge_gives_the_attacker_nothing() -> None:
    """A recorded challenge replayed to the board gets an answer, but the board's new
    session shares no key with anything the attacker recorded."""
    station = parties.station()
    challenge = station.challenge()
    response, board_session = parties.board().respond(challenge)
    station_session = station.finish(response)
    recorded_frame = station_session.seal(PING)
    _, replayed_session = parties.board().respond(challenge)
    with pytest.raises(BadMac):
        replayed_session.open(recorded_frame)
    assert board_session.open(recorded_frame)["id"] == 1


def test_station_reports_the_boards_error_message() -> None:
    station = parties.station()
    station.challenge()
    with pytest.raises(HandshakeFailed, match="peer refused: auth: station signature"):
        station.finish(make(ERROR, code="auth", msg="station signature"))


def test_station_handshake_is_single_use() -> None:
    station = parties.station()
    with pytest.raises(HandshakeFailed, match="without an outstanding challenge"):
        station.finish({})
    challenge = station.challenge()
    with pytest.raises(HandshakeFailed, match="twice"):
        station.challenge()
    response, _ = parties.board().respond(challenge)
    station.finish(response)
    with pytest.raises(HandshakeFailed, match="without an outstanding challenge"):
        station.finish(response)


def test_a_failed_handshake_cannot_be_retried_with_a_good_response() -> None:
    station = parties.station()
    response, _ = parties.board().respond(station.challenge())
    with pytest.raises(HandshakeFailed):
        station.finish({**response, "sig": bytes(64)})
    with pytest.raises(HandshakeFailed):
        station.finish(response)


def test_errors_form_one_tree() -> None:
    for error in (HandshakeFailed("x"), BadMac("y")):
        assert isinstance(error, SessionError)
    assert HandshakeFailed("no cert").reason == "no cert"
