"""Splitting a long text into numbered parts that each fit one Meshtastic payload.

Cuts only at UTF-8 character boundaries (a part never carries half a character) and
prefers the last space in a part's final stretch so words stay whole.
"""

from __future__ import annotations

from station.config import MAX_TEXT_PAYLOAD_BYTES

WORD_BREAK_WINDOW = 40  # look this many characters back for a space before cutting mid-word


def split_text(text: str, limit: int = MAX_TEXT_PAYLOAD_BYTES) -> list[str]:
    """One part if the text fits, else parts prefixed '(i/n) ', each at most `limit` bytes."""
    if len(text.encode("utf-8")) <= limit:
        return [text]
    total = 2
    while True:  # the prefix width depends on the part count; grow until the count is stable
        parts = _split_with_prefix(text, limit, total)
        if len(parts) <= total:
            return [f"({index}/{len(parts)}) {part}" for index, part in enumerate(parts, 1)]
        total = len(parts)


def _split_with_prefix(text: str, limit: int, total: int) -> list[str]:
    room = limit - len(f"({total}/{total}) ".encode())
    if room < 8:
        raise ValueError(f"a {limit}-byte payload cannot hold a numbered part")
    parts, rest = [], text
    while rest:
        piece = _longest_prefix(rest, room)
        parts.append(piece)
        rest = rest[len(piece) :]
    return parts


def _longest_prefix(text: str, room: int) -> str:
    """The longest prefix of whole characters within `room` bytes, preferring a word break."""
    used, end = 0, 0
    for char in text:
        width = len(char.encode("utf-8"))
        if used + width > room:
            break
        used += width
        end += 1
    if end == len(text):
        return text
    window_start = max(1, end - WORD_BREAK_WINDOW)
    space = text.rfind(" ", window_start, end)
    return text[: space + 1] if space > 0 else text[:end]
