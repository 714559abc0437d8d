"""The real agent on the MicroPython unix port answering what a station asks of it outside
commands: a renewed certificate (cert_update) replaces the stored one and nothing else, and
a hello_request gets the hello again (before enrollment too), at most once per
REHELLO_MIN_INTERVAL_S, never for a sealed request."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable

from edge_agent.agent.link import REHELLO_MIN_INTERVAL_S
from tests.edge_agent_runtime.board import CERT, STATION_KEY, Board, enroll_response

MakeBoard = Callable[..., Board]
RENEWED = b"renewed-cert:" + bytes(range(24))
QUIET_S = 1.0  # how long a test listens to be sure no hello follows an ignored request


def _hellos_within(board: Board, seconds: float) -> int:
    """How many hellos the agent sends in the next `seconds` (everything else is drained)."""
    deadline = time.monotonic() + seconds
    hellos = 0
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            _at, msg = board.inbox.get(timeout=remaining)
        except queue.Empty:
            break
        hellos += msg["t"] == "hello"
    return hellos


def _wait_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def test_cert_update_replaces_the_certificate_and_keeps_the_station(make_board: MakeBoard) -> None:
    board = make_board()
    board.boot()
    board.expect("heartbeat")
    board.send("cert_update", cert=RENEWED)
    board.expect("log", level="info", msg="certificate renewed")
    assert board.storage.load_cert() == RENEWED
    assert board.storage.load_station_pubkey() == STATION_KEY
    assert board.storage.load_station_id() == "st-test"
    assert not list(board.state_dir.glob("*.tmp"))  # written atomically: no leftover

    board.send("cert_update", cert=b"")  # nothing to store: ignored, the renewed one stays
    counted = [board.expect("heartbeat")["counters"]["ignored"] for _ in range(3)]
    assert counted[-1] == 1
    assert board.storage.load_cert() == RENEWED


def test_hello_request_gets_the_hello_again_at_most_every_two_seconds(make_board: MakeBoard) -> None:
    board = make_board()
    board.storage.save_enrollment(CERT, STATION_KEY, "st-test")
    board.start()
    hello_at, hello = board.receive("hello")
    board.send("hello_request")  # crossed our hello on the wire: ignored
    assert _hellos_within(board, QUIET_S) == 0

    _wait_until(hello_at + REHELLO_MIN_INTERVAL_S + 0.2)
    board.send("hello_request")
    again_at, again = board.receive("hello", timeout=QUIET_S * 2)
    assert again == hello
    board.expect("heartbeat")  # serving again, without a restart of the process
    assert board.process is not None and board.process.poll() is None

    for _ in range(5):  # a flood, and a sealed one, within the interval: no more hellos
        board.send("hello_request")
    board.send("hello_request", n=1, mac=bytes(32))
    assert _hellos_within(board, QUIET_S) == 0

    _wait_until(again_at + REHELLO_MIN_INTERVAL_S + 0.2)
    board.send("hello_request")
    board.expect("hello", timeout=QUIET_S * 2)
    assert "asked for our hello" in board.stderr()


def test_hello_request_during_enrollment_repeats_hello_and_the_request(make_board: MakeBoard) -> None:
    board = make_board({"enroll_token": "K7Q2-9XJ4"})
    board.start()
    hello_at, hello = board.receive("hello")
    first = board.expect("enroll_request")  # both lost: the station opened its port later
    _wait_until(hello_at + REHELLO_MIN_INTERVAL_S + 0.2)
    board.send("hello_request")
    assert board.expect("hello") == hello
    assert board.expect("enroll_request") == first  # the same code: it was not used yet
    board.send("enroll_response", **enroll_response(first, station_id="st-1"))
    board.expect("heartbeat")
    assert board.storage.load_cert() == CERT
