"""Enrollment proofs: what the one-time enrollment code lets each side prove to the other
without the code ever crossing the wire.

Owns the code's canonical form and every value derived from it (the lookup, the key K,
the request and response proofs). Pure functions on bytes: no I/O, no storage, no
protocol state; the station's enrollment and the agent's enrollment both call them, so
there is one definition. Runs unchanged on MicroPython and CPython.
docs/board-protocol.md, "Enrollment", is the human description.

    code   = normalize_code(typed)                       8 Crockford base32 characters
    lookup = SHA-256("firefly-enroll-lookup-v1" || code)[:8]    names the code
    K      = SHA-256("firefly-enroll-key-v1" || code)
    proof  = HMAC-SHA256(K, lp(REQUEST_LABEL) || lp(board_id) || lp(profile) || lp(pubkey))
    answer = HMAC-SHA256(K, lp(RESPONSE_LABEL) || lp(board_id) || lp(pubkey) || lp(cert)
                            || lp(station_id) || lp(station_pubkey))
    lp(x)  = u16(len(x)) || x,  ids and texts as UTF-8
"""

import hashlib

from edge_agent.crypto.hmac_sha256 import hmac_sha256

CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O or U to misread
CODE_LENGTH = 8  # 40 bits: typed by hand on a serial console
_READ_AS = {"O": "0", "I": "1", "L": "1"}  # what a person may type for 0 and 1
_IGNORED = "- "  # ABCD-EFGH is how codes are shown; spaces are how people copy them

LOOKUP_LABEL = b"firefly-enroll-lookup-v1"
KEY_LABEL = b"firefly-enroll-key-v1"
REQUEST_LABEL = b"firefly-enroll-request-v1"
RESPONSE_LABEL = b"firefly-enroll-response-v1"
LOOKUP_SIZE = 8  # 64 bits of a 40-bit code's hash: distinct codes never share one
PROOF_SIZE = 32  # HMAC-SHA256
MAX_FIELD_BYTES = 0xFFFF  # fields are length-prefixed with 2 bytes


def normalize_code(text: object) -> str | None:
    """The canonical code a person meant (case, dashes, spaces, O/I/L forgiven), or None."""
    if not isinstance(text, str) or len(text) > 4 * CODE_LENGTH:
        return None
    chars = []
    for char in text:
        if char in _IGNORED:
            continue
        if "a" <= char <= "z":  # ASCII only: str.upper() differs between the runtimes beyond it
            char = chr(ord(char) - 32)
        char = _READ_AS.get(char, char)
        if char not in CODE_ALPHABET:
            return None
        chars.append(char)
    if len(chars) != CODE_LENGTH:
        return None
    return "".join(chars)


def code_lookup(code: str) -> bytes:
    """The 8 bytes that name a normalized code to the station (the code itself stays on the board)."""
    return hashlib.sha256(LOOKUP_LABEL + code.encode()).digest()[:LOOKUP_SIZE]


def code_key(code: str) -> bytes:
    """K, the HMAC key both sides derive from a normalized code."""
    return hashlib.sha256(KEY_LABEL + code.encode()).digest()


def request_proof(key: bytes, board_id: str, profile: str, public_key: bytes) -> bytes:
    """The board's proof that it knows the code, bound to the identity it asks to enroll."""
    return hmac_sha256(key, _lp(REQUEST_LABEL) + _lp(board_id.encode()) + _lp(profile.encode()) + _lp(public_key))


def response_proof(key: bytes, board_id: str, public_key: bytes, cert: bytes, station_id: str,
                   station_public_key: bytes) -> bytes:
    """The station's proof that it knows the code, bound to everything the board will store."""
    return hmac_sha256(key, _lp(RESPONSE_LABEL) + _lp(board_id.encode()) + _lp(public_key) + _lp(cert)
                       + _lp(station_id.encode()) + _lp(station_public_key))


def _lp(data: bytes) -> bytes:
    if len(data) > MAX_FIELD_BYTES:  # never from the wire: a frame body holds at most 4096 bytes
        raise ValueError("an enrollment proof field exceeds 65535 bytes")
    return len(data).to_bytes(2, "big") + data
