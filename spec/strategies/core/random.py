"""Strategies of valid inputs for the entries of `reference.core.random`: `threefry_cases`, `seed_cases`,
`split_cases`, `fold_in_cases`, `bits_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import keys, shapes

__all__ = ["threefry_cases", "seed_cases", "split_cases", "fold_in_cases", "bits_cases"]


@st.composite
def threefry_cases(draw):
    shape = draw(shapes(max_dims=2))
    words = hnp.arrays(np.int64, shape, elements=st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 2**32 - 1])))
    return Case((draw(keys()), draw(words), draw(words)))


def seed_cases():
    return st.builds(
        lambda s: Case((s,)), st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**32, 2**64 - 1]))
    )


def split_cases():
    return st.builds(lambda k, n: Case((k,), {"num": n}), keys(), st.integers(1, 8))


def fold_in_cases():
    return st.builds(lambda k, d: Case((k, d)), keys(), st.integers(0, 2**32 - 1))


def bits_cases():
    return st.builds(lambda k, s: Case((k, s)), keys(), shapes(max_dims=3, max_side=7))
