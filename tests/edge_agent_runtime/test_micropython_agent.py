"""The real agent on the MicroPython unix port, on a pty, driven with edge_agent.protocol:
hello and enrollment, heartbeats on time, commands, a verified file transfer, resume
after kill -9, corrupted frames dropped and counted, reboot and watchdog exits."""

from __future__ import annotations

import hashlib
import itertools
import json
import socket
import statistics
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_agent.agent import _port
from edge_agent.enroll_proof import code_key, code_lookup, request_proof
from edge_agent.protocol import FILE_CHUNK_SIZE, FrameDecoder, decode_message, encode_frame, encode_message, make
from tests.edge_agent_runtime.board import CERT, CODE, HEAPSIZE, STATION_KEY, Board, enroll_response

MakeBoard = Callable[..., Board]


def test_hello_then_enrollment_stores_the_certificate(make_board: MakeBoard) -> None:
    board = make_board({"enroll_token": "K7Q2-9XJ4"})
    board.start()
    hello = board.expect("hello")
    request = board.expect("enroll_request")
    board.send("enroll_response", **enroll_response(request, station_id="st-1"))
    board.expect("heartbeat")

    identity = json.loads((board.state_dir / "identity.json").read_text())
    public = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(identity["seed"])).public_key().public_bytes_raw()
    assert hello["board_id"] == identity["board_id"] == request["board_id"]
    assert hello["profile"] == "unix-sim" and hello["proto"] == 1 and "files" in hello["caps"]
    assert request["pubkey"] == public
    key = code_key("K7Q29XJ4")  # the code itself never crosses the wire, only what it derives
    assert "token" not in request and b"K7Q2" not in encode_message(request)
    assert request["lookup"] == code_lookup("K7Q29XJ4")
    assert request["proof"] == request_proof(key, request["board_id"], "unix-sim", public)
    assert (board.state_dir / "cert.bin").read_bytes() == CERT
    assert (board.state_dir / "station.pub").read_bytes() == STATION_KEY
    assert board.storage.load_station_id() == "st-1"
    assert "enroll_token" not in board.storage.load_config()  # one-time: gone once used

    board.kill9()
    board.start()
    board.expect("hello", board_id=hello["board_id"])  # same identity after a restart
    board.expect("heartbeat")
    again = board.storage.load_identity()
    assert again is not None and again.seed.hex() == identity["seed"]


ATTACKER_KEY = bytes(range(100, 132))
FORGED_RESPONSES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "wrong proof": lambda request: {**enroll_response(request), "proof": bytes(32)},
    "no proof": lambda request: {k: v for k, v in enroll_response(request).items() if k != "proof"},
    "station key swapped": lambda request: {**enroll_response(request), "station_pubkey": ATTACKER_KEY},
    "certificate swapped": lambda request: {**enroll_response(request), "cert": b"forged-cert"},
    "station id swapped": lambda request: {**enroll_response(request), "station_id": "st-evil"},
    "answered without the code": lambda request: enroll_response(request, code="ZZZZ-ZZZZ",
                                                                  station_pubkey=ATTACKER_KEY),
}


def test_a_response_that_does_not_prove_the_code_is_refused(make_board: MakeBoard) -> None:
    """Someone on the link during enrollment cannot make the board trust another station: a
    response whose proof does not cover what it carries stores nothing and keeps the code."""
    board = make_board()
    for name, forge in FORGED_RESPONSES.items():
        board.start()
        board.expect("hello")
        board.send("enroll_response", **forge(board.expect("enroll_request")))
        log = board.expect("log", level="warning")
        assert "could not prove it knows the code" in log["msg"], name
        board.expect("heartbeat")  # served unenrolled, as after any refusal
        assert not board.storage.is_enrolled(), name
        assert board.storage.load_cert() is None and board.storage.load_station_pubkey() is None, name
        assert board.storage.load_station_id() == "", name
        assert board.storage.load_config()["enroll_token"] == CODE, name  # kept for the real station
        board.kill9()
    board.boot()  # the real station's answer is still accepted
    assert board.expect("log", level="info")["msg"] == "enrolled with station st-test"
    assert board.storage.load_cert() == CERT and board.storage.load_station_pubkey() == STATION_KEY
    assert "enroll_token" not in board.storage.load_config()


def test_heartbeats_arrive_on_time_with_counters(make_board: MakeBoard) -> None:
    board = make_board()
    board.boot()
    first_at, first = board.receive("heartbeat")
    arrivals = [first_at]
    beats = [first]
    for _ in range(8):
        at, beat = board.receive("heartbeat")
        arrivals.append(at)
        beats.append(beat)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    rss = board.rss_bytes()
    print(f"heartbeat gaps (s): mean {statistics.mean(gaps):.4f} min {min(gaps):.4f} max {max(gaps):.4f}; "
          f"agent RSS {rss / 1e6:.1f} MB; free_mem {beats[-1]['free_mem']}")
    assert [beat["seq"] for beat in beats] == list(range(beats[0]["seq"], beats[0]["seq"] + 9))
    assert abs(statistics.mean(gaps) - 0.5) < 0.05
    assert max(abs(gap - 0.5) for gap in gaps) < 0.2
    last = beats[-1]
    assert 0 < last["free_mem"] < int(HEAPSIZE.rstrip("k")) * 1024 - 100_000  # the agent's own code uses the rest
    assert 3300 <= last["battery_mv"] <= 4200
    assert last["counters"]["frames_ok"] >= 1 and last["counters"]["reconnects"] == 0
    telemetry = board.expect("telemetry")
    assert set(telemetry["values"]) == {"temperature", "battery"}


def test_commands_are_answered(make_board: MakeBoard) -> None:
    board = make_board()
    board.boot()
    config = board.command(1, "read_config")
    assert config["ok"] and config["value"]["heartbeat_s"] == 0.5 and "enroll_token" not in config["value"]

    written = board.command(2, "write_config", telemetry_s=2.5, log_level="debug")
    assert written["ok"] and written["value"]["telemetry_s"] == 2.5
    assert board.storage.load_config()["telemetry_s"] == 2.5  # persisted in flash
    assert board.expect("log", level="info")["msg"].startswith("config written")

    refused = board.command(3, "write_config", heartbeat_s="fast")
    assert not refused["ok"] and "heartbeat_s" in refused["error"]
    assert not board.command(4, "write_config", no_such_option=1)["ok"]

    temperature = board.command(5, "read_sensor", name="temperature")
    assert temperature["ok"] and 10.0 < temperature["value"] < 40.0
    both = board.command(6, "read_sensor")
    assert set(both["value"]) == {"temperature", "battery"}
    assert not board.command(7, "read_sensor", name="humidity")["ok"]

    echoed = board.command(8, "run", name="echo", args={"x": [1, "two"]})
    assert echoed["ok"] and echoed["value"] == {"x": [1, "two"]}
    assert board.command(9, "run", name="mem")["value"]["free_mem"] > 0
    unknown = board.command(10, "run", name="format_flash")
    assert not unknown["ok"] and "no handler" in unknown["error"]

    board.kill9()
    board.start()
    board.expect("hello")
    assert board.command(11, "read_config")["value"]["telemetry_s"] == 2.5  # survived the restart


def _transfer(board: Board, xfer: int, path: str, payload: bytes, start: int = 0, stop: int | None = None) -> int:
    """Send chunks from `start` up to `stop` (default: the end); returns the board's have."""
    have = start
    stop = len(payload) if stop is None else stop
    while have < stop:
        board.send("file_chunk", xfer=xfer, off=have, data=payload[have:have + FILE_CHUNK_SIZE])
        have = board.expect("file_chunk_ack", xfer=xfer)["have"]
    return have


def test_file_transfer_completes_and_is_verified(make_board: MakeBoard) -> None:
    board = make_board()
    board.boot()
    payload = bytes((i * 7) % 251 for i in range(3 * FILE_CHUNK_SIZE + 1000))
    digest = hashlib.sha256(payload).digest()
    started = time.monotonic()
    board.send("file_begin", xfer=1, path="app/data.bin", size=len(payload), sha256=digest)
    assert board.expect("file_status", xfer=1) == make("file_status", xfer=1, have=0, state="receiving")
    board.send("file_chunk", xfer=1, off=FILE_CHUNK_SIZE, data=b"ahead")  # off != have: not appended
    assert board.expect("file_chunk_ack", xfer=1)["have"] == 0
    assert _transfer(board, 1, "app/data.bin", payload) == len(payload)
    board.send("file_end", xfer=1)
    assert board.expect("file_status", xfer=1)["state"] == "done"
    took = time.monotonic() - started
    assert (board.state_dir / "files" / "app" / "data.bin").read_bytes() == payload
    print(f"{len(payload)} bytes in {took:.2f} s over the pty")

    bad = b"x" * 5000
    board.send("file_begin", xfer=2, path="app/data.bin", size=len(bad), sha256=hashlib.sha256(b"other").digest())
    board.expect("file_status", xfer=2, state="receiving")
    _transfer(board, 2, "app/data.bin", bad)
    board.send("file_end", xfer=2)
    failed = board.expect("file_status", xfer=2)
    assert failed["state"] == "failed" and failed["error"] == "sha256 mismatch"
    assert (board.state_dir / "files" / "app" / "data.bin").read_bytes() == payload  # old file kept

    board.send("file_begin", xfer=3, path="../../state/identity.json", size=10, sha256=digest)
    assert board.expect("file_status", xfer=3)["state"] == "failed"


def test_transfer_resumes_after_kill_9(make_board: MakeBoard) -> None:
    board = make_board()
    board.boot()
    payload = bytes(range(256)) * 60  # 15360 bytes: four chunks
    digest = hashlib.sha256(payload).digest()
    board.send("file_begin", xfer=7, path="fw/update.bin", size=len(payload), sha256=digest)
    board.expect("file_status", xfer=7, state="receiving")
    have = _transfer(board, 7, "fw/update.bin", payload, stop=2 * FILE_CHUNK_SIZE)
    board.send("file_chunk", xfer=7, off=have, data=payload[have:have + FILE_CHUNK_SIZE])
    board.kill9()  # mid-transfer: that last chunk may or may not have reached the flash

    board.start()
    board.expect("hello")
    board.send("file_begin", xfer=8, path="fw/update.bin", size=len(payload), sha256=digest)
    status = board.expect("file_status", xfer=8)
    assert status["state"] == "receiving"
    assert status["have"] in (have, have + FILE_CHUNK_SIZE)
    assert _transfer(board, 8, "fw/update.bin", payload, start=status["have"]) == len(payload)
    board.send("file_end", xfer=8)
    assert board.expect("file_status", xfer=8)["state"] == "done"
    assert (board.state_dir / "files" / "fw" / "update.bin").read_bytes() == payload
    assert not list((board.state_dir / "xfer").iterdir())  # no partial file left behind

    board.send("file_begin", xfer=9, path="fw/update.bin", size=len(payload), sha256=digest)
    assert board.expect("file_status", xfer=9)["state"] == "done"  # a lost status: already there


def test_corrupted_frames_are_dropped_and_counted(make_board: MakeBoard) -> None:
    board = make_board()
    board.boot()
    frame = bytearray(encode_frame(encode_message(make("command", id=1, cmd="read_config"))))
    frame[5] ^= 0x40  # the CRC no longer matches
    board.send_raw(bytes(frame))
    board.send_raw(b"\x00\x01\x00")  # too short to hold a CRC
    board.send_raw(encode_frame(b"\xa1\x61v\x09"))  # good CRC, but protocol version 9
    assert board.command(2, "read_config")["ok"]  # the link carries on
    counters = board.expect("heartbeat")["counters"]
    assert counters["dropped_crc"] == 1
    assert counters["dropped_malformed"] == 1
    assert counters["dropped_invalid"] == 1
    assert board.invalid == 0  # and everything the agent sent was valid


def test_reboot_command_exits_with_the_reboot_code(make_board: MakeBoard) -> None:
    board = make_board()
    board.boot()
    assert board.command(1, "reboot")["ok"]
    assert board.wait_exit() == _port.EXIT_REBOOT


def test_watchdog_reboots_a_stalled_loop(make_board: MakeBoard) -> None:
    board = make_board({"heartbeat_s": 0.25, "watchdog_s": 1.0})
    board.boot()
    board.expect("heartbeat")
    board.send("command", id=1, cmd="run", args={"name": "stall", "args": {"ms": 1600}})
    started = time.monotonic()
    assert board.wait_exit() == _port.EXIT_WATCHDOG  # noticed when the loop came back
    assert time.monotonic() - started < 15.0  # bounded, with room for a loaded runner
    assert "event loop blocked" in board.stderr()


def test_guard_thread_kills_a_loop_that_never_comes_back(make_board: MakeBoard) -> None:
    board = make_board({"heartbeat_s": 0.25, "watchdog_s": 1.0})
    board.boot()
    board.expect("heartbeat")
    board.send("command", id=1, cmd="run", args={"name": "stall", "args": {"ms": 60000}})
    started = time.monotonic()
    assert board.wait_exit() == -9  # the unix port's guard: kill -9 after twice the limit
    assert time.monotonic() - started < 15.0  # bounded, with room for a loaded runner


class _Frames:
    """Messages from a TCP connection in order: bodies decoded together are kept, not dropped."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn, self.decoder, self.pending = conn, FrameDecoder(), list[dict[str, Any]]()

    def expect(self, want: str, timeout: float = 15.0) -> dict[str, Any]:
        self.conn.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while self.pending:
                msg = self.pending.pop(0)
                if msg["t"] == want:
                    return msg
            self.pending += [decode_message(body) for body in self.decoder.feed(self.conn.recv(4096))]
        raise AssertionError(f"no {want}")


def test_tcp_transport_reconnects(make_board: MakeBoard) -> None:
    board = make_board()
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(15.0)
        board.start("--transport", f"tcp:127.0.0.1:{server.getsockname()[1]}")
        conn, _ = server.accept()
        with conn:
            frames = _Frames(conn)
            frames.expect("hello")
            request = frames.expect("enroll_request")
            conn.sendall(encode_frame(encode_message(make("enroll_response",
                                                          **enroll_response(request, station_id="")))))
            assert frames.expect("heartbeat")["counters"]["reconnects"] == 0
        conn, _ = server.accept()  # the agent dials again after its backoff
        with conn:
            frames = _Frames(conn)
            frames.expect("hello")
            assert frames.expect("heartbeat")["counters"]["reconnects"] == 1
