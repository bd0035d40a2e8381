"""Units of time, declared once: the simulation counts in days, minutes and seconds, and reports hours."""

from __future__ import annotations

from typing import Final

HOURS_PER_DAY: Final = 24
MINUTES_PER_HOUR: Final = 60
MINUTES_PER_DAY: Final = HOURS_PER_DAY * MINUTES_PER_HOUR
SECONDS_PER_HOUR: Final = 3600
SECONDS_PER_DAY: Final = HOURS_PER_DAY * SECONDS_PER_HOUR
# Rates per year apply over spans counted in days: a year is the mean calendar year.
DAYS_PER_YEAR: Final = 365.25
