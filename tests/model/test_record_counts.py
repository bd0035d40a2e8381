"""Counts per cell made several at a time (`metrics._counts_together`): the counts of one bincount each."""

import numpy as np
import polars as pl

from securecomm.model.metrics import _counts_together


def test_counts_made_together_are_the_counts_made_one_by_one():
    rng = np.random.default_rng(11)
    cells = rng.integers(0, 40, 5_000)
    # The most records of any cell (255 = 0b11111111), each selected by every selection: every field full.
    cells[:255] = 40
    selections = [
        (f"part {index}", rng.random(cells.size) < share) for index, share in enumerate(np.linspace(0, 1, 23))
    ]
    for _, selected in selections:
        selected[:255] = True
    counts = _counts_together(cells, pl.DataFrame(dict(selections)), 50)
    assert list(counts) == [name for name, _ in selections]
    for name, selected in selections:
        assert np.array_equal(counts[name], np.bincount(cells[selected], minlength=50)), name
    assert counts["part 0"][40] == 255 and counts["part 22"][40] == 255


def test_no_records_count_nothing():
    counts = _counts_together(np.zeros(0, np.int64), pl.DataFrame({"none": np.zeros(0, bool)}), 3)
    assert counts["none"].tolist() == [0, 0, 0]


def test_a_null_selects_no_record():
    selections = pl.DataFrame({"some": [True, None, True, False]})
    assert _counts_together(np.array([0, 0, 1, 1]), selections, 2)["some"].tolist() == [1, 1]
