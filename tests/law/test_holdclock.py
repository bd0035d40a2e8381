import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomm.law.holdclock import HOLIDAY_TABLE, federal_holidays, hold_until, hold_until_many, is_business_day


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
    assert not is_business_day(dt.date(2014, 11, 29)) and not is_business_day(dt.date(2014, 11, 30))  # the weekend


def test_the_shipped_calendar_is_python_holidays_own(tmp_path):
    # The table the clock reads must be the library's calendar, byte for byte: when python-holidays changes a
    # holiday, rebuild it (scripts/build_federal_holidays.py).
    rebuilt = tmp_path / "federal_holidays.csv"
    build = Path(__file__).resolve().parents[2] / "scripts" / "build_federal_holidays.py"
    subprocess.run([sys.executable, str(build), "--out", str(rebuilt)], check=True, capture_output=True)
    assert HOLIDAY_TABLE.read_text(encoding="utf-8") == rebuilt.read_text(encoding="utf-8")
    shipped = [line.split(",", 1)[0] for line in rebuilt.read_text(encoding="utf-8").splitlines()[4:]]
    assert federal_holidays().astype(str).tolist() == shipped


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


# --- on the jurisdiction's clock -------------------------------------------------------------

from securecomm.core.schema import TIME_ZONES  # noqa: E402
from securecomm.law.holdclock import UTC, hold_until_in_zone, hold_until_many_in_zone, localize  # noqa: E402

# Instants within a day of a daylight-saving change (second Sunday of March, first of November
# since 2007), so that most holds cross one.
dst_days = st.sampled_from(
    [dt.datetime(year, 3, 8 + (6 - dt.date(year, 3, 8).weekday()) % 7) for year in range(2008, 2020)]
    + [dt.datetime(year, 11, 1 + (6 - dt.date(year, 11, 1).weekday()) % 7) for year in range(2008, 2020)]
)
near_dst = st.builds(
    lambda day, minutes: day + dt.timedelta(minutes=minutes),
    dst_days,
    st.integers(min_value=-4 * 24 * 60, max_value=2 * 24 * 60),
)
zones = st.sampled_from([zone for zone in TIME_ZONES if zone != "America/Puerto_Rico"])


def local_business_seconds(start: dt.datetime, end: dt.datetime) -> float:
    """Brute force on aware times: the real seconds of [start, end] that fall on local business days."""
    zone = start.tzinfo
    total = 0.0
    day = start.date()
    while day <= end.date():
        if is_business_day(day):
            lo = max(start, dt.datetime.combine(day, dt.time(), tzinfo=zone))
            hi = min(end, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone))
            total += max((hi.astimezone(UTC) - lo.astimezone(UTC)).total_seconds(), 0)
        day += dt.timedelta(days=1)
    return total


@settings(max_examples=300, deadline=None)
@given(near_dst, zones, st.integers(min_value=1, max_value=96))
def test_clock_hours_are_real_hours_across_dst(wall, zone, hours):
    start = localize(wall, zone)
    deadline = hold_until_in_zone(start, hours, "clock_hours")
    assert deadline.astimezone(UTC) - start.astimezone(UTC) == dt.timedelta(hours=hours)
    local, utc = hold_until_many_in_zone(np.array([wall], dtype="datetime64[us]"), zone, hours, "clock_hours")
    assert local[0].astype(dt.datetime) == deadline.replace(tzinfo=None)
    assert utc[0].astype(dt.datetime) == deadline.astimezone(UTC).replace(tzinfo=None)


@settings(max_examples=300, deadline=None)
@given(near_dst, zones, st.integers(min_value=1, max_value=96))
def test_business_hours_count_only_local_business_hours_across_dst(wall, zone, hours):
    start = localize(wall, zone)
    deadline = hold_until_in_zone(start, hours, "business_hours")
    assert local_business_seconds(start, deadline) == hours * 3600
    last_second = (deadline.astimezone(UTC) - dt.timedelta(seconds=1)).astimezone(start.tzinfo)
    assert is_business_day(last_second.date())
    local, utc = hold_until_many_in_zone(np.array([wall], dtype="datetime64[us]"), zone, hours, "business_hours")
    assert local[0].astype(dt.datetime) == deadline.replace(tzinfo=None)
    assert utc[0].astype(dt.datetime) == deadline.astimezone(UTC).replace(tzinfo=None)


def test_santa_clara_example_of_the_issue():
    start = localize(dt.datetime(2013, 11, 2, 12), "America/Los_Angeles")
    assert hold_until_in_zone(start, 24, "clock_hours").replace(tzinfo=None) == dt.datetime(2013, 11, 3, 11)


def test_a_skipped_wall_time_is_read_before_the_change_and_a_repeated_one_as_the_first():
    zone = "America/New_York"
    skipped = localize(dt.datetime(2014, 3, 9, 2, 30), zone)
    assert skipped.astimezone(UTC).replace(tzinfo=None) == dt.datetime(2014, 3, 9, 7, 30)
    repeated = localize(dt.datetime(2014, 11, 2, 1, 30), zone)
    assert repeated.astimezone(UTC).replace(tzinfo=None) == dt.datetime(2014, 11, 2, 5, 30)
    walls = np.array(["2014-03-09T02:30", "2014-11-02T01:30"], dtype="datetime64[us]")
    _, utc = hold_until_many_in_zone(walls, zone, 1, "clock_hours")
    assert [u.astype(dt.datetime) for u in utc] == [dt.datetime(2014, 3, 9, 8, 30), dt.datetime(2014, 11, 2, 6, 30)]
