"""The most serious current charge of a booking, which the minor-charge indicators and the release time read."""

from __future__ import annotations

import polars as pl

from securecomm.core import schema
from securecomm.model.stages.bookings import most_serious_charges


def test_the_most_serious_level_governs_and_within_it_a_traffic_charge_ranks_last():
    charges = pl.DataFrame(
        {
            "row": [0, 0, 1, 2, 2, 3, 3],
            "level": ["felony", "felony", "felony", "misdemeanor", "felony", "misdemeanor", "misdemeanor"],
            "category": ["traffic", "burglary", "traffic", "theft", "dui", "traffic", "public_order"],
        },
        schema={"row": pl.UInt32, "level": pl.Enum(schema.LEVELS), "category": pl.Enum(schema.CATEGORIES)},
    )
    levels, categories = most_serious_charges(charges)
    assert [schema.LEVELS[level] for level in levels] == ["felony", "felony", "felony", "misdemeanor"]
    # A traffic felony listed before a burglary: booked for the burglary; a traffic felony alone stays traffic.
    assert [schema.CATEGORIES[category] for category in categories] == ["burglary", "traffic", "dui", "public_order"]
