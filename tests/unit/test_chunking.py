from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from station.mesh.chunking import split_text

LIMIT = 233


def body(part: str) -> str:
    return part.split(") ", 1)[1]


def test_short_text_is_one_unnumbered_part() -> None:
    assert split_text("hello") == ["hello"]
    exact = "x" * LIMIT
    assert split_text(exact) == [exact]


def test_long_text_is_numbered_and_fits() -> None:
    parts = split_text("word " * 200)
    assert len(parts) > 1
    assert all(len(part.encode()) <= LIMIT for part in parts)
    numbers = [part.split(" ", 1)[0] for part in parts]
    assert numbers == [f"({i}/{len(parts)})" for i in range(1, len(parts) + 1)]


def test_cut_never_splits_a_multibyte_character() -> None:
    text = "é" * 300 + "🔥" * 100  # 2-byte then 4-byte characters, no spaces
    parts = split_text(text)
    assert "".join(body(p) for p in parts) == text
    assert all(len(p.encode()) <= LIMIT for p in parts)


def test_prefers_word_boundaries() -> None:
    text = " ".join(["firefly"] * 80)
    for part in split_text(text)[:-1]:
        assert body(part).endswith(" ")


@given(st.text(min_size=1, max_size=3000))
def test_parts_reassemble_to_the_text(text: str) -> None:
    parts = split_text(text)
    assert all(len(p.encode("utf-8")) <= LIMIT for p in parts)
    joined = parts[0] if len(parts) == 1 else "".join(body(p) for p in parts)
    assert joined == text
