"""Encode/decode throughput of a typical heartbeat, on whichever runtime runs it:

    MICROPYPATH=. .venv/bin/micropython tests/edge_agent/protocol_speed.py
    PYTHONPATH=. .venv/bin/python tests/edge_agent/protocol_speed.py

Prints one JSON line. Not a test (no timed assertions); the benchmarks/ folder may adopt it.
"""

import json
import sys
import time

from edge_agent.protocol import HEARTBEAT, FrameDecoder, decode_message, encode_frame, encode_message, make

ROUNDS = 2000

FIELDS = {
    "seq": 4242, "uptime_s": 86400, "free_mem": 41234, "battery_mv": 3712, "n": 8484, "mac": bytes(32),
    "counters": {"frames_ok": 100000, "dropped_crc": 2, "dropped_oversize": 0, "dropped_malformed": 1},
}


def now_us() -> int:
    ticks_us = getattr(time, "ticks_us", None)  # MicroPython
    if ticks_us is not None:
        return int(ticks_us())
    return time.perf_counter_ns() // 1000


def elapsed_us(start: int) -> int:
    ticks_diff = getattr(time, "ticks_diff", None)  # MicroPython's ticks wrap around
    if ticks_diff is not None:
        return int(ticks_diff(now_us(), start))
    return now_us() - start


def main() -> None:
    msg = make(HEARTBEAT, **FIELDS)
    start = now_us()
    for _ in range(ROUNDS):
        frame = encode_frame(encode_message(msg))
    encode_us = elapsed_us(start) / ROUNDS
    decoder = FrameDecoder()
    start = now_us()
    for _ in range(ROUNDS):
        decode_message(decoder.feed(frame)[0])
    decode_us = elapsed_us(start) / ROUNDS
    print(json.dumps({
        "runtime": sys.implementation.name,
        "frame_bytes": len(frame),
        "encode_us": round(encode_us, 1),
        "decode_us": round(decode_us, 1),
        "encode_per_s": int(1e6 / encode_us),
        "decode_per_s": int(1e6 / decode_us),
    }))


main()
