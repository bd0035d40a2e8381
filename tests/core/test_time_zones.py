"""Every county keeps a U.S. time zone; states that span zones are split by county."""

import pytest

from securecomm.core import places
from securecomm.core.schema import TIME_ZONES


def test_every_county_has_a_known_zone():
    zones = places.county_time_zones()
    assert set(zones) == set(places.counties()["fips"].to_list())
    assert set(zones.values()) <= set(TIME_ZONES)


@pytest.mark.parametrize(
    ("fips", "zone"),
    [
        ("06085", "America/Los_Angeles"),  # Santa Clara
        ("11001", "America/New_York"),  # District of Columbia
        ("17031", "America/Chicago"),  # Cook
        ("48141", "America/Denver"),  # El Paso TX
        ("12033", "America/Chicago"),  # Escambia FL
        ("47093", "America/New_York"),  # Knox TN
        ("18089", "America/Chicago"),  # Lake IN
        ("41045", "America/Boise"),  # Malheur OR
        ("04013", "America/Phoenix"),  # Maricopa: no daylight time
    ],
)
def test_county_zones(fips, zone):
    assert places.time_zone(fips) == zone


def test_a_place_keeps_one_zone_or_none():
    assert places.single_time_zone(["CT"]) == "America/New_York"
    assert places.single_time_zone(["CA"]) == "America/Los_Angeles"
    assert places.single_time_zone(["US"]) is None
    assert places.single_time_zone(["TN"]) is None
