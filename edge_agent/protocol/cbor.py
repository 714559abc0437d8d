"""A small CBOR (RFC 8949) codec for the subset board messages use, because MicroPython
ships none. Owns encoding and decoding of: integers within 64 bits, byte and text
strings, arrays, maps with text or integer keys, true/false/null and floats. It must
not grow tags, indefinite lengths or other types: the station's cbor2 is the reference
it is tested against, and every extra type is attack surface on a 64 KiB board.

Encoding is deterministic (RFC 8949 section 4.2.1 key order, shortest integer heads)
so MicroPython, whose dicts are unordered, produces the same bytes as CPython. Floats
are always written as float64; float16/32/64 are all read. Decoding checks every
declared length and count against the bytes that remain BEFORE allocating anything, so
a header declaring 2**63 items costs nothing.
"""

import struct
from math import ldexp

from edge_agent.protocol.errors import CborEncodeError, CborError

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

# Our deepest message (a command whose args hold a config tree) nests 4 containers; 16
# leaves room for config trees while keeping the recursive codec far from the C stack
# limit of MicroPython on small boards.
MAX_DEPTH = 16
# Every item takes at least one byte, so a frame body (4 KiB) cannot hold more; the
# budget matters only for callers decoding larger buffers.
MAX_ITEMS = 8192

_U64_END = 1 << 64
_NAN = float("nan")
_INF = float("inf")


def cbor_encode(value: Any) -> bytes:
    """Encode `value`; raise CborEncodeError for a type or range outside the subset."""
    out = bytearray()
    _encode(out, value, 0)
    return bytes(out)


def cbor_encode_map(mapping: dict[Any, Any], last_key: Any = None) -> bytes:
    """Encode a top-level map in deterministic order, except that `last_key`, if present,
    is written last (the session MAC trails the bytes it covers)."""
    out = bytearray()
    _head(out, 0xA0, len(mapping))
    if last_key in mapping:
        rest = {key: val for key, val in mapping.items() if key != last_key}
        _encode_entries(out, rest, 1)
        _encode_entries(out, {last_key: mapping[last_key]}, 1)
    else:
        _encode_entries(out, mapping, 1)
    return bytes(out)


def _head(out: bytearray, major: int, n: int) -> None:
    if n < 24:
        out.append(major | n)
    elif n < 0x100:
        out.append(major | 24)
        out.append(n)
    elif n < 0x10000:
        out += struct.pack(">BH", major | 25, n)
    elif n < 0x100000000:
        out += struct.pack(">BI", major | 26, n)
    else:
        out += struct.pack(">BQ", major | 27, n)


def _encode(out: bytearray, value: Any, depth: int) -> None:
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        if 0 <= value < _U64_END:
            _head(out, 0x00, value)
        elif -_U64_END <= value < 0:
            _head(out, 0x20, -1 - value)
        else:
            raise CborEncodeError("int", "outside the 64-bit range CBOR integers cover")
    elif isinstance(value, str):
        try:
            raw = value.encode("utf-8")
        except UnicodeError:  # lone surrogates (CPython only)
            raw = None
        if raw is None:
            raise CborEncodeError("str", "not encodable as UTF-8")
        _head(out, 0x60, len(raw))
        out += raw
    elif isinstance(value, (bytes, bytearray)):
        _head(out, 0x40, len(value))
        out += value
    elif isinstance(value, float):
        out += struct.pack(">Bd", 0xFB, value)
    elif isinstance(value, (list, tuple)):
        _check_depth(depth)
        _head(out, 0x80, len(value))
        for item in value:
            _encode(out, item, depth + 1)
    elif isinstance(value, dict):
        _check_depth(depth)
        _head(out, 0xA0, len(value))
        _encode_entries(out, value, depth + 1)
    else:
        raise CborEncodeError(type(value).__name__, "type outside the CBOR subset")


def _check_depth(depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise CborEncodeError("container", f"nested deeper than {MAX_DEPTH}")


def _encode_entries(out: bytearray, mapping: dict[Any, Any], depth: int) -> None:
    entries = []
    for key, value in mapping.items():
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise CborEncodeError("map key", f"{type(key).__name__} keys are not allowed (text or int only)")
        head = bytearray()
        _encode(head, key, depth)
        entries.append((bytes(head), value))
    entries.sort(key=_first)
    for encoded_key, value in entries:
        out += encoded_key
        _encode(out, value, depth)


def _first(entry: tuple[bytes, Any]) -> bytes:
    return entry[0]


def _strict_utf8(raw: Any, text: str) -> bool:
    """Whether `raw`, which decoded to `text`, is UTF-8 as CPython reads it. MicroPython's
    decoder also accepts overlong forms, surrogates and code points above U+10FFFF, so a
    board would take texts the station refuses."""
    if len(text) == len(raw):  # ASCII only: nothing to check
        return True
    size = 0  # of the shortest encoding: longer means an overlong form
    for char in text:
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
            return False
        size += 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
    return size == len(raw)


def cbor_decode(data: bytes | bytearray | memoryview, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS) -> Any:
    """Decode exactly one item filling all of `data`; raise CborError otherwise."""
    if isinstance(data, memoryview):
        data = bytes(data)
    elif not isinstance(data, (bytes, bytearray)):  # never bytes(n): an int would allocate n bytes
        raise CborError(0, f"input must be bytes, not {type(data).__name__}")
    reader = _Reader(bytes(data), max_depth, max_items)
    value = reader.item(0)
    if reader.pos != len(reader.data):
        raise CborError(reader.pos, f"{len(reader.data) - reader.pos} trailing bytes after the item")
    return value


def _half(bits: int) -> float:
    exponent = (bits >> 10) & 0x1F
    fraction = bits & 0x3FF
    if exponent == 0:
        value = ldexp(fraction, -24)
    elif exponent == 31:
        value = _INF if fraction == 0 else _NAN
    else:
        value = ldexp(fraction + 1024, exponent - 25)
    return -value if bits & 0x8000 else value


class _Reader:
    def __init__(self, data: bytes, max_depth: int, max_items: int) -> None:
        self.data = data
        self.pos = 0
        self.max_depth = max_depth
        self.items_left = max_items

    def _argument(self, start: int, info: int) -> int:
        """The integer that follows an initial byte; self.pos is just past that byte."""
        if info < 24:
            return info
        if info > 27:
            if info == 31:
                raise CborError(start, "indefinite lengths are not supported (definite only)")
            raise CborError(start, f"reserved additional information {info}")
        size = 1 << (info - 24)
        pos = self.pos
        if pos + size > len(self.data):
            raise CborError(start, f"truncated: header needs {size} more bytes")
        self.pos = pos + size
        return int.from_bytes(self.data[pos : pos + size], "big")

    def item(self, depth: int) -> Any:
        data = self.data
        start = self.pos
        if start >= len(data):
            raise CborError(start, "truncated: an item was expected")
        self.items_left -= 1
        if self.items_left < 0:
            raise CborError(start, "too many items")
        initial = data[start]
        major = initial >> 5
        info = initial & 0x1F
        self.pos = start + 1
        if major == 7:
            return self._simple(start, info)
        arg = self._argument(start, info)
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major == 2 or major == 3:
            return self._string(start, major, arg)
        if major == 4 or major == 5:
            if depth >= self.max_depth:
                raise CborError(start, f"containers nested deeper than {self.max_depth}")
            if major == 4:
                return self._array(start, arg, depth)
            return self._map(start, arg, depth)
        raise CborError(start, "tags are not supported")

    def _string(self, start: int, major: int, length: int) -> Any:
        remaining = len(self.data) - self.pos
        if length > remaining:
            raise CborError(start, f"string declares {length} bytes, {remaining} remain")
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        if major == 2:
            return raw
        try:
            text = raw.decode("utf-8")
        except UnicodeError:
            text = None
        if text is None or not _strict_utf8(raw, text):
            raise CborError(start, "text string is not valid UTF-8")
        return text

    def _check_count(self, start: int, count: int, min_size: int, what: str) -> None:
        remaining = len(self.data) - self.pos
        if count > remaining // min_size:
            raise CborError(start, f"{what} declares {count} entries, only {remaining} bytes remain")
        if count > self.items_left:
            raise CborError(start, f"{what} declares {count} entries, over the item budget")

    def _array(self, start: int, count: int, depth: int) -> list[Any]:
        self._check_count(start, count, 1, "array")
        items = []
        for _ in range(count):
            items.append(self.item(depth + 1))
        return items

    def _map(self, start: int, count: int, depth: int) -> dict[Any, Any]:
        self._check_count(start, count, 2, "map")
        result: dict[Any, Any] = {}
        for _ in range(count):
            key_start = self.pos
            if key_start >= len(self.data):
                raise CborError(key_start, "truncated: a map key was expected")
            if self.data[key_start] >> 5 not in (0, 1, 3):
                raise CborError(key_start, "map key must be an integer or a text string")
            key = self.item(depth + 1)
            if key in result:
                raise CborError(key_start, f"duplicate map key {key!r}")
            result[key] = self.item(depth + 1)
        return result

    def _simple(self, start: int, info: int) -> Any:
        if info == 20:
            return False
        if info == 21:
            return True
        if info == 22:
            return None
        if 25 <= info <= 27:
            size = 1 << (info - 24)
            pos = self.pos
            if pos + size > len(self.data):
                raise CborError(start, f"truncated: float needs {size} bytes")
            self.pos = pos + size
            raw = self.data[pos : pos + size]
            if size == 2:
                return _half((raw[0] << 8) | raw[1])
            return struct.unpack(">f" if size == 4 else ">d", raw)[0]
        if info == 31:
            raise CborError(start, "break code: indefinite lengths are not supported")
        if info == 23:
            raise CborError(start, "undefined is not supported (use null)")
        raise CborError(start, f"simple value {info} is not supported")
