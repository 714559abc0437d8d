"""Board profiles (`boards/*.toml`): link, flash layout and agent options of one kind of board.

MicroPython has no tomllib, so this module reads the subset of TOML the profiles use:
top-level keys and flat `[table]`s of bare keys; basic and literal strings, integers
(decimal, 0x, 0o, 0b, underscores), floats, booleans and arrays of those (over several
lines if needed); `#` comments. Anything else (dotted keys, inline tables, dates, arrays
of tables, multi-line strings) is refused with ProfileError, never misread: a test
parses every profile with tomllib and with this reader and compares. Owns parsing and
the Profile view only; it does not open links or apply options.
"""

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

TRANSPORTS = ("stdio", "tcp", "uart")
MAX_PROFILE_BYTES = 16384  # profiles are a few hundred bytes; a bigger file is not a profile
_BARE_KEY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}
_VALUE_END = ",] \t"


class ProfileError(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"profile line {line}: {reason}")
        self.line = line
        self.reason = reason


def _bare_key(text: str, line: int) -> str:
    if not text or any(ch not in _BARE_KEY_CHARS for ch in text):
        raise ProfileError(line, f"{text!r} is not a bare key (dotted and quoted keys are not supported)")
    return text


def _strip_comment(text: str) -> str:
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return text[:i]
        i += 1
    return text


def _brackets_balanced(text: str) -> bool:
    depth = 0
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        i += 1
    return depth <= 0


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _parse_basic_string(text: str, pos: int, line: int) -> tuple[str, int]:
    out: list[str] = []
    pos += 1
    while pos < len(text):
        ch = text[pos]
        if ch == '"':
            return "".join(out), pos + 1
        if ch == "\\":
            code = text[pos + 1 : pos + 2]
            if code in _ESCAPES:
                out.append(_ESCAPES[code])
                pos += 2
                continue
            width = 4 if code == "u" else 8 if code == "U" else 0
            digits = text[pos + 2 : pos + 2 + width]
            if not width or len(digits) != width:
                raise ProfileError(line, f"bad escape \\{code}")
            try:
                out.append(chr(int(digits, 16)))
            except ValueError:
                raise ProfileError(line, f"bad escape \\{code}{digits}") from None
            pos += 2 + width
            continue
        out.append(ch)
        pos += 1
    raise ProfileError(line, "unterminated string")


def _underscored(digits: str) -> bool:
    """Non-empty, with single underscores only between digits."""
    return bool(digits) and digits[0] != "_" and digits[-1] != "_" and "__" not in digits


def _is_digits(digits: str) -> bool:
    return _underscored(digits) and digits.replace("_", "").isdigit()


def _parse_number(token: str, line: int) -> int | float:
    signed = token[:1] in "+-"
    sign = -1 if token[:1] == "-" else 1
    body = token[1:] if signed else token
    if body in ("inf", "nan"):
        return sign * float(body)
    base = {"0x": 16, "0o": 8, "0b": 2}.get(body[:2], 0)
    if base:
        if signed or not _underscored(body[2:]):
            raise ProfileError(line, f"bad number {token!r}")
        try:
            return int(body[2:].replace("_", ""), base)
        except ValueError:
            raise ProfileError(line, f"bad number {token!r}") from None
    mantissa, exp_mark, exponent = body.replace("E", "e").partition("e")
    whole, dot, fraction = mantissa.partition(".")
    ok = _is_digits(whole) and (whole.replace("_", "") == "0" or whole[0] != "0")
    if dot:
        ok = ok and _is_digits(fraction)
    if exp_mark:
        ok = ok and _is_digits(exponent[1:] if exponent[:1] in "+-" else exponent)
    if not ok:
        raise ProfileError(line, f"bad value {token!r} (dates and bare words are not supported)")
    plain = body.replace("_", "")
    if dot or exp_mark:
        return sign * float(plain)
    return sign * int(plain)


def _parse_value(text: str, pos: int, line: int) -> tuple[Any, int]:
    pos = _skip_space(text, pos)
    if pos >= len(text):
        raise ProfileError(line, "missing value")
    ch = text[pos]
    if text.startswith('"""', pos) or text.startswith("'''", pos):
        raise ProfileError(line, "multi-line strings are not supported")
    if ch == '"':
        return _parse_basic_string(text, pos, line)
    if ch == "'":
        end = text.find("'", pos + 1)
        if end < 0:
            raise ProfileError(line, "unterminated string")
        return text[pos + 1 : end], end + 1
    if ch == "[":
        return _parse_array(text, pos + 1, line)
    if ch == "{":
        raise ProfileError(line, "inline tables are not supported")
    end = pos
    while end < len(text) and text[end] not in _VALUE_END:
        end += 1
    word = text[pos:end]
    if word == "true":
        return True, end
    if word == "false":
        return False, end
    return _parse_number(word, line), end


def _parse_array(text: str, pos: int, line: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    while True:
        pos = _skip_space(text, pos)
        if pos < len(text) and text[pos] == "]":
            return items, pos + 1
        if pos < len(text) and text[pos] == "[":
            raise ProfileError(line, "nested arrays are not supported")
        value, pos = _parse_value(text, pos, line)
        items.append(value)
        pos = _skip_space(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos >= len(text) or text[pos] != "]":
            raise ProfileError(line, "expected , or ] in array")


def loads(text: str) -> dict[str, Any]:
    """Parse profile text into nested dicts (one level of tables)."""
    doc: dict[str, Any] = {}
    table = doc
    lines = text.replace("\r\n", "\n").split("\n")
    index = 0
    while index < len(lines):
        line = index + 1
        stripped = _strip_comment(lines[index]).strip()
        index += 1
        if not stripped:
            continue
        if stripped[0] == "[":
            if stripped.startswith("[[") or not stripped.endswith("]"):
                raise ProfileError(line, "expected [table] (arrays of tables are not supported)")
            name = _bare_key(stripped[1:-1].strip(), line)
            if name in doc:
                raise ProfileError(line, f"{name!r} defined twice")
            table = {}
            doc[name] = table
            continue
        key_text, eq, value_text = stripped.partition("=")
        if not eq:
            raise ProfileError(line, "expected key = value")
        key = _bare_key(key_text.strip(), line)
        value_text = value_text.strip()
        while value_text.startswith("[") and not _brackets_balanced(value_text):
            if index >= len(lines):
                raise ProfileError(line, "unterminated array")
            value_text += " " + _strip_comment(lines[index]).strip()
            index += 1
        value, end = _parse_value(value_text, 0, line)
        if value_text[end:].strip():
            raise ProfileError(line, f"unexpected {value_text[end:].strip()!r} after the value")
        if key in table:
            raise ProfileError(line, f"{key!r} defined twice")
        table[key] = value
    return doc


class Profile:
    """A parsed profile: `name`, `platform` and its tables (link, flash, agent, handlers)."""

    def __init__(self, doc: dict[str, Any], source: str = "<profile>") -> None:
        self.source = source
        name = doc.get("name")
        if not isinstance(name, str) or not name:
            raise ProfileError(0, "missing name")
        self.name = name
        self.platform = str(doc.get("platform", name))
        self.link = self._table(doc, "link")
        self.flash = self._table(doc, "flash")
        self.agent = self._table(doc, "agent")
        self.handlers = self._table(doc, "handlers")
        transport = self.link.get("transport", "stdio")
        if transport not in TRANSPORTS:
            raise ProfileError(0, "link.transport must be one of " + ", ".join(TRANSPORTS))

    @staticmethod
    def _table(doc: dict[str, Any], name: str) -> dict[str, Any]:
        table = doc.get(name, {})
        if not isinstance(table, dict):
            raise ProfileError(0, f"{name} must be a [table]")
        return table


def load_profile(path: str) -> Profile:
    """Read and check the profile at `path`; ProfileError (line 0: the whole file) if unusable."""
    import os

    try:
        size = os.stat(path)[6]
        if size <= MAX_PROFILE_BYTES:
            with open(path) as handle:
                text = handle.read()
    except OSError as exc:
        raise ProfileError(0, f"cannot read {path}: {exc}") from None
    if size > MAX_PROFILE_BYTES:
        raise ProfileError(0, f"{path} is larger than {MAX_PROFILE_BYTES} bytes")
    return Profile(loads(text), path)
