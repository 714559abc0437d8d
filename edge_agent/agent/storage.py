"""The board's persistent state in one directory (the flash root's state dir on a board,
any directory on the unix port): identity (board id + Ed25519 seed), the station-signed
certificate, the station's public key and the config overrides.

Owns the file names and atomic writes (write `name.tmp`, flush, rename over `name`), so a
board losing power mid-write keeps the previous file. It must not interpret the
certificate or the config (enrollment.py and config.py do) and never logs a secret.
"""

import binascii
import json

from edge_agent.agent import _port

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

IDENTITY_FILE = "identity.json"  # {"board_id": text, "seed": 64 hex digits}: the private key
CERT_FILE = "cert.bin"  # the station-signed certificate, as the station sent it
STATION_KEY_FILE = "station.pub"  # the station's 32-byte Ed25519 public key
STATION_ID_FILE = "station.id"  # the station's id (UTF-8), part of every handshake transcript
CONFIG_FILE = "config.json"  # overrides of the profile's [agent] options (write_config)
SPOOL_DIR = "xfer"  # partial file transfers (files.py), kept across restarts
TMP_SUFFIX = ".tmp"


class StorageError(Exception):
    """Root of board-state failures: a state file exists but cannot be used."""


class CorruptStateFile(StorageError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"state file {name} is unusable: {reason}")
        self.name = name
        self.reason = reason


class Identity:
    """Who the board is: its id and the 32-byte seed of its Ed25519 key."""

    def __init__(self, board_id: str, seed: bytes) -> None:
        self.board_id = board_id
        self.seed = seed

    def __repr__(self) -> str:  # never the seed
        return f"Identity({self.board_id!r})"


class Storage:
    """The state directory; creating one touches nothing until ensure() is called."""

    def __init__(self, root: str) -> None:
        self.root = root

    def path(self, name: str) -> str:
        return _port.join(self.root, name)

    @property
    def spool_dir(self) -> str:
        return self.path(SPOOL_DIR)

    def ensure(self) -> None:
        """Create the state and spool directories if they are missing."""
        _port.makedirs(self.root)
        _port.makedirs(self.spool_dir)

    # ---- raw files

    def read(self, name: str) -> bytes | None:
        """The file's bytes, or None if it does not exist (a leftover .tmp is ignored)."""
        try:
            with open(self.path(name), "rb") as handle:
                return bytes(handle.read())
        except OSError:
            return None

    def write_atomic(self, name: str, data: bytes) -> None:
        """Replace `name` with `data` so that a crash leaves either the old or the new file."""
        final = self.path(name)
        tmp = final + TMP_SUFFIX
        with open(tmp, "wb") as handle:
            handle.write(data)
            _port.sync_file(handle)
        _port.replace(tmp, final)

    def delete(self, name: str) -> None:
        _port.remove(self.path(name))

    # ---- identity

    def load_identity(self) -> Identity | None:
        raw = self.read(IDENTITY_FILE)
        if raw is None:
            return None
        try:
            doc = json.loads(raw)
            seed = binascii.unhexlify(doc["seed"])
            board_id = doc["board_id"]
        except (ValueError, KeyError, TypeError):
            raise CorruptStateFile(IDENTITY_FILE, "not an identity document") from None
        if not isinstance(board_id, str) or not board_id or len(seed) != 32:
            raise CorruptStateFile(IDENTITY_FILE, "board id or seed has the wrong shape")
        return Identity(board_id, bytes(seed))

    def save_identity(self, identity: Identity) -> None:
        seed_hex = binascii.hexlify(identity.seed).decode()
        self.write_atomic(IDENTITY_FILE, json.dumps({"board_id": identity.board_id, "seed": seed_hex}).encode())

    # ---- enrollment results

    def load_cert(self) -> bytes | None:
        return self.read(CERT_FILE)

    def load_station_pubkey(self) -> bytes | None:
        key = self.read(STATION_KEY_FILE)
        if key is not None and len(key) != 32:
            raise CorruptStateFile(STATION_KEY_FILE, f"{len(key)} bytes instead of 32")
        return key

    def load_station_id(self) -> str:
        raw = self.read(STATION_ID_FILE)
        return raw.decode() if raw is not None else ""

    def save_enrollment(self, cert: bytes, station_pubkey: bytes, station_id: str = "") -> None:
        """Store what enroll_response carried; the certificate last, so a board that has
        one always has the station's key and id that go with it."""
        self.write_atomic(STATION_KEY_FILE, station_pubkey)
        self.write_atomic(STATION_ID_FILE, station_id.encode())
        self.write_atomic(CERT_FILE, cert)

    def save_cert(self, cert: bytes) -> None:
        """Replace the certificate alone (a renewal over the session: cert_update); the
        station's key and id stay, since the same station signed it."""
        self.write_atomic(CERT_FILE, cert)

    def is_enrolled(self) -> bool:
        return self.load_cert() is not None and self.load_station_pubkey() is not None

    # ---- config overrides

    def load_config(self) -> dict[str, Any]:
        raw = self.read(CONFIG_FILE)
        if raw is None:
            return {}
        try:
            doc = json.loads(raw)
        except ValueError:
            raise CorruptStateFile(CONFIG_FILE, "not JSON") from None
        if not isinstance(doc, dict):
            raise CorruptStateFile(CONFIG_FILE, "not a JSON object")
        return doc

    def save_config(self, overrides: dict[str, Any]) -> None:
        self.write_atomic(CONFIG_FILE, json.dumps(overrides).encode())
