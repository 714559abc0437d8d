"""The board trust store's exception tree (CA, certificates, enrollment, registry). Each error
carries its data, not just a string; messages never contain a key, a code or a certificate."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path


def _when(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


class BoardError(Exception):
    """Root of every board trust failure."""


class InvalidBoardInput(BoardError):
    """Input was refused at the door; nothing was stored or signed."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        shown = value if not isinstance(value, str) or len(value) <= 40 else value[:40] + "..."
        if isinstance(value, bytes | bytearray):
            shown = f"<{len(value)} bytes>"
        super().__init__(f"{field} = {shown!r}: {allowed}")
        self.field, self.value, self.allowed = field, value, allowed


class BoardNotFound(BoardError):
    def __init__(self, board_id: str) -> None:
        super().__init__(f"no enrolled board {board_id}")
        self.board_id = board_id


class BoardIsRevoked(BoardError):
    """The board was revoked: nothing but a new enrollment changes it."""

    def __init__(self, board_id: str, reason: str | None) -> None:
        super().__init__(f"board {board_id} is revoked ({reason or 'no reason given'})")
        self.board_id, self.reason = board_id, reason


class BoardChanged(BoardError):
    """The board was re-enrolled with another key while an operation on it was under way."""

    def __init__(self, board_id: str, operation: str) -> None:
        super().__init__(f"board {board_id} was re-enrolled during {operation}; try again")
        self.board_id, self.operation = board_id, operation


# -- the CA and certificates -------------------------------------------------------------------


class CAUnusable(BoardError):
    """A file of the board CA exists but cannot be used; it was left as it was."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"board CA file {path} is unusable ({detail}); it was not modified")
        self.path, self.detail = path, detail


class ClockNotSet(BoardError):
    """The station clock is before any plausible date (a Pi without RTC before NTP or GPS)."""

    def __init__(self, now: float, earliest: float) -> None:
        super().__init__(f"station clock reads {_when(now)}, before {_when(earliest)}: "
                         "set the clock (NTP or GPS) before issuing certificates")
        self.now, self.earliest = now, earliest


class CertificateError(BoardError):
    """Root of the certificate failures."""


class CertificateInvalid(CertificateError):
    """Not a certificate this station's CA issued for an Ed25519 board key (or not yet valid)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"certificate refused: {reason}")
        self.reason = reason


class CertificateExpired(CertificateError):
    def __init__(self, board_id: str, not_after: float) -> None:
        super().__init__(f"certificate of board {board_id} expired at {_when(not_after)}")
        self.board_id, self.not_after = board_id, not_after


# -- enrollment --------------------------------------------------------------------------------


class EnrollmentError(BoardError):
    """Root of the enrollment refusals; `reason` is a short word the board is told."""

    reason = "refused"


class CodeUnknown(EnrollmentError):
    reason = "unknown_code"

    def __init__(self) -> None:
        super().__init__("no such enrollment code (check for typos, or create a new one)")


class ProofInvalid(EnrollmentError):
    """The board named a live code but its proof does not verify: it does not know the code (or
    the request was altered on the way). Counted as a wrong guess, like an unknown code."""

    reason = "bad_proof"

    def __init__(self) -> None:
        super().__init__("the board could not prove it knows the enrollment code")


class CodeExpired(EnrollmentError):
    reason = "code_expired"

    def __init__(self, expired_at: float) -> None:
        super().__init__(f"enrollment code expired at {_when(expired_at)}: create a new one")
        self.expired_at = expired_at


class CodeUsed(EnrollmentError):
    reason = "code_used"

    def __init__(self, used_at: float) -> None:
        super().__init__(f"enrollment code was already used at {_when(used_at)}: codes work once")
        self.used_at = used_at


class CodeForAnotherBoard(EnrollmentError):
    reason = "code_for_another_board"

    def __init__(self, board_id: str, intended: str) -> None:
        super().__init__(f"enrollment code was created to re-enroll {intended}, not {board_id}")
        self.board_id, self.intended = board_id, intended


class ProfileMismatch(EnrollmentError):
    reason = "profile_mismatch"

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"enrollment code is for profile {expected!r}, the board says {got!r}")
        self.expected, self.got = expected, got


class BoardAlreadyEnrolled(EnrollmentError):
    reason = "already_enrolled"

    def __init__(self, board_id: str) -> None:
        super().__init__(f"board {board_id} is already enrolled: revoke it, or create a "
                         "re-enrollment code for it")
        self.board_id = board_id


class PublicKeyInUse(EnrollmentError):
    """Another active board holds this key: a cloned flash image, or a replayed request."""

    reason = "key_in_use"

    def __init__(self, board_id: str, holder: str) -> None:
        super().__init__(f"board {board_id} presented the public key of enrolled board {holder}")
        self.board_id, self.holder = board_id, holder


class InvalidBoardKey(EnrollmentError):
    reason = "invalid_key"

    def __init__(self, detail: str) -> None:
        super().__init__(f"board public key refused: {detail}")
        self.detail = detail


class EnrollmentRateLimited(EnrollmentError):
    reason = "rate_limited"

    def __init__(self, scope: str, limit: int, window_s: float, retry_after_s: float) -> None:
        super().__init__(f"{limit} failed enrollment codes within {window_s:.0f} s ({scope}): "
                         f"refusing every code for {retry_after_s:.0f} s")
        self.scope, self.limit, self.window_s, self.retry_after_s = scope, limit, window_s, retry_after_s


class TooManyLiveCodes(EnrollmentError):
    reason = "too_many_codes"

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} unused enrollment codes are already live: use or let them expire")
        self.limit = limit


class DeployError(BoardError):
    """A deploy (config or file) the station refuses to queue or the board refused."""


class DeployNotFound(DeployError):
    def __init__(self, deploy_id: str) -> None:
        super().__init__(f"no deploy with id {deploy_id}")
        self.deploy_id = deploy_id


class DeployClosed(DeployError):
    def __init__(self, deploy_id: str, state: str) -> None:
        super().__init__(f"deploy {deploy_id} is already {state}")
        self.deploy_id, self.state = deploy_id, state


class DeployRefused(DeployError):
    """The board refused the file or the config (path, size, flash, sha256, an invalid option)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the board refused the deploy: {reason}")
        self.reason = reason
