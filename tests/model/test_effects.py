"""Issue 15: who is caught (indicators), what it does to communities (effects), and state participation."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from securecomm.core import schema
from securecomm.model.metrics import METRICS, SHARES
from securecomm.model.parameters import load_parameters

AT = dt.datetime
END = dt.date(2013, 12, 31)


def _caught() -> pl.DataFrame:
    """Five hand-made records: who was removed or transferred, through which channel, on what charge."""
    return pl.DataFrame(
        {
            "channel": ["secure_communities"] * 4 + ["other_routes"],
            "detainer_issued": [True, True, True, False, True],
            "known_convictions": [0, 2, 0, 0, 1],
            "most_serious_charge_level": ["misdemeanor", "felony", "felony", "infraction", "misdemeanor"],
            "most_serious_charge_category": ["theft", "traffic", "burglary", "traffic", "theft"],
            "transferred": [True, True, True, False, True],
            "removed": [True, True, True, False, True],
            "removal_at": [AT(2013, 2, 1), AT(2013, 3, 1), AT(2014, 3, 1), None, AT(2013, 5, 1)],
        },
        schema_overrides={"most_serious_charge_level": pl.Enum(schema.LEVELS)},
    )


def _value(name: str) -> float:
    return _caught().select(METRICS[name].period_value(END, load_parameters())).item()


def test_removals_on_minor_charges_count_the_removed_booked_on_a_misdemeanor_or_traffic_charge_by_the_end() -> None:
    # rows 0 (misdemeanor), 1 (felony traffic) and 4 (misdemeanor); row 2 is removed after the end
    assert _value("removals_on_minor_charges") == 3


def test_detainers_on_people_with_no_conviction_and_their_share() -> None:
    assert _value("detainers_no_conviction") == 2  # rows 0 and 2; row 3 had no detainer
    share = SHARES["detainers_no_conviction_share"]
    assert (share.numerator.name, share.denominator.name) == ("detainers_no_conviction", "detainers_issued")


def test_warren_institute_shares_scale_the_people_caught_through_secure_communities() -> None:
    parameters = load_parameters()
    family = parameters.value("us_citizen_spouse_or_child_share")
    hearing = parameters.value("immigration_hearing_share")
    counsel = parameters.value("counsel_share_of_hearings")
    assert (family, hearing, counsel, parameters.value("relief_granted_share")) == (0.39, 0.52, 0.24, 0.02)
    # removed through the program by the end: rows 0 and 1 (row 2 after the end, row 4 another route)
    assert _value("removals_with_us_citizen_family") == pytest.approx(2 * 0.39)
    # transferred through the program: rows 0, 1 and 2
    assert _value("transfers_with_hearing") == pytest.approx(3 * 0.52)
    assert _value("transfers_with_counsel") == pytest.approx(3 * 0.52 * 0.24)
    assert _value("transfers_granted_relief") == pytest.approx(3 * 0.02)
    assert not METRICS["transfers_with_hearing"].targetable  # an expected number, not a count of records
