"""The board role of the handshake as a line-driven peer: test_micropython.py runs it
under MicroPython and talks to it from a CPython station; the CPython tests import
its constants and counter_rng. Must stay MicroPython-compatible: no __future__, no
runtime typing.

Commands on stdin, one per line, answers on stdout (bytes as hex, frames are whole
COBS frames with their CRC):
    challenge <frame>   -> response <frame> / time_respond_us <n>, or error <class> <reason>
    open <frame>        -> sealed <frame> (a result echoing the command's args), or error <class>
    x25519 <k> <u>      -> x25519 <out>, or error <class>
    bench               -> time_<step>_us <n> lines for each step of the board's answer
every answer ends with a line "end". argv[1] == "fixed" makes the board's randomness
counter_rng(BOARD_RNG_SEED) instead of os.urandom.
"""

import hashlib
import os
import sys
import time

from edge_agent.crypto.ed25519 import SigningKey, verify
from edge_agent.crypto.x25519 import public_from_private, x25519
from edge_agent.protocol.framing import FrameDecoder, encode_frame
from edge_agent.protocol.messages import RESULT, decode_message, encode_message, make
from edge_agent.session import BoardHandshake, board_transcript, derive_keys, station_transcript

STATION_SEED = bytes(range(32))
BOARD_SEED = bytes(range(100, 132))
STATION_ID = "station-alpha"
BOARD_ID = "board-7"
CERT = b"firefly-cert:" + BOARD_ID.encode() + bytes(range(64))  # opaque to the session layer
BOARD_RNG_SEED = b"board rng"
STATION_RNG_SEED = b"station rng"


def counter_rng(seed: bytes) -> "object":
    """A deterministic random_bytes(n) for reproducible transcripts (tests only)."""
    state = [0]

    def random_bytes(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(seed + state[0].to_bytes(8, "big")).digest()
            state[0] += 1
        return out[:n]

    return random_bytes


def now_us() -> int:
    return time.time_ns() // 1000  # both runtimes have time_ns; MicroPython lacks perf_counter


def answer(*lines: str) -> None:
    for line in lines:
        print(line)
    print("end")
    if hasattr(sys.stdout, "flush"):
        sys.stdout.flush()  # the driver waits for "end"; CPython buffers a pipe


def bench(board_key: "SigningKey", station_pubkey: bytes, challenge: "dict") -> None:
    """Times each step of BoardHandshake.respond separately."""
    times = []
    start = now_us()
    part = station_transcript(STATION_ID, BOARD_ID, challenge["nonce"], challenge["epk"])
    ok = verify(station_pubkey, part, challenge["sig"])
    times.append(("verify_station_sig", now_us() - start))
    start = now_us()
    private = bytes(range(1, 33))
    epk = public_from_private(private)
    times.append(("x25519_keygen", now_us() - start))
    start = now_us()
    x25519(private, challenge["epk"])
    times.append(("x25519_shared", now_us() - start))
    board_part = board_transcript(part, challenge["sig"], CERT, epk)
    start = now_us()
    sig = board_key.sign(board_part)
    times.append(("sign", now_us() - start))
    start = now_us()
    derive_keys(private, challenge["epk"], board_part, sig)
    times.append(("derive_keys", now_us() - start))
    answer("verified " + str(ok), *[f"time_{name}_us {us}" for name, us in times])


def unframe(decoder: "FrameDecoder", frame_hex: str) -> bytes:
    bodies = decoder.feed(bytes.fromhex(frame_hex))
    if len(bodies) != 1:
        raise ValueError("expected one frame, got " + str(len(bodies)) + ": " + str(decoder.counters()))
    return bodies[0]


def main() -> None:
    random_bytes = counter_rng(BOARD_RNG_SEED) if sys.argv[-1] == "fixed" else os.urandom
    start = now_us()
    board_key = SigningKey(BOARD_SEED)  # at boot: builds the base-point table once
    boot_us = now_us() - start
    station_pubkey = SigningKey(STATION_SEED).public_key  # what enrollment stored
    board = BoardHandshake(board_key, BOARD_ID, CERT, STATION_ID, station_pubkey, random_bytes)
    answer(f"ready boot_us {boot_us}")
    decoder = FrameDecoder()
    session = None
    last_challenge = None
    while True:
        words = sys.stdin.readline().split()
        if not words:
            break
        try:
            if words[0] == "challenge":
                last_challenge = decode_message(unframe(decoder, words[1]))
                start = now_us()
                response, session = board.respond(last_challenge)
                took = now_us() - start
                answer("response " + encode_frame(encode_message(response)).hex(), f"time_respond_us {took}")
            elif words[0] == "open" and session is not None:
                msg = session.open(unframe(decoder, words[1]))
                reply = make(RESULT, id=msg["id"], ok=True, value=msg.get("args"))
                answer("sealed " + encode_frame(session.seal(reply)).hex())
            elif words[0] == "x25519":
                answer("x25519 " + x25519(bytes.fromhex(words[1]), bytes.fromhex(words[2])).hex())
            elif words[0] == "bench" and last_challenge is not None:
                bench(board_key, station_pubkey, last_challenge)
            else:
                answer("error UnknownCommand " + words[0])
        except Exception as exc:  # every failure goes back to the driver as a line
            answer("error " + type(exc).__name__ + " " + str(exc))


if __name__ == "__main__":
    main()
