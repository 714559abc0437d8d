"""The wire protocol's exception tree. Owns the classes only; every class is
single-inheritance because MicroPython rejects multiple native bases, and each
carries the data a caller needs to log or count the failure."""


class ProtocolError(Exception):
    """Root of every wire-protocol failure: framing, CBOR and message validation."""


class FrameError(ProtocolError):
    """A frame was not accepted; the decoder drops it and resynchronises."""


class FrameTooLarge(FrameError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the {limit}-byte limit")
        self.size = size
        self.limit = limit


class FrameTooShort(FrameError):
    def __init__(self, size: int, minimum: int) -> None:
        super().__init__(f"frame of {size} bytes is shorter than its {minimum}-byte CRC trailer")
        self.size = size
        self.minimum = minimum


class ChecksumMismatch(FrameError):
    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"CRC32 trailer says {expected:08x}, body hashes to {actual:08x}")
        self.expected = expected
        self.actual = actual


class CobsError(FrameError):
    """Bytes between two delimiters are not a valid COBS encoding."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"COBS error at byte {offset}: {reason}")
        self.offset = offset
        self.reason = reason


class CborError(ProtocolError):
    """A body is not CBOR in the subset we accept (see docs/board-protocol.md)."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"CBOR error at byte {offset}: {reason}")
        self.offset = offset
        self.reason = reason


class CborEncodeError(ProtocolError):
    """A value cannot be encoded: its type is outside the subset or it is out of range."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"cannot encode {what}: {reason}")
        self.what = what
        self.reason = reason


class MessageError(ProtocolError):
    """A well-formed CBOR body is not a valid message."""


class UnsupportedVersion(MessageError):
    def __init__(self, version: object, supported: int) -> None:
        super().__init__(f"protocol version {version!r} is not supported (this side speaks {supported})")
        self.version = version
        self.supported = supported


class UnknownMessageType(MessageError):
    def __init__(self, msg_type: object) -> None:
        super().__init__(f"unknown message type {msg_type!r}")
        self.msg_type = msg_type


class InvalidField(MessageError):
    def __init__(self, msg_type: str, field: str, reason: str) -> None:
        super().__init__(f"{msg_type}.{field}: {reason}")
        self.msg_type = msg_type
        self.field = field
        self.reason = reason
