"""Categorical draws: the table route gives the category a comparison with every boundary gives, and
categories come with their shares; codes become Enum columns."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from securecomm.model.stages.codes import DRAW_RANGE, LOOKUP_BITS, as_enum, draw_codes
from securecomm.model.stages.state import PlaceKeys, PlaceStream


def _one_place(count: int) -> PlaceKeys:
    return PlaceKeys.one_place(count)


def _compared(shares: dict[str, float], count: int, seed: int) -> np.ndarray:
    """Each draw compared with every boundary (the cumulative shares on the 32-bit scale)."""
    cumulative = np.cumsum(list(shares.values()))
    boundaries = np.floor(cumulative[:-1] / cumulative[-1] * DRAW_RANGE)
    draws = PlaceStream(seed, 0).integers(_one_place(count), DRAW_RANGE, np.uint32)
    return (draws[:, None] >= boundaries[None, :]).sum(axis=1)


@pytest.mark.parametrize("seed", range(20))
def test_draws_are_the_categories_of_the_integer_draws(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    categories = int(rng.integers(1, 25))
    values = rng.random(categories) * (rng.random(categories) > 0.2)  # some categories never drawn
    values[rng.integers(categories)] += 0.05  # one at least is
    if seed % 3 == 0:
        values = np.round(values, 1) + (values == values.max()) * 0.1  # boundaries on round numbers, some equal
    shares = {str(index): float(value) for index, value in enumerate(values)}
    count = 3 << LOOKUP_BITS
    drawn = draw_codes(shares, list(shares), _one_place(count), PlaceStream(seed, 0))
    assert drawn.dtype == np.uint8
    assert np.array_equal(drawn, _compared(shares, count, seed))


def test_categories_come_with_their_shares_and_a_share_of_zero_never() -> None:
    shares = {"felony": 0.25, "misdemeanor": 0.0, "infraction": 0.75, "none": 0.0}
    drawn = draw_codes(shares, list(shares), _one_place(400_000), PlaceStream(3, 0))
    frequencies = np.bincount(drawn, minlength=4) / drawn.size
    assert frequencies == pytest.approx([0.25, 0.0, 0.75, 0.0], abs=0.005)
    assert frequencies[1] == frequencies[3] == 0


def test_shares_that_are_all_zero_are_refused() -> None:
    with pytest.raises(ValueError, match="no category"):
        draw_codes({"a": 0.0, "b": 0.0}, ["a", "b"], _one_place(10), PlaceStream(1, 0))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int64, np.uint32])
def test_codes_become_the_enum_of_their_vocabulary_with_negatives_missing(dtype: type) -> None:
    vocabulary = ["felony", "misdemeanor", "traffic"]
    signed = np.dtype(dtype).kind == "i"
    codes = np.array([2, 0, -1, 1] if signed else [2, 0, 1, 1], dtype=dtype)
    column = as_enum(codes, vocabulary)
    assert column.dtype == pl.Enum(vocabulary)
    expected = (
        ["traffic", "felony", None, "misdemeanor"] if signed else ["traffic", "felony", "misdemeanor", "misdemeanor"]
    )
    assert column.cast(pl.String).to_list() == expected


def test_every_code_missing_needs_no_vocabulary() -> None:
    column = as_enum(np.full(3, -1, dtype=np.int64), [])
    assert column.dtype == pl.Enum([]) and column.null_count() == 3


def test_a_code_outside_the_vocabulary_is_refused() -> None:
    with pytest.raises(pl.exceptions.ComputeError):
        as_enum(np.array([0, 3], dtype=np.uint8), ["a", "b"])
