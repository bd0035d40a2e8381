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
from collections.abc import Callable
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from securecomm.core.units import HOURS_PER_DAY, SECONDS_PER_DAY, SECONDS_PER_HOUR
from securecomm.law.model import Counting

MICROSECONDS_PER_SECOND = 1_000_000
MICROSECONDS_PER_HOUR = SECONDS_PER_HOUR * MICROSECONDS_PER_SECOND
MICROSECONDS_PER_DAY = HOURS_PER_DAY * MICROSECONDS_PER_HOUR
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY
# The calendar covers every date a record can plausibly carry; outside it the clock refuses.
CALENDAR_YEARS = range(1990, 2061)


# The calendar as shipped: python-holidays' U.S. federal holidays, observed, of CALENDAR_YEARS, written by
# scripts/build_federal_holidays.py (a test rebuilds it and compares), so that a run reads ~850 dates rather
# than import the library's every country (~0.15 s at the start of each run).
HOLIDAY_TABLE = Path(__file__).resolve().parents[1] / "core" / "data" / "federal_holidays.csv"


@cache
def federal_holidays() -> np.ndarray:
    """U.S. federal holidays, with the observed date when one falls on a weekend (the shipped table)."""
    lines = HOLIDAY_TABLE.read_text(encoding="utf-8").splitlines()
    rows = [line for line in lines if line and not line.startswith("#")][1:]  # after the header
    return np.array([row.split(",", 1)[0] for row in rows], dtype="datetime64[D]")


@cache
def _business_calendar() -> np.busdaycalendar:
    return np.busdaycalendar(weekmask="1111100", holidays=federal_holidays())


@cache
def _holiday_dates() -> frozenset[dt.date]:
    return frozenset(federal_holidays().astype(dt.date).tolist())


def is_business_day(day: dt.date) -> bool:
    # A set look-up: the clock of one case asks day by day (a NumPy call per day cost ~35 µs of a desk intake).
    return day.weekday() < 5 and day not in _holiday_dates()


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
    midnight, then spend whole business days and the remainder, counting business days by
    their position in a table of them.
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
    time_of_day = (known_starts - days).astype("int64")
    whole_days_at_most = (MICROSECONDS_PER_DAY + hours * MICROSECONDS_PER_HOUR) // MICROSECONDS_PER_DAY
    business_day, on_or_after = _business_days(days.min(), days.max(), whole_days_at_most)
    start = on_or_after[(days - days.min()).astype(np.int64)]  # the first business day on or after the day
    on_business_day = business_day[start] == days
    total = np.where(on_business_day, time_of_day, 0) + hours * MICROSECONDS_PER_HOUR
    # The deadline falls on the business day where the running total reaches `total`;
    # a total that ends exactly at midnight ends that day rather than opening the next.
    whole_days = (total - 1) // MICROSECONDS_PER_DAY
    remainder = total - whole_days * MICROSECONDS_PER_DAY
    end_day = business_day[start + whole_days]
    deadlines[known] = end_day.astype("datetime64[us]") + remainder.astype("timedelta64[us]")
    return deadlines


def _business_days(first: np.datetime64, last: np.datetime64, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """The business days from a little before `first` to `reach` business days after `last`, and for each
    calendar day from `first` to `last` the position among them of the first business day on or after it:
    so that a million deadlines are a few look-ups rather than a million calendar computations."""
    margin = np.timedelta64(2 * reach + 14, "D")  # holds at least `reach` business days, holidays and all
    calendar = np.arange(first - margin, last + margin + 1, dtype="datetime64[D]")
    business = np.is_busday(calendar, busdaycal=_business_calendar())
    # The position of the first business day on or after a day is the number of business days before it.
    before = np.cumsum(business) - business
    skipped = int(margin.astype(np.int64))
    return calendar[business], before[skipped : skipped + int((last - first).astype(np.int64)) + 1]


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


@cache
def _offsets(zone: str, first_year: int, last_year: int) -> tuple[np.ndarray, np.ndarray]:
    """The zone's UTC offsets from `first_year` through `last_year`: (starts, offsets), each offset in
    force from its start (a UTC instant) to the next one's, both in microseconds.

    Read from the zone's rules (zoneinfo, as `localize`) week by week, each change then found to the
    microsecond by bisection, so that many times are read in the zone with a few array operations
    rather than one look-up each. A zone's offset changes at most once in a week (a change and its
    reversal, as daylight saving time's, are months apart). A change happens on a whole second (the zone
    files count in seconds): it is looked for second by second."""
    tz = ZoneInfo(zone)
    microsecond = dt.timedelta(microseconds=1)

    def offset_at(second: int) -> int:
        return dt.datetime.fromtimestamp(second, tz).utcoffset() // microsecond

    first = int(dt.datetime(first_year, 1, 1, tzinfo=UTC).timestamp())
    last = int(dt.datetime(last_year + 1, 1, 1, tzinfo=UTC).timestamp())
    starts, offsets = [first], [offset_at(first)]
    for week in range(first + SECONDS_PER_WEEK, last + SECONDS_PER_WEEK, SECONDS_PER_WEEK):
        if offset_at(week) == offsets[-1]:
            continue
        before, after = week - SECONDS_PER_WEEK, week
        while after - before > 1:
            middle = (before + after) // 2
            before, after = (middle, after) if offset_at(middle) == offsets[-1] else (before, middle)
        starts.append(after)
        offsets.append(offset_at(after))
    return np.array(starts, dtype=np.int64) * MICROSECONDS_PER_SECOND, np.array(offsets, dtype=np.int64)


# `_offsets` are read over whole decades, so that runs whose times span a few years each (the replications
# of a comparison, the policy runs on a population) share one table per zone rather than each making its own.
OFFSET_YEARS = 10


def _offsets_for(moments: np.ndarray, zone: str) -> tuple[np.ndarray, np.ndarray]:
    """`_offsets` over the decades that hold the years of `moments` (known, datetime64[us]) and a year either
    side."""
    first, last = (moment.astype("datetime64[Y]").astype(int) + 1970 for moment in (moments.min(), moments.max()))
    decade_start, decade_end = (int(year) // OFFSET_YEARS * OFFSET_YEARS for year in (first - 1, last + 1))
    return _offsets(zone, decade_start, decade_end + OFFSET_YEARS - 1)


def _convert_known(
    times: np.ndarray, zone: str, convert: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """`times` (datetime64) converted by `convert(microseconds, starts, offsets)` with the zone's `_offsets`
    over their years, as datetime64[us]; an unknown time (NaT) stays unknown."""
    times = times.astype("datetime64[us]")
    converted = np.full(times.shape, np.datetime64("NaT"), dtype="datetime64[us]")
    known = ~np.isnat(times)
    if not known.any():
        return converted
    moments = times[known]
    starts, offsets = _offsets_for(moments, zone)
    converted[known] = convert(moments.astype(np.int64), starts, offsets).astype("datetime64[us]")
    return converted


def _utc_microseconds(local: np.ndarray, starts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    # An offset governs the wall times from its start to the next change, read on its own clock. A time
    # repeated when clocks fall back lies in two of them and is read in the first; one skipped when they
    # spring forward lies in none and is read with the offset before the change.
    wall_ends = np.append(starts[1:] + offsets[:-1], np.iinfo(np.int64).max)
    period = np.searchsorted(wall_ends, local, side="right")
    skipped = (period > 0) & (local < starts[period] + offsets[period])
    period -= skipped
    return local - offsets[period]


def _wall_microseconds(instants: np.ndarray, starts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return instants + offsets[np.searchsorted(starts, instants, side="right") - 1]


def utc_of_wall(wall: np.ndarray, zone: str) -> np.ndarray:
    """Wall-clock times read in `zone` as the clock reads them (see the module notes) as UTC instants
    (naive datetime64[us]): the start a hold's `hold_until_utc` is measured from."""
    return _convert_known(wall, zone, _utc_microseconds)


def wall_in_zone(utc: np.ndarray, zone: str) -> np.ndarray:
    """UTC instants (naive datetime64[us]) as wall-clock times in `zone`."""
    return _convert_known(utc, zone, _wall_microseconds)


def hold_until_many_in_zone(
    wall: np.ndarray, zone: str, hours: int, counting: Counting, instants: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Deadlines for many wall-clock starts in one zone: (local wall time, UTC), both datetime64[us].

    Clock hours are added to the instant: the start's own where `instants` (UTC, NaT where unknown) gives
    it — a case given with its UTC offset names one of the two wall times repeated when clocks fall back —
    else the wall time read in the zone. Business hours are spent on the local calendar (a business day in
    a U.S. zone is always 24 hours long: the clocks change on Sundays) and the deadline is then read in
    the zone.
    """
    if counting == "clock_hours":
        starts = utc_of_wall(wall, zone)
        if instants is not None:
            starts = np.where(np.isnat(instants), starts, instants)
        utc = starts + np.timedelta64(hours * MICROSECONDS_PER_HOUR, "us")
    else:
        utc = utc_of_wall(hold_until_many(wall, hours, counting), zone)
    return wall_in_zone(utc, zone), utc
