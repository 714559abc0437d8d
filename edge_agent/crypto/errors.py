"""Errors of the board crypto primitives. Owns the exception tree only; every
class is single-inheritance because MicroPython rejects multiple native bases."""


class CryptoError(Exception):
    """Root of every failure raised by edge_agent.crypto."""


class InvalidLength(CryptoError):
    """A key, seed or digest argument has the wrong number of bytes."""

    def __init__(self, what: str, size: int, expected: int) -> None:
        super().__init__(f"{what} is {size} bytes, expected {expected}")
        self.what = what
        self.size = size
        self.expected = expected


class HashFinalized(CryptoError):
    """update() after digest(): MicroPython's hashlib cannot continue a finished hash,
    so no runtime may."""

    def __init__(self, algorithm: str) -> None:
        super().__init__(f"{algorithm} object already produced its digest")
        self.algorithm = algorithm
