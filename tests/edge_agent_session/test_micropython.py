"""The board role on a real MicroPython (the unix port) against the station role in
CPython: board_peer.py answers a live challenge, opens and seals frames, and refuses
replayed, corrupted and reflected ones. A second run with seeded randomness must give
byte for byte the answer CPython's board role gives."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.crypto.ed25519 import SigningKey
from edge_agent.protocol import FrameDecoder, decode_message, encode_frame, encode_message, make
from edge_agent.session import Session
from tests.edge_agent_session import parties
from tests.edge_agent_session.board_peer import BOARD_RNG_SEED, STATION_RNG_SEED, counter_rng
from tests.edge_agent_session.test_x25519 import ITERATED_1, RFC7748_5_2

REPO = Path(__file__).resolve().parents[2]
PEER = Path(__file__).with_name("board_peer.py")
MICROPYTHON = Path(sys.executable).with_name("micropython")
PEER_TIMEOUT_S = 60.0  # a handshake takes ~20 ms on the unix port; a hang means a broken port

pytestmark = pytest.mark.skipif(not MICROPYTHON.exists(), reason="no micropython unix port in this venv")


class Peer:
    """board_peer.py under MicroPython, one command line in, answer lines out."""

    def __init__(self, *args: str) -> None:
        self._proc = subprocess.Popen(
            [str(MICROPYTHON), str(PEER), *args],
            cwd=REPO,
            env={**os.environ, "MICROPYPATH": f"{REPO}:.frozen"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._watchdog = threading.Timer(PEER_TIMEOUT_S, self._proc.kill)
        self._watchdog.start()
        self.boot = self._answer()

    def _answer(self) -> list[str]:
        assert self._proc.stdout is not None
        lines = []
        while (line := self._proc.stdout.readline().strip()) != "end":
            assert line, "the MicroPython peer died"
            lines.append(line)
        return lines

    def ask(self, *words: str) -> list[str]:
        assert self._proc.stdin is not None
        self._proc.stdin.write(" ".join(words) + "\n")
        self._proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(PEER_TIMEOUT_S)
        self._watchdog.cancel()


@pytest.fixture
def peer() -> Iterator[Peer]:
    running = Peer()
    yield running
    running.close()


def _frame(body: bytes) -> str:
    return encode_frame(body).hex()


def _body(words: list[str], tag: str) -> bytes:
    assert words[0].startswith(tag + " "), words
    (body,) = FrameDecoder().feed(bytes.fromhex(words[0].split()[1]))
    return body


def _timings(lines: list[str]) -> dict[str, int]:
    return {name: int(value) for name, value in (line.split() for line in lines if line.startswith("time_"))}


def _handshake(peer: Peer) -> tuple[Session, list[str]]:
    station = parties.station()
    answer = peer.ask("challenge", _frame(encode_message(station.challenge())))
    return station.finish(decode_message(_body(answer, "response"))), answer


def test_micropython_board_completes_a_handshake_with_a_cpython_station(peer: Peer) -> None:
    session, answer = _handshake(peer)
    command = make("command", id=3, cmd="read_sensor", args={"sensor": "t1", "raw": b"\x00\x01"})
    sealed = session.seal(command)
    reply = session.open(_body(peer.ask("open", _frame(sealed)), "sealed"))
    assert (reply["t"], reply["id"], reply["value"]) == ("result", 3, {"sensor": "t1", "raw": b"\x00\x01"})

    assert peer.ask("open", _frame(sealed))[0].startswith("error Replay")
    flipped = sealed[:20] + bytes([sealed[20] ^ 0x10]) + sealed[21:]
    assert peer.ask("open", _frame(flipped))[0].startswith("error BadMac")
    reflected = _body(peer.ask("open", _frame(session.seal(command))), "sealed")
    assert peer.ask("open", _frame(reflected))[0].startswith("error BadMac")
    other_session, _ = parties.handshake()
    assert peer.ask("open", _frame(other_session.seal(command)))[0].startswith("error BadMac")

    timings = _timings(answer) | _timings(peer.ask("bench"))
    print(f"MicroPython board: boot {peer.boot[0]}, handshake steps (us): {timings}")


def test_micropython_board_refuses_a_forged_challenge(peer: Peer) -> None:
    challenge = parties.station(key=SigningKey(bytes(32))).challenge()
    answer = peer.ask("challenge", _frame(encode_message(challenge)))
    assert answer[0].startswith("error HandshakeFailed handshake failed: the station signature does not verify")


def test_seeded_micropython_board_answers_byte_for_byte_like_cpython() -> None:
    peer = Peer("fixed")
    try:
        station = parties.station(random_bytes=counter_rng(STATION_RNG_SEED))
        challenge = station.challenge()
        answer = _body(peer.ask("challenge", _frame(encode_message(challenge))), "response")
    finally:
        peer.close()
    expected, _ = parties.board(random_bytes=counter_rng(BOARD_RNG_SEED)).respond(challenge)
    assert answer == encode_message(expected)
    station.finish(decode_message(answer))


def test_micropython_x25519_matches_rfc7748(peer: Peer) -> None:
    for scalar, u, out in RFC7748_5_2:
        assert peer.ask("x25519", scalar, u) == [f"x25519 {out}"]
    nine = (9).to_bytes(32, "little").hex()
    assert peer.ask("x25519", nine, nine) == [f"x25519 {ITERATED_1}"]
    assert peer.ask("x25519", nine, "00" * 32)[0].startswith("error LowOrderPoint")
