"""Run under MicroPython (or CPython) by test_micropython.py: signs, verifies, hashes
and MACs fixed inputs with edge_agent.crypto and prints `name value` lines, plus
timings in microseconds. Must stay MicroPython-compatible: no __future__, no runtime typing."""

import time

try:  # noqa: SIM105  MicroPython has neither collections.abc nor contextlib
    from collections.abc import Callable
except ImportError:
    pass

from edge_agent.crypto import SigningKey, hmac_sha256, keypair_from_seed, sha512_pure, sign, verify

SEED = bytes(range(32))
MESSAGE = b"firefly challenge " + bytes(range(64))
HASH_INPUT = b"abc" * 100
MAC_KEY = bytes(range(40))
MAC_INPUT = b"frame 17 " * 20
REPEATS = 10
# Lengths around SHA-512 padding edges once R || A (64 bytes) is prepended.
EDGE_LENGTHS = (0, 1, 47, 48, 63, 64, 111, 112, 127, 128, 239, 300)


def now_us() -> int:
    return time.time_ns() // 1000  # both runtimes have time_ns; MicroPython lacks perf_counter


def elapsed_us(start: int) -> int:
    return now_us() - start


def best_of(fn: "Callable[[], object]") -> int:
    best = -1
    for _ in range(REPEATS):
        start = now_us()
        fn()
        took = elapsed_us(start)
        best = took if best < 0 or took < best else best
    return best


def main() -> None:
    start = now_us()
    _, public = keypair_from_seed(SEED)
    first_keygen_us = elapsed_us(start)
    signature = sign(SEED, MESSAGE)
    tampered = signature[:10] + bytes([signature[10] ^ 1]) + signature[11:]
    key = SigningKey(SEED)

    print("public", public.hex())
    print("signature", signature.hex())
    print("verify_ok", verify(public, MESSAGE, signature))
    print("verify_tampered", verify(public, MESSAGE, tampered))
    print("verify_other_message", verify(public, MESSAGE + b"!", signature))
    print("sha512", sha512_pure(HASH_INPUT).hex())
    print("hmac", hmac_sha256(MAC_KEY, MAC_INPUT).hex())
    for length in EDGE_LENGTHS:
        message = bytes(i % 251 for i in range(length))
        print(f"signature_{length}", sign(bytes([length % 256]) * 32, message).hex())
        print(f"sha512_{length}", sha512_pure(message).hex())
        print(f"hmac_{length}", hmac_sha256(message, MESSAGE).hex())
    print("time_first_keygen_us", first_keygen_us)
    print("time_keygen_us", best_of(lambda: keypair_from_seed(SEED)))
    print("time_sign_us", best_of(lambda: sign(SEED, MESSAGE)))
    print("time_signing_key_sign_us", best_of(lambda: key.sign(MESSAGE)))
    print("time_verify_us", best_of(lambda: verify(public, MESSAGE, signature)))
    print("time_sha512_300b_us", best_of(lambda: sha512_pure(HASH_INPUT)))
    print("time_hmac_180b_us", best_of(lambda: hmac_sha256(MAC_KEY, MAC_INPUT)))


if __name__ == "__main__":
    main()
