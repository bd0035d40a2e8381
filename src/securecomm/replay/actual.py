"""What actually happened to a detainer, in one small vocabulary shared by every source.

Sources say it in their own words (a DDP lift reason, a jail's release disposition on the
row of the immigration hold); importers map those words onto these outcomes, and the
replay sets them beside what each policy would have decided.
"""

from __future__ import annotations

from typing import Final, Literal

ActualOutcome = Literal["to_ice", "declined", "released", "transferred", "cancelled", "other", "open"]

ACTUAL_OUTCOMES: Final[dict[str, str]] = {
    "to_ice": "handed to ICE",
    "declined": "jail declined the detainer",
    "released": "released, not to ICE",
    "transferred": "moved to another agency's custody",
    "cancelled": "detainer lifted by ICE",
    "other": "other outcome",
    "open": "no outcome recorded",
}

# How a jail row ended, for the mapping files' disposition tables.
CUSTODY_VALUES: Final = ("released", "to_ice", "transferred", "cancelled", "unknown")
# What became of the charge on that row.
CHARGE_OUTCOMES: Final = ("pending", "convicted", "not_convicted", "unknown")

# The detainer row's custody, read as the detainer's actual outcome.
OUTCOME_OF_CUSTODY: Final[dict[str, ActualOutcome]] = {
    "released": "released",
    "to_ice": "to_ice",
    "transferred": "transferred",
    "cancelled": "cancelled",
    "unknown": "other",
}
