"""The board CA: created once with private files, reloaded unchanged, and a verifier that
refuses everything but its own Ed25519 board certificates."""

from __future__ import annotations

import datetime as dt
import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

from station.boards import BoardCA, CAUnusable, CertificateExpired, CertificateInvalid, ClockNotSet
from station.boards.ca import (
    CA_CERT_FILE,
    CA_KEY_FILE,
    IDENTITY_KEY_FILE,
    MAX_CERT_BYTES,
    MAX_CERT_VALID_DAYS,
)
from station.boards.errors import InvalidBoardInput
from tests.boards.conftest import START, new_key

SMALL_ORDER_KEY = b"\x01" + bytes(31)  # the identity point: OpenSSL accepts it as a public key
DAY = 86400.0


def _ca_key(data_dir: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key((data_dir / "boards" / CA_KEY_FILE).read_bytes(), None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def _build(issuer: x509.Name, signer: Ed25519PrivateKey | ec.EllipticCurvePrivateKey,
           public_key: Ed25519PublicKey | ec.EllipticCurvePublicKey, board_id: str = "esp32-01") -> bytes:
    now = dt.datetime.fromtimestamp(START, dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, board_id),
                                 x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "esp32")]))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(12345)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
    )
    algorithm = hashes.SHA256() if isinstance(signer, ec.EllipticCurvePrivateKey) else None
    return builder.sign(signer, algorithm).public_bytes(serialization.Encoding.DER)


def _issuer(ca: BoardCA) -> x509.Name:
    return x509.load_pem_x509_certificate(ca.ca_certificate_pem).subject


def test_created_once_private_and_reloaded_unchanged(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = BoardCA.open(data_dir)
    directory = data_dir / "boards"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in (CA_KEY_FILE, IDENTITY_KEY_FILE):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    files = {path.name: path.read_bytes() for path in directory.iterdir()}
    assert set(files) == {CA_KEY_FILE, CA_CERT_FILE, IDENTITY_KEY_FILE}  # no temporary left behind

    second = BoardCA.open(data_dir)
    assert {path.name: path.read_bytes() for path in directory.iterdir()} == files
    assert second.station_public_key == first.station_public_key
    assert second.ca_certificate_pem == first.ca_certificate_pem
    assert second.code_key == first.code_key
    cert = first.issue("esp32-01", new_key(), "esp32", 30, START)
    assert second.verify(cert, START).board_id == "esp32-01"  # same CA key


def test_identity_key_is_not_the_ca_key(ca: BoardCA, tmp_path: Path) -> None:
    ca_public = _ca_key(tmp_path / "data").public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert len(ca.station_public_key) == 32
    assert ca.station_public_key != ca_public
    signature = ca.sign_identity(b"transcript")
    Ed25519PublicKey.from_public_bytes(ca.station_public_key).verify(signature, b"transcript")


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    barrier = threading.Barrier(4)
    opened: list[BoardCA] = []

    def open_ca() -> None:
        barrier.wait()
        opened.append(BoardCA.open(data_dir))

    threads = [threading.Thread(target=open_ca) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({ca.station_public_key for ca in opened}) == 1
    assert len({ca.code_key for ca in opened}) == 1
    final = BoardCA.open(data_dir)
    cert = final.issue("esp32-01", new_key(), "esp32", 30, START)
    for ca in opened:
        ca.verify(cert, START)


def test_readable_key_file_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    BoardCA.open(data_dir)
    key_path = data_dir / "boards" / CA_KEY_FILE
    os.chmod(key_path, 0o644)
    BoardCA.open(data_dir)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_unusable_files_are_refused_and_left_alone(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    BoardCA.open(data_dir)
    key_path = data_dir / "boards" / CA_KEY_FILE
    key_path.write_bytes(b"not a key")
    with pytest.raises(CAUnusable, match="not a PEM private key"):
        BoardCA.open(data_dir)
    assert key_path.read_bytes() == b"not a key"

    other = tmp_path / "other"
    BoardCA.open(other)
    (other / "boards" / CA_CERT_FILE).write_bytes(BoardCA.open(tmp_path / "third").ca_certificate_pem)
    with pytest.raises(CAUnusable, match="does not belong"):
        BoardCA.open(other)


def test_missing_ca_certificate_is_rebuilt_and_still_verifies(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ca = BoardCA.open(data_dir)
    cert = ca.issue("esp32-01", new_key(), "esp32", 30, START)
    (data_dir / "boards" / CA_CERT_FILE).unlink()
    assert BoardCA.open(data_dir).verify(cert, START).board_id == "esp32-01"


def test_issue_verify_round_trip_and_size(ca: BoardCA) -> None:
    key = new_key()
    cert = ca.issue("esp32-a1b2c3d4e5f6", key, "qemu-riscv32", 365, START)
    info = ca.verify(cert, START + 100 * DAY)
    assert info.board_id == "esp32-a1b2c3d4e5f6"
    assert info.public_key == key
    assert info.profile == "qemu-riscv32"
    assert 0 < info.serial < 2**63
    assert info.not_before <= START < info.not_before + 600
    assert info.not_after == int(START) + 365 * DAY
    print(f"board certificate: {len(cert)} bytes DER")
    assert len(cert) <= 320  # boards keep it in flash and send it at every handshake
    parsed = x509.load_der_x509_certificate(cert)
    assert parsed.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ca.issue("esp32-a1b2c3d4e5f6", key, "qemu-riscv32", 365, START) != cert  # random serial


def test_forged_certificate_with_the_same_issuer_name_is_refused(ca: BoardCA) -> None:
    impostor = Ed25519PrivateKey.generate()
    forged = _build(_issuer(ca), impostor, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(CertificateInvalid, match="signature does not verify"):
        ca.verify(forged, START)


def test_certificate_of_another_station_is_refused(ca: BoardCA, tmp_path: Path) -> None:
    other = BoardCA.open(tmp_path / "elsewhere")
    cert = other.issue("esp32-01", new_key(), "esp32", 30, START)
    with pytest.raises(CertificateInvalid, match="not by this station's board CA"):
        ca.verify(cert, START)


def test_expired_and_not_yet_valid(ca: BoardCA) -> None:
    cert = ca.issue("esp32-01", new_key(), "esp32", 30, START)
    ca.verify(cert, START + 30 * DAY)
    with pytest.raises(CertificateExpired) as caught:
        ca.verify(cert, START + 30 * DAY + 1)
    assert caught.value.board_id == "esp32-01"
    assert caught.value.not_after == int(START) + 30 * DAY
    with pytest.raises(CertificateInvalid, match="not valid before"):
        ca.verify(cert, START - DAY)


def test_forged_and_expired_is_reported_as_forged(ca: BoardCA) -> None:
    forged = _build(_issuer(ca), Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate().public_key())
    with pytest.raises(CertificateInvalid, match="signature"):
        ca.verify(forged, START + 365 * DAY)


@pytest.mark.parametrize("garbage", [
    b"", b"\x00", b"\x30\x03abc", b"\x30\x82\xff\xff" + bytes(64), os.urandom(300),
    b"-----BEGIN CERTIFICATE-----\n", bytes(MAX_CERT_BYTES + 1),
])
def test_garbage_is_refused(ca: BoardCA, garbage: bytes) -> None:
    with pytest.raises(CertificateInvalid):
        ca.verify(garbage, START)


def test_truncated_and_bit_flipped_certificates_are_refused(ca: BoardCA) -> None:
    cert = ca.issue("esp32-01", new_key(), "esp32", 30, START)
    for cut in range(0, len(cert), 7):
        with pytest.raises(CertificateInvalid):
            ca.verify(cert[:cut], START)
    for index in range(0, len(cert), 5):
        flipped = bytearray(cert)
        flipped[index] ^= 0x04
        try:
            info = ca.verify(bytes(flipped), START)
        except (CertificateInvalid, CertificateExpired):
            continue
        pytest.fail(f"a flipped bit at {index} still verified: {info}")


def test_non_ed25519_board_key_is_refused(ca: BoardCA, tmp_path: Path) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    cert = _build(_issuer(ca), _ca_key(tmp_path / "data"), ec_key.public_key())  # really signed by our CA
    with pytest.raises(CertificateInvalid, match="not Ed25519"):
        ca.verify(cert, START)
    ecdsa_signed = _build(_issuer(ca), ec_key, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(CertificateInvalid, match="not signed with Ed25519"):
        ca.verify(ecdsa_signed, START)


def test_small_order_board_key_is_refused(ca: BoardCA, tmp_path: Path) -> None:
    with pytest.raises(InvalidBoardInput, match="small-order"):
        ca.issue("esp32-01", SMALL_ORDER_KEY, "esp32", 30, START)
    # even in a certificate our CA key signed (it never does), the key is refused
    sneaky = _build(_issuer(ca), _ca_key(tmp_path / "data"), Ed25519PublicKey.from_public_bytes(SMALL_ORDER_KEY))
    with pytest.raises(CertificateInvalid, match="small-order"):
        ca.verify(sneaky, START)


@pytest.mark.parametrize(("board_id", "profile", "days", "field"), [
    ("", "esp32", 30, "board_id"),
    ("-leading", "esp32", 30, "board_id"),
    ("a" * 65, "esp32", 30, "board_id"),
    ("esp32-01", "ESP32", 30, "profile"),
    ("esp32-01", "esp32", 0, "valid_days"),
    ("esp32-01", "esp32", MAX_CERT_VALID_DAYS + 1, "valid_days"),
    ("esp32-01", "esp32", True, "valid_days"),
])
def test_issue_checks_its_inputs(ca: BoardCA, board_id: str, profile: str, days: int, field: str) -> None:
    with pytest.raises(InvalidBoardInput) as caught:
        ca.issue(board_id, new_key(), profile, days, START)
    assert caught.value.field == field


def test_issue_refuses_an_unset_clock(ca: BoardCA) -> None:
    with pytest.raises(ClockNotSet, match="set the clock"):
        ca.issue("esp32-01", new_key(), "esp32", 30, 86400.0)
