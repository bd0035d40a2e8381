import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomm.law.holdclock import federal_holidays, hold_until, hold_until_many, is_business_day


def many(starts, hours, counting="business_hours"):
    values = np.array(starts, dtype="datetime64[us]")
    return [None if np.isnat(v) else v.astype(dt.datetime) for v in hold_until_many(values, hours, counting)]


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        # The worked examples of 8 C.F.R. 287.7(d) practice (docs/facts.md §3.1).
        ("2014-03-03T17:00", 48, "2014-03-05T17:00"),  # Monday 17:00 → Wednesday 17:00
        ("2014-03-06T17:00", 48, "2014-03-10T17:00"),  # Thursday 17:00 → Monday 17:00
        ("2014-03-08T10:00", 48, "2014-03-12T00:00"),  # a Saturday start runs from Monday 00:00
        ("2014-05-23T09:30", 48, "2014-05-28T09:30"),  # Memorial Day does not count
        ("2014-11-26T16:30", 48, "2014-12-01T16:30"),  # Thanksgiving
        ("2015-07-02T11:00", 48, "2015-07-07T11:00"),  # July 4 2015 is a Saturday: observed Friday July 3
        ("2010-12-23T08:00", 48, "2010-12-28T08:00"),  # Christmas 2010 (Sat) observed Friday Dec 24
        ("2014-03-07T00:00", 24, "2014-03-08T00:00"),  # a span that ends at midnight ends that day
        ("2014-03-06T17:00", 0, "2014-03-06T17:00"),
    ],
)
def test_business_hours_examples(start, hours, expected):
    start_at, expected_at = dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(expected)
    assert hold_until(start_at, hours, "business_hours") == expected_at
    assert many([start_at], hours) == [expected_at]


def test_clock_hours_ignore_weekends():
    saturday = dt.datetime(2014, 3, 8, 10, 0)
    assert hold_until(saturday, 24, "clock_hours") == dt.datetime(2014, 3, 9, 10, 0)
    assert many([saturday], 24, "clock_hours") == [dt.datetime(2014, 3, 9, 10, 0)]


def test_observed_federal_holidays_are_in_the_calendar():
    days = set(federal_holidays().astype(dt.date).tolist())
    assert dt.date(2015, 7, 3) in days  # Independence Day observed
    assert dt.date(2014, 1, 20) in days  # Martin Luther King Jr. Day
    assert dt.date(2014, 4, 18) not in days  # Good Friday is not a federal holiday
    assert not is_business_day(dt.date(2014, 11, 27))
    assert is_business_day(dt.date(2014, 11, 28))


def test_unknown_start_stays_unknown():
    assert many([np.datetime64("NaT"), dt.datetime(2014, 3, 6, 17)], 48) == [None, dt.datetime(2014, 3, 10, 17)]


def test_dates_outside_the_calendar_are_refused():
    with pytest.raises(ValueError, match="outside the holiday calendar"):
        hold_until(dt.datetime(1985, 1, 1), 48, "business_hours")
    with pytest.raises(ValueError, match="outside the holiday calendar"):
        hold_until_many(np.array(["1985-01-01T00:00"], dtype="datetime64[us]"), 48, "business_hours")


def business_seconds_between(start: dt.datetime, end: dt.datetime) -> float:
    """Brute force: sum the parts of each day in [start, end] that fall on business days."""
    total = 0.0
    day = start.date()
    while day <= end.date():
        if is_business_day(day):
            lo = max(start, dt.datetime.combine(day, dt.time()))
            hi = min(end, dt.datetime.combine(day + dt.timedelta(days=1), dt.time()))
            total += max((hi - lo).total_seconds(), 0)
        day += dt.timedelta(days=1)
    return total


starts = st.datetimes(min_value=dt.datetime(1995, 1, 1), max_value=dt.datetime(2055, 12, 1)).map(
    lambda value: value.replace(microsecond=0)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(starts, min_size=1, max_size=20), st.integers(min_value=1, max_value=120))
def test_vectorised_clock_agrees_with_the_day_walk(start_list, hours):
    assert many(start_list, hours) == [hold_until(start, hours, "business_hours") for start in start_list]


@settings(max_examples=200, deadline=None)
@given(starts, st.integers(min_value=1, max_value=120))
def test_deadline_spends_exactly_the_hours_on_business_days(start, hours):
    deadline = hold_until(start, hours, "business_hours")
    assert business_seconds_between(start, deadline) == hours * 3600
    # ...and not a second later than needed: the last counted second falls on a business day.
    assert is_business_day((deadline - dt.timedelta(seconds=1)).date())
