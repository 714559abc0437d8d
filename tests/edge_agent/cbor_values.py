"""Hypothesis strategies for values in the CBOR subset, and a comparison that tells
1 from 1.0 and treats NaN as equal to NaN."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

from edge_agent.protocol import MAX_DEPTH

U64 = 2**64
cbor_ints = st.integers(min_value=-U64, max_value=U64 - 1)
map_keys = st.one_of(st.text(max_size=12), cbor_ints)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(item) for item in value.values()), default=0)
    return 0


def values(scalars: st.SearchStrategy[Any], keys: st.SearchStrategy[Any] = map_keys) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=6), st.dictionaries(keys, children, max_size=6)
        ),
        max_leaves=40,
    ).filter(lambda value: depth(value) <= MAX_DEPTH)


float_free_scalars = st.one_of(
    st.none(), st.booleans(), cbor_ints, st.binary(max_size=300), st.text(max_size=300)
)
scalars = st.one_of(float_free_scalars, st.floats())
cbor_subset = values(scalars)
float_free_text_keyed = values(float_free_scalars, st.text(max_size=30))


def same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)
