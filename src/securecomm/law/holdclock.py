"""The detainer hold clock: when must a person held on a detainer be released?

Two ways of counting a policy's maximum hold (docs/design.md §3):
- business hours: only hours that fall on a day that is not a Saturday, Sunday or U.S.
  federal holiday (observed dates) count — 8 C.F.R. § 287.7(d) "48 hours, excluding
  Saturdays, Sundays, and holidays". Thursday 17:00 + 48 h is Monday 17:00; a Saturday
  start runs from Monday 00:00.
- clock hours: real elapsed hours (Santa Clara: 24, as reported; Form I-247A: 48). DC counts
  its 24 hours excluding weekends and holidays (D.C. Code § 24-211.07(a)).

The clock runs in the jurisdiction's own time zone (`*_in_zone`): clock hours are real hours,
so 24 hours from 12:00 on the Saturday before daylight saving time ends run to 11:00 on
Sunday; business hours are the real hours of the local business days (in U.S. zones those are
always 24 hours long: clocks change early on Sunday mornings). A wall-clock start that falls in
the hour skipped when clocks spring forward is read with the offset in force before the change
(02:30 is 03:30 daylight time), and one that happens twice when clocks fall back is the first.
Without a zone (`hold_until`, `hold_until_many`) times are plain wall-clock times. The deadline
is the earliest moment at which the counted hours are used up.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from zoneinfo import ZoneInfo

import holidays
import numpy as np
import polars as pl

from securecomm.law.model import Counting

MICROSECONDS_PER_HOUR = 3_600_000_000
MICROSECONDS_PER_DAY = 24 * MICROSECONDS_PER_HOUR
# The calendar covers every date a record can plausibly carry; outside it the clock refuses.
CALENDAR_YEARS = range(1990, 2061)


@cache
def federal_holidays() -> np.ndarray:
    """U.S. federal holidays, with the observed date when one falls on a weekend."""
    calendar = holidays.country_holidays("US", years=CALENDAR_YEARS, observed=True)
    return np.array(sorted(calendar.keys()), dtype="datetime64[D]")


@cache
def _business_calendar() -> np.busdaycalendar:
    return np.busdaycalendar(weekmask="1111100", holidays=federal_holidays())


def is_business_day(day: dt.date) -> bool:
    return bool(np.is_busday(np.datetime64(day, "D"), busdaycal=_business_calendar()))


def _check_range(day: dt.date) -> None:
    if day.year not in CALENDAR_YEARS:
        raise ValueError(
            f"date {day.isoformat()} is outside the holiday calendar ({CALENDAR_YEARS.start}–{CALENDAR_YEARS.stop - 1})"
        )


def hold_until(release_eligible_at: dt.datetime, hours: int, counting: Counting) -> dt.datetime:
    """The deadline for one person, walking day by day (the readable reference)."""
    if counting == "clock_hours":
        return release_eligible_at + dt.timedelta(hours=hours)
    _check_range(release_eligible_at.date())
    remaining = dt.timedelta(hours=hours)
    moment = release_eligible_at
    while True:
        next_midnight = dt.datetime.combine(moment.date() + dt.timedelta(days=1), dt.time())
        if is_business_day(moment.date()):
            if remaining <= next_midnight - moment:
                return moment + remaining
            remaining -= next_midnight - moment
        moment = next_midnight


def hold_until_many(release_eligible_at: np.ndarray, hours: int, counting: Counting) -> np.ndarray:
    """The deadlines for many people at once (datetime64[us]; NaT stays NaT).

    Business hours: move a start on a non-business day to the next business day's
    midnight, then spend whole business days and the remainder with np.busday_offset.
    """
    starts = release_eligible_at.astype("datetime64[us]")
    if counting == "clock_hours":
        return starts + np.timedelta64(hours * MICROSECONDS_PER_HOUR, "us")
    known = ~np.isnat(starts)
    deadlines = np.full(starts.shape, np.datetime64("NaT"), dtype="datetime64[us]")
    if not known.any():
        return deadlines
    known_starts = starts[known]
    days = known_starts.astype("datetime64[D]")
    first, last = days.min().astype(dt.date), days.max().astype(dt.date)
    _check_range(first)
    _check_range(last)
    calendar = _business_calendar()
    on_business_day = np.is_busday(days, busdaycal=calendar)
    start_day = np.busday_offset(days, 0, roll="forward", busdaycal=calendar)
    time_of_day = np.where(on_business_day, (known_starts - days).astype("int64"), 0)
    total = time_of_day + hours * MICROSECONDS_PER_HOUR
    # The deadline falls on the business day where the running total reaches `total`;
    # a total that ends exactly at midnight ends that day rather than opening the next.
    whole_days = (total - 1) // MICROSECONDS_PER_DAY
    remainder = total - whole_days * MICROSECONDS_PER_DAY
    end_day = np.busday_offset(start_day, whole_days, roll="forward", busdaycal=calendar)
    deadlines[known] = end_day.astype("datetime64[us]") + remainder.astype("timedelta64[us]")
    return deadlines


# --- in a time zone ----------------------------------------------------------------------

UTC = dt.UTC


def localize(moment: dt.datetime, zone: str) -> dt.datetime:
    """A wall-clock time read in `zone`, or an aware time converted to it (see the module notes)."""
    tz = ZoneInfo(zone)
    if moment.tzinfo is not None:
        return moment.astimezone(tz)
    return moment.replace(tzinfo=tz, fold=0)


def hold_until_in_zone(start: dt.datetime, hours: int, counting: Counting) -> dt.datetime:
    """The deadline for one aware start, in its zone, walking the local days in real time."""
    if start.tzinfo is None:
        raise ValueError("hold_until_in_zone needs an aware start (see localize)")
    zone = start.tzinfo
    moment = start.astimezone(UTC)
    if counting == "clock_hours":
        return (moment + dt.timedelta(hours=hours)).astimezone(zone)
    local_day = moment.astimezone(zone).date()
    _check_range(local_day)
    remaining = dt.timedelta(hours=hours)
    while True:
        next_day = local_day + dt.timedelta(days=1)
        day_end = dt.datetime.combine(next_day, dt.time(), tzinfo=zone).astimezone(UTC)
        if is_business_day(local_day):
            if remaining <= day_end - moment:
                return (moment + remaining).astimezone(zone)
            remaining -= day_end - moment
        local_day, moment = next_day, day_end


def _zoned(wall: np.ndarray, zone: str) -> pl.Series:
    """Wall-clock times (datetime64[us]) read in `zone`: a skipped time with the earlier offset."""
    series = pl.Series("wall", wall, dtype=pl.Datetime("us"))
    aware = series.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
    skipped = aware.is_null() & series.is_not_null()
    if skipped.any():
        # U.S. clocks skip one hour: an hour earlier exists, and an hour of real time later is the
        # moment the wall clock would have read had it not been changed yet.
        # Only the skipped rows read `shifted`; another row an hour on from a skipped time (03:45 on the
        # day clocks spring forward) would be skipped itself once shifted: null there, not an error.
        shifted = (series - dt.timedelta(hours=1)).dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
        aware = pl.select(pl.when(skipped).then(shifted + dt.timedelta(hours=1)).otherwise(aware)).to_series()
    return aware


def hold_until_many_in_zone(
    wall: np.ndarray, zone: str, hours: int, counting: Counting
) -> tuple[np.ndarray, np.ndarray]:
    """Deadlines for many wall-clock starts in one zone: (local wall time, UTC), both datetime64[us].

    Clock hours are added to the instant; business hours are spent on the local calendar (a
    business day in a U.S. zone is always 24 hours long) and the deadline is then read in the zone.
    """
    if counting == "clock_hours":
        ends = _zoned(wall, zone) + dt.timedelta(hours=hours)
    else:
        ends = _zoned(hold_until_many(wall, hours, counting), zone)
    local = ends.dt.replace_time_zone(None).to_numpy().astype("datetime64[us]")
    utc = ends.dt.convert_time_zone("UTC").dt.replace_time_zone(None).to_numpy().astype("datetime64[us]")
    return local, utc


def utc_of_wall(wall: np.ndarray, zone: str) -> np.ndarray:
    """Wall-clock times read in `zone` as the clock reads them (see the module notes) as UTC instants
    (naive datetime64[us]): the start a hold's `hold_until_utc` is measured from."""
    return _zoned(wall, zone).dt.convert_time_zone("UTC").dt.replace_time_zone(None).to_numpy().astype("datetime64[us]")


def wall_in_zone(utc: np.ndarray, zone: str) -> np.ndarray:
    """UTC instants (naive datetime64[us]) as wall-clock times in `zone`."""
    series = pl.Series("utc", utc, dtype=pl.Datetime("us")).dt.replace_time_zone("UTC")
    return series.dt.convert_time_zone(zone).dt.replace_time_zone(None).to_numpy().astype("datetime64[us]")
