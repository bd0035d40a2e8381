"""ICE's ramp-up after a county's activation (issue 16: activation_ramp_start_share, activation_ramp_months)."""

import datetime as dt

import numpy as np
import polars as pl
import pytest

import securecomm
from securecomm.model.parameters import load_parameters
from securecomm.model.stages.issuance import (
    RAMP_MONTHS,
    RAMP_START,
    activation_days_of,
    activation_ramp,
    months_since_activation,
)


def with_ramp(start: float, months: float):
    parameters = load_parameters()
    return parameters.replace_values({RAMP_START: ((None, start),), RAMP_MONTHS: ((None, months),)}, "ramp")


def test_the_ramp_rises_from_its_start_share_to_one():
    parameters = with_ramp(0.2, 4)
    months = np.array([0, 1, 2, 3, 4, 5, 40, np.nan])
    assert activation_ramp(months, parameters) == pytest.approx([0.2, 0.4, 0.6, 0.8, 1, 1, 1, 1])
    assert activation_ramp(months, with_ramp(1.0, 4)) == pytest.approx(np.ones(months.size))


def test_months_are_counted_from_the_county_s_activation():
    activation = activation_days_of(pl.Series(["49035", "49035", "49035"]))  # Salt Lake County, 2010-03-23
    assert activation[0] == np.datetime64("2010-03-23")
    booked = np.array(["2010-03-23", "2010-04-21", "2010-04-24"], dtype="datetime64[D]")
    assert months_since_activation(booked, activation).tolist() == [0, 0, 1]


def counts_by_period(result, periods):
    records = result.records.filter(pl.col("channel") == "secure_communities")
    days = records.get_column("booking_at").dt.date()
    issued = records.get_column("detainer_issued")
    return [int((issued & (days >= start) & (days <= end)).sum()) for start, end in periods]


def test_the_ramp_moves_the_first_months_not_a_county_activated_long_before():
    """Salt Lake County (activated 2010-03-23): a ramp from 0.2 over 4 months lowers the detainers of the
    first months, not those of a year later. Harris County (activated 2008-10-27) in 2012: the same totals."""
    first, later = (dt.date(2010, 3, 23), dt.date(2010, 6, 30)), (dt.date(2011, 1, 1), dt.date(2011, 6, 30))
    runs = {
        start: securecomm.simulate(
            "49035", dt.date(2010, 1, 1), dt.date(2011, 6, 30), seed=11, parameters=with_ramp(start, 4)
        )
        for start in (0.2, 1.0)
    }
    (ramped_first, ramped_later), (full_first, full_later) = (
        counts_by_period(runs[start], (first, later)) for start in (0.2, 1.0)
    )
    assert full_first > 50
    assert ramped_first < 0.75 * full_first
    assert ramped_later == full_later  # common random numbers: the same draws once the ramp is over
    assert runs[0.2].total["ident_matches"] == runs[1.0].total["ident_matches"]

    harris = [
        securecomm.simulate(
            "48201", dt.date(2012, 1, 1), dt.date(2012, 12, 31), seed=11, parameters=with_ramp(start, 4)
        ).total
        for start in (0.2, 1.0)
    ]
    assert harris[0] == harris[1]
