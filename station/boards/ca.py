"""The station's board CA and its handshake identity, kept in `<data_dir>/boards/`.

Owns three files, created on first use and loaded afterwards: `ca.key` (Ed25519, signs board
certificates), `ca.crt` (its self-signed certificate) and `identity.key` (Ed25519, signs this
station's side of every board handshake; its public key is given to boards at enrollment). Key
files are mode 0600 from the instant they exist. Issues and verifies board certificates; must
not know the database, the registry or any transport.

A board certificate is X.509 v3, signed with Ed25519: subject CN = board id, OU = profile, a
random 63-bit serial, and two critical extensions (not a CA; digital signatures only). About
300 bytes of DER (`CERT_SIZE_HINT`), which a board keeps in flash and sends at each handshake.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from edge_agent.crypto import is_valid_public_key
from station.boards.errors import (
    CAUnusable,
    CertificateExpired,
    CertificateInvalid,
    ClockNotSet,
    InvalidBoardInput,
)

logger = logging.getLogger(__name__)

BOARDS_DIR_NAME = "boards"
CA_KEY_FILE = "ca.key"
CA_CERT_FILE = "ca.crt"
IDENTITY_KEY_FILE = "identity.key"
KEY_FILE_MODE = 0o600
BOARDS_DIR_MODE = 0o700

BOARD_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")  # CLI args, URLs, a CN; ':' for MACs
PROFILE_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # a board profile's file name in boards/
ED25519_KEY_SIZE = 32
MIN_CERT_VALID_DAYS = 1
MAX_CERT_VALID_DAYS = 3650  # ten years: beyond that the board's flash dies before the certificate
DEFAULT_CERT_VALID_DAYS = 365  # renewed with 73 days left (registry.RENEW_WHEN_LEFT_FRACTION)
CA_VALID_DAYS = 36525  # only this station reads the CA certificate; its expiry would strand every board
SERIAL_BITS = 63  # unpredictable (RFC 5280 4.1.2.2), positive in 8 DER bytes, fits SQLite's INTEGER
NOT_BEFORE_BACKDATE_S = 300  # a station clock that NTP or GPS steps back a little still accepts new certs
# A Pi has no RTC: until NTP or GPS sets the clock it reads its last shutdown or 1970, and a
# certificate issued then is expired, or not yet valid, once the clock is right.
EARLIEST_PLAUSIBLE_TIME = 1704067200.0  # 2024-01-01T00:00:00Z, before this code was written
MAX_CERT_BYTES = 1024  # ours are ~300 bytes; bounds what a board can make the X.509 parser read
CERT_SIZE_HINT = 300
_CODE_KEY_LABEL = b"firefly-station enrollment codes v1"


@dataclass(frozen=True)
class CertInfo:
    """What a verified board certificate says. Times are Unix seconds."""

    board_id: str
    public_key: bytes
    serial: int
    not_before: float
    not_after: float
    profile: str


def check_board_id(board_id: object) -> str:
    if not isinstance(board_id, str) or not BOARD_ID_PATTERN.fullmatch(board_id):
        raise InvalidBoardInput("board_id", board_id, "must be 1-64 letters, digits, '_', '.', ':' or '-', "
                                "starting with a letter or digit")
    return board_id


def check_profile(profile: object) -> str:
    if not isinstance(profile, str) or not PROFILE_PATTERN.fullmatch(profile):
        raise InvalidBoardInput("profile", profile, "must be 1-32 lower-case letters, digits, '_' or '-'")
    return profile


def check_valid_days(valid_days: object) -> int:
    if isinstance(valid_days, bool) or not isinstance(valid_days, int) or not (
            MIN_CERT_VALID_DAYS <= valid_days <= MAX_CERT_VALID_DAYS):
        raise InvalidBoardInput("valid_days", valid_days,
                                f"must be an integer from {MIN_CERT_VALID_DAYS} to {MAX_CERT_VALID_DAYS}")
    return valid_days


def check_line(field: str, value: object, longest: int) -> str:
    """One line of 1..longest characters, surrounding blanks removed."""
    text = value.strip() if isinstance(value, str) else None
    if text is None or not 1 <= len(text) <= longest or "\n" in text or "\r" in text:
        raise InvalidBoardInput(field, value, f"must be one line of 1 to {longest} characters")
    return text


class BoardCA:
    """The CA and identity keys in memory. Build with `BoardCA.open(data_dir)`."""

    def __init__(self, directory: Path, ca_key: Ed25519PrivateKey, ca_cert: x509.Certificate,
                 identity_key: Ed25519PrivateKey) -> None:
        self.directory = directory
        self._ca_key = ca_key
        self._ca_public = ca_key.public_key()
        self._ca_cert = ca_cert
        self._identity_key = identity_key
        self.station_public_key = _raw_public(identity_key.public_key())
        # The key that hashes enrollment codes: a copy of the database alone (a backup) does not
        # let anyone try 2^40 codes offline; whoever has ca.key needs no code anyway.
        self.code_key = hmac.new(_raw_private(ca_key), _CODE_KEY_LABEL, hashlib.sha256).digest()

    @classmethod
    def open(cls, data_dir: Path) -> BoardCA:
        """Load the CA and identity from `<data_dir>/boards/`, creating what is missing."""
        directory = data_dir / BOARDS_DIR_NAME
        directory.mkdir(mode=BOARDS_DIR_MODE, parents=True, exist_ok=True)
        ca_key = _load_or_create_key(directory / CA_KEY_FILE)
        identity_key = _load_or_create_key(directory / IDENTITY_KEY_FILE)
        if _raw_public(ca_key.public_key()) == _raw_public(identity_key.public_key()):
            raise CAUnusable(directory / IDENTITY_KEY_FILE, "the identity key is the CA key")
        ca_cert = _load_or_create_ca_cert(directory / CA_CERT_FILE, ca_key)
        return cls(directory, ca_key, ca_cert, identity_key)

    @property
    def ca_certificate_pem(self) -> bytes:
        return self._ca_cert.public_bytes(serialization.Encoding.PEM)

    @property
    def station_fingerprint(self) -> str:
        """Short id of this station's identity key (operators compare it on a board's console)."""
        return hashlib.sha256(self.station_public_key).hexdigest()[:16]

    def sign_identity(self, message: bytes) -> bytes:
        """The station's Ed25519 signature over a handshake transcript."""
        return self._identity_key.sign(message)

    def issue(self, board_id: str, board_public_key: bytes, profile: str, valid_days: int,
              now: float | None = None) -> bytes:
        """A DER certificate for the board's Ed25519 key, valid for `valid_days` from now."""
        check_board_id(board_id)
        check_profile(profile)
        check_valid_days(valid_days)
        if not is_valid_public_key(board_public_key):
            raise InvalidBoardInput("board_public_key", board_public_key,
                                    "must be a 32-byte Ed25519 public key outside the small-order subgroup")
        at = time.time() if now is None else now
        if at < EARLIEST_PLAUSIBLE_TIME:
            raise ClockNotSet(at, EARLIEST_PLAUSIBLE_TIME)
        issued = dt.datetime.fromtimestamp(int(at), dt.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, board_id),
                             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, profile)])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._ca_cert.subject)
            .public_key(Ed25519PublicKey.from_public_bytes(bytes(board_public_key)))
            .serial_number(new_serial())
            .not_valid_before(issued - dt.timedelta(seconds=NOT_BEFORE_BACKDATE_S))
            .not_valid_after(issued + dt.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .sign(self._ca_key, None)
        )
        return certificate.public_bytes(serialization.Encoding.DER)

    def verify(self, cert_der: bytes, now: float | None = None) -> CertInfo:
        """Check that this station's CA issued `cert_der` for an Ed25519 board key and that it is
        valid at `now`. The signature is checked before the dates, so a forged certificate is
        reported as forged even when it is also expired."""
        certificate = _parse(cert_der)
        try:
            info = self._checked(certificate)
        except ValueError as exc:
            # the parser is lazy: a field damaged in transit only fails when it is read
            raise CertificateInvalid(f"malformed: {str(exc)[:80]}") from None
        at = time.time() if now is None else now
        if at < info.not_before:
            start = dt.datetime.fromtimestamp(info.not_before, dt.UTC)
            raise CertificateInvalid(f"not valid before {start:%Y-%m-%d %H:%M:%SZ}")
        if at > info.not_after:
            raise CertificateExpired(info.board_id, info.not_after)
        return info

    def _checked(self, certificate: x509.Certificate) -> CertInfo:
        if certificate.issuer != self._ca_cert.subject:
            raise CertificateInvalid(f"issued by {certificate.issuer.rfc4514_string()[:80]!r}, "
                                     "not by this station's board CA")
        if certificate.signature_algorithm_oid != SignatureAlgorithmOID.ED25519:
            raise CertificateInvalid("not signed with Ed25519")
        try:
            self._ca_public.verify(certificate.signature, certificate.tbs_certificate_bytes)
        except InvalidSignature:
            raise CertificateInvalid("signature does not verify with this station's board CA key "
                                     "(forged, or signed by another station)") from None
        return _cert_info(certificate)


def new_serial() -> int:
    return secrets.randbits(SERIAL_BITS) or 1  # zero is not a valid serial


def _parse(cert_der: object) -> x509.Certificate:
    if not isinstance(cert_der, bytes | bytearray):
        raise CertificateInvalid("not bytes")
    if len(cert_der) > MAX_CERT_BYTES:
        raise CertificateInvalid(f"{len(cert_der)} bytes, over the {MAX_CERT_BYTES}-byte limit")
    try:
        return x509.load_der_x509_certificate(bytes(cert_der))
    except ValueError:
        raise CertificateInvalid("not a DER X.509 certificate") from None


def _cert_info(certificate: x509.Certificate) -> CertInfo:
    try:
        key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateInvalid("unreadable public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CertificateInvalid(f"the board key is {type(key).__name__}, not Ed25519")
    public_key = _raw_public(key)
    if not is_valid_public_key(public_key):
        raise CertificateInvalid("the board key is a small-order Ed25519 point")
    return CertInfo(
        board_id=_single(certificate.subject, NameOID.COMMON_NAME, "CN (board id)"),
        public_key=public_key,
        serial=certificate.serial_number,
        not_before=certificate.not_valid_before_utc.timestamp(),
        not_after=certificate.not_valid_after_utc.timestamp(),
        profile=_single(certificate.subject, NameOID.ORGANIZATIONAL_UNIT_NAME, "OU (profile)"),
    )


def _single(name: x509.Name, oid: x509.ObjectIdentifier, what: str) -> str:
    values = name.get_attributes_for_oid(oid)
    if len(values) != 1 or not isinstance(values[0].value, str):
        raise CertificateInvalid(f"subject must hold exactly one {what}")
    return values[0].value


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
                         crl_sign=cert_sign, encipher_only=False, decipher_only=False)


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _raw_private(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def _load_or_create_key(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        if _publish_exclusive(path, pem, KEY_FILE_MODE):
            logger.info("board key created", extra={"path": str(path)})
            return key
        # another process created it first: use theirs, so every process signs with one key
    return _load_key(path)


def _load_key(path: Path) -> Ed25519PrivateKey:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        # a restored backup may come back world-readable; tighten rather than refuse to start
        os.chmod(path, KEY_FILE_MODE)
        logger.warning("board key file was readable by others; set to 0600",
                       extra={"path": str(path), "mode": oct(mode)})
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CAUnusable(path, f"not a PEM private key: {type(exc).__name__}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CAUnusable(path, f"holds a {type(key).__name__}, not an Ed25519 key")
    return key


def _load_or_create_ca_cert(path: Path, ca_key: Ed25519PrivateKey) -> x509.Certificate:
    if path.exists():
        try:
            certificate = x509.load_pem_x509_certificate(path.read_bytes())
        except ValueError:
            raise CAUnusable(path, "not a PEM certificate") from None
        key = certificate.public_key()
        if not isinstance(key, Ed25519PublicKey) or _raw_public(key) != _raw_public(ca_key.public_key()):
            raise CAUnusable(path, f"does not belong to {CA_KEY_FILE}")
        return certificate
    # Rebuilt from the key whenever it is missing: the subject is derived from the key, so a
    # rebuilt certificate verifies every board certificate the old one did.
    certificate = _self_signed(ca_key)
    _publish_exclusive(path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    return certificate


def _self_signed(ca_key: Ed25519PrivateKey) -> x509.Certificate:
    fingerprint = hashlib.sha256(_raw_public(ca_key.public_key())).hexdigest()[:8]
    # short: every board certificate repeats the issuer name
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"firefly-ca-{fingerprint}")])
    issued = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(new_serial())
        .not_valid_before(issued - dt.timedelta(seconds=NOT_BEFORE_BACKDATE_S))
        .not_valid_after(issued + dt.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, None)
    )


def _publish_exclusive(path: Path, data: bytes, mode: int) -> bool:
    """Make `path` hold `data`, unless it already exists (then False, nothing changed).

    Written to a temporary file created with O_EXCL and `mode` (never readable by others, not
    even briefly), synced, then hard-linked into place: link() refuses an existing name like
    O_EXCL does, and a crash never leaves a half-written key under the real name.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return True
