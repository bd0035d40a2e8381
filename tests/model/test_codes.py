"""Categorical draws: the table route gives the category a comparison with every boundary gives."""

from __future__ import annotations

import numpy as np
import pytest

from securecomm.model.stages.codes import LOOKUP_BINS, draw_codes


def _compared(shares: dict[str, float], count: int, seed: int) -> np.ndarray:
    cumulative = np.cumsum(list(shares.values()))
    uniform = np.random.default_rng(seed).random(count) * cumulative[-1]
    return (uniform[:, None] >= cumulative[None, :-1]).sum(axis=1)


@pytest.mark.parametrize("seed", range(20))
def test_draws_are_the_categories_of_the_uniform_draws(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    categories = int(rng.integers(1, 25))
    values = rng.random(categories) * (rng.random(categories) > 0.2)  # some categories never drawn
    if seed % 3 == 0:
        values = np.round(values, 1)  # boundaries on round numbers, some equal
    shares = {str(index): float(value) for index, value in enumerate(values)}
    count = 3 * LOOKUP_BINS
    drawn = draw_codes(shares, list(shares), count, np.random.default_rng(seed))
    assert np.array_equal(drawn, _compared(shares, count, seed))
