"""One-time enrollment codes and their redemption: an operator creates a code (shown once), the
board proves it knows the code while sending its new Ed25519 public key, and the station answers
with a certificate and its own proof that it knows the code.

Owns the code's life (creation, storage, single use), the check of a redemption request,
failed-redemption rate limiting and the BoardEnrolled events. The derivations from a code (its
lookup, the key K, both proofs) are edge_agent/enroll_proof.py's, shared with the boards. Must
not know transports or sessions: the board link calls `redeem_request` with the fields of an
`enroll_request` and a name for the link it came over.

Guessing: a code is 8 characters of Crockford base32 (40 bits). At most `FAILED_TOTAL` wrong
codes or proofs per `FAILURE_WINDOW_S` are looked at, station-wide: about 2^20 guesses a year,
against at most `MAX_LIVE_CODES` live codes, each live for minutes: a chance below 1 in 50,000 a
year even if the station always had 20 codes open. The database holds HMAC-SHA256s of the code
and of its lookup under a key derived from the CA key, and K sealed with AES-256-GCM under
another such key, so a copy of the database alone neither reveals a live code nor lets anyone
answer a board in the station's place.
"""

from __future__ import annotations

import collections
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import sha256

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge_agent.crypto import is_valid_public_key
from edge_agent.enroll_proof import (
    CODE_ALPHABET,
    CODE_LENGTH,
    LOOKUP_SIZE,
    PROOF_SIZE,
    code_key,
    code_lookup,
    normalize_code,
    request_proof,
    response_proof,
)
from station.boards.ca import (
    DEFAULT_CERT_VALID_DAYS,
    BoardCA,
    check_board_id,
    check_line,
    check_profile,
    check_valid_days,
)
from station.boards.errors import (
    BoardAlreadyEnrolled,
    CodeExpired,
    CodeForAnotherBoard,
    CodeUnknown,
    CodeUsed,
    EnrollmentError,
    EnrollmentRateLimited,
    InvalidBoardInput,
    InvalidBoardKey,
    ProfileMismatch,
    ProofInvalid,
    PublicKeyInUse,
    TooManyLiveCodes,
)
from station.boards.events import BoardEnrolled, BoardStateChanged
from station.bus import EventBus
from station.store import Database
from station.store import boards as store

logger = logging.getLogger(__name__)

DEFAULT_CODE_TTL_S = 900.0  # 15 min: walk to the board, power it, type the code
MIN_CODE_TTL_S = 60.0
MAX_CODE_TTL_S = 86400.0  # a day of workshop provisioning; longer-lived codes are standing credentials
MAX_LIVE_CODES = 20  # each live code is one more target for a guesser; boards are enrolled a few at a time
CODE_KEEP_S = 30 * 86400.0  # expired, unused codes stay listed this long, then are deleted
FAILED_PER_SOURCE = 5  # wrong codes per link per window: a person retyping a code needs two or three
FAILED_TOTAL = 20  # wrong codes per window over all links: bounds a guesser with many links
FAILURE_WINDOW_S = 600.0
ACTOR_MAX_CHARS = 100
SOURCE_MAX_CHARS = 200

# refusals that mean "wrong code": they count towards the rate limit (a right code with a wrong
# profile or an enrolled board id is not a guess, and is not counted)
_GUESSES = (store.Refusal.UNKNOWN, store.Refusal.USED, store.Refusal.EXPIRED)
_SEAL_KEY_LABEL = b"firefly-station enrollment proof keys v1"  # derives the AES key that seals K
_SEAL_NONCE_SIZE = 12  # AES-GCM's standard nonce, random per code: safe far beyond the codes a station makes


@dataclass(frozen=True)
class EnrollmentCode:
    """A new code: `code` is shown to the operator once and never stored."""

    code: str
    code_id: str
    expires_at: float
    profile: str | None
    reenroll_board_id: str | None


@dataclass(frozen=True)
class Redeemed:
    """A redemption that enrolled the board: its certificate, and K to answer it with."""

    cert: bytes
    board_id: str
    public_key: bytes
    key: bytes = field(repr=False)

    def response_proof(self, station_id: str, station_public_key: bytes) -> bytes:
        """The `proof` of the accepting enroll_response: binds the certificate and the station's
        identity to the code, so the board stores them only if they come from this station."""
        return response_proof(self.key, self.board_id, self.public_key, self.cert, station_id, station_public_key)


def format_code(raw: str) -> str:
    """ABCD-EFGH: two groups of four are easier to read out and type."""
    return f"{raw[:4]}-{raw[4:]}"


class FailedRedemptions:
    """Wrong codes in the last window, per source and station-wide. In memory: a restart forgets
    them, which a guesser cannot cause, and at FAILED_TOTAL per window it would not matter."""

    def __init__(self, per_source: int = FAILED_PER_SOURCE, total: int = FAILED_TOTAL,
                 window_s: float = FAILURE_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_source, self.total, self.window_s = per_source, total, window_s
        self._clock = clock
        self._failures: collections.deque[tuple[float, str]] = collections.deque()  # at most `total`
        self._lock = threading.Lock()

    def check(self, source: str) -> None:
        """Raise EnrollmentRateLimited while `source` or the station is over its limit."""
        with self._lock:
            at = self._prune()
            if len(self._failures) >= self.total:
                raise EnrollmentRateLimited("all links", self.total, self.window_s,
                                            self._failures[0][0] + self.window_s - at)
            mine = [failed_at for failed_at, failed_source in self._failures if failed_source == source]
            if len(mine) >= self.per_source:
                raise EnrollmentRateLimited(source, self.per_source, self.window_s,
                                            mine[0] + self.window_s - at)

    def record(self, source: str) -> None:
        with self._lock:
            self._failures.append((self._prune(), source))

    def _prune(self) -> float:
        at = self._clock()
        while self._failures and self._failures[0][0] <= at - self.window_s:
            self._failures.popleft()
        return at


class Enrollment:
    """Creates and redeems enrollment codes against the store; publishes on the bus."""

    def __init__(self, database: Database, bus: EventBus, ca: BoardCA,
                 cert_valid_days: int = DEFAULT_CERT_VALID_DAYS, clock: Callable[[], float] = time.time,
                 failures: FailedRedemptions | None = None) -> None:
        self._database = database
        self._bus = bus
        self._ca = ca
        self._cert_valid_days = check_valid_days(cert_valid_days)
        self._clock = clock
        self.failures = FailedRedemptions() if failures is None else failures
        self._sealer = AESGCM(hmac.new(ca.code_key, _SEAL_KEY_LABEL, sha256).digest())

    def create_code(self, profile: str | None = None, ttl_s: float = DEFAULT_CODE_TTL_S,
                    reenroll_board_id: str | None = None, by: str = "operator") -> EnrollmentCode:
        """A new one-time code. `profile`: only a board of that profile may use it.
        `reenroll_board_id`: only that board may use it, and it may replace its key even if it is
        enrolled and not revoked (a reflashed board)."""
        if profile is not None:
            check_profile(profile)
        if reenroll_board_id is not None:
            check_board_id(reenroll_board_id)
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float) or not (
                MIN_CODE_TTL_S <= ttl_s <= MAX_CODE_TTL_S):
            raise InvalidBoardInput("ttl_s", ttl_s, f"must be {MIN_CODE_TTL_S:.0f} to {MAX_CODE_TTL_S:.0f} seconds")
        actor = check_line("by", by, ACTOR_MAX_CHARS)
        raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        at = self._clock()
        lookup_mac = self._lookup_mac(code_lookup(raw))
        new = store.NewCode(code_mac=self._code_mac(raw), lookup_mac=lookup_mac,
                            sealed_key=self._seal(code_key(raw), lookup_mac), profile=profile,
                            reenroll_board_id=reenroll_board_id, created_by=actor, expires_at=at + float(ttl_s))
        row = store.insert_code(self._database, new, at, MAX_LIVE_CODES, CODE_KEEP_S)
        if row is None:
            raise TooManyLiveCodes(MAX_LIVE_CODES)
        logger.info("enrollment code created", extra={"code_id": row["id"], "profile": profile,
                                                       "reenroll_board_id": reenroll_board_id, "by": actor})
        return EnrollmentCode(code=format_code(raw), code_id=row["id"], expires_at=new.expires_at,
                              profile=profile, reenroll_board_id=reenroll_board_id)

    def redeem(self, code: str, board_id: str, public_key: bytes, profile: str, source: str = "local") -> bytes:
        """Redeem a code the station holds itself (tools, tests): the request a board with this
        code would send, through `redeem_request`. Returns the certificate (DER)."""
        raw = normalize_code(code)
        if raw is None:
            source = check_line("source", source, SOURCE_MAX_CHARS)
            self.failures.check(source)
            self._failed(source, str(board_id), store.Refusal.UNKNOWN)
            raise CodeUnknown()
        key = code_key(raw)
        proof = request_proof(key, board_id, profile, public_key) if isinstance(public_key, bytes) else b""
        return self.redeem_request(code_lookup(raw), proof, board_id, public_key, profile, source).cert

    def redeem_request(self, lookup: object, proof: object, board_id: str, public_key: bytes, profile: str,
                       source: str = "local") -> Redeemed:
        """Enroll the board if `proof` shows it knows the code named by `lookup`, or raise an
        EnrollmentError and change nothing. `source` names the link (e.g. 'serial:/dev/ttyUSB0')
        for rate limiting. A missing, unknown or malformed lookup, or a wrong proof, is a guess."""
        source = check_line("source", source, SOURCE_MAX_CHARS)
        self.failures.check(source)  # first: while limited, even the right code learns nothing
        check_board_id(board_id)
        check_profile(profile)
        if not is_valid_public_key(public_key):
            raise InvalidBoardKey("must be 32 bytes encoding an Ed25519 point outside the small-order subgroup")
        if not (isinstance(lookup, bytes) and len(lookup) == LOOKUP_SIZE
                and isinstance(proof, bytes) and len(proof) == PROOF_SIZE):
            self._failed(source, board_id, store.Refusal.UNKNOWN)
            raise CodeUnknown()
        lookup_mac = self._lookup_mac(lookup)
        # None: an unknown or used code (a used one has no key left), refused by the store below
        sealed = store.sealed_code_key(self._database, lookup_mac)
        key = None if sealed is None else self._unseal(sealed, lookup_mac)
        if sealed is not None and (key is None or not hmac.compare_digest(
                request_proof(key, board_id, profile, public_key), proof)):
            self._failed(source, board_id, store.Refusal.BAD_PROOF)
            raise ProofInvalid()
        at = self._clock()
        cert_der = self._ca.issue(board_id, bytes(public_key), profile, self._cert_valid_days, at)
        info = self._ca.verify(cert_der, at)
        cert = store.NewCertificate(serial=info.serial, public_key=info.public_key, not_before=info.not_before,
                                    not_after=info.not_after, der=cert_der)
        outcome = store.redeem_code(self._database, lookup_mac, sealed, board_id, profile, cert, at)
        if outcome.refusal is not None:
            if outcome.refusal in _GUESSES:
                self._failed(source, board_id, outcome.refusal)
            raise _refusal_error(outcome, board_id, profile)
        assert key is not None  # a code that redeems was unused, so its key was there
        self._enrolled(outcome, source)
        return Redeemed(cert=cert_der, board_id=board_id, public_key=bytes(public_key), key=key)

    def _enrolled(self, outcome: store.Redemption, source: str) -> None:
        board, previous = outcome.board, outcome.previous
        assert board is not None  # redeem_code returns the board whenever it does not refuse
        logger.info("board enrolled", extra={"board_id": board.id, "profile": board.profile,
                                             "cert_serial": board.cert_serial, "source": source,
                                             "reenrolled": previous is not None})
        self._bus.publish(BoardEnrolled(board_id=board.id, profile=board.profile, cert_serial=board.cert_serial,
                                        cert_not_after=board.cert_not_after, reenrolled=previous is not None))
        old = None if previous is None else previous.state
        if old != board.state:
            self._bus.publish(BoardStateChanged(board_id=board.id, old=old, new=board.state))

    def _failed(self, source: str, board_id: str, refusal: store.Refusal) -> None:
        self.failures.record(source)
        logger.warning("enrollment code refused", extra={"board_id": board_id, "source": source,
                                                         "refusal": str(refusal)})

    def _code_mac(self, raw: str) -> str:
        return hmac.new(self._ca.code_key, raw.encode(), sha256).hexdigest()

    def _lookup_mac(self, lookup: bytes) -> str:
        """Keyed: the lookup alone is an unsalted hash of 40 bits, which a copy of the database
        must not hold (anyone could search all codes against it offline)."""
        return hmac.new(self._ca.code_key, b"lookup:" + lookup, sha256).hexdigest()

    def _seal(self, key: bytes, lookup_mac: str) -> bytes:
        nonce = secrets.token_bytes(_SEAL_NONCE_SIZE)
        return nonce + self._sealer.encrypt(nonce, key, lookup_mac.encode())

    def _unseal(self, sealed: bytes, lookup_mac: str) -> bytes | None:
        """K, or None when the sealed key does not open (another CA key, or an edited row)."""
        try:
            return self._sealer.decrypt(sealed[:_SEAL_NONCE_SIZE], sealed[_SEAL_NONCE_SIZE:], lookup_mac.encode())
        except InvalidTag:
            logger.error("enrollment code key does not open", extra={"lookup_mac": lookup_mac[:12]})
            return None


def _refusal_error(outcome: store.Redemption, board_id: str, profile: str) -> EnrollmentError:
    code = outcome.code or {}
    match outcome.refusal:
        case store.Refusal.USED:
            return CodeUsed(code["used_at"])
        case store.Refusal.EXPIRED:
            return CodeExpired(code["expires_at"])
        case store.Refusal.FOR_ANOTHER_BOARD:
            return CodeForAnotherBoard(board_id, code["reenroll_board_id"])
        case store.Refusal.PROFILE_MISMATCH:
            return ProfileMismatch(code["profile"], profile)
        case store.Refusal.ALREADY_ENROLLED:
            return BoardAlreadyEnrolled(board_id)
        case store.Refusal.KEY_IN_USE:
            return PublicKeyInUse(board_id, outcome.key_holder or "?")
        case store.Refusal.KEY_REVOKED:
            return InvalidBoardKey("this key was revoked with the board: the board must generate a new key pair")
        case _:
            return CodeUnknown()

