"""Detainer volume by county: NPR's detainers by facility, mapped to counties, as place targets (issues 12, 16).

NPR's FOIA table counts every detainer ICE lodged with each facility, FY2008 – Jul 19, 2015
(core/data/npr_facility_counties.csv, built by scripts/build_npr_facility_counties.py, which maps the
facilities of a few places to their counties by hand). A place's target is the model's detainers there,
both channels (`detainers_issued`, channel `all`), calendar years 2008–2014:

    published = (the detainers lodged with the place's jails and police) × (the nation's share of
                FY2008 – Jul 2015 in 2008–2014)

- the years: NPR's table has no year by facility, so a place is assumed to keep its share of the
  nation's detainers over the years (an assumption); the national years are NPR's own
  (shared/data/npr_detainers/detainers_by_year.csv);
- the jails only: a county's detainers in the model are those its jail decides on (honours or declines
  under its policy), so they are compared with the detainers lodged with its own jails and police. The
  third of NPR's detainers lodged with state and federal prisons, the Marshals and ICE (the build
  script's local share, 0.67) are in the model's national total (the other routes' rate is NPR's total
  over noncitizen jail bookings), which the national targets keep: the fit puts them in the other
  counties, mostly cooperating, as the prisons were. Dividing a place's count by the local share
  instead (its share of that third) would have the place's policy decline detainers lodged with the
  state's prisons (docs/calibration-declined-share.md).

Tolerance: a factor 1.5, the place targets' for counts (issue 16).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from securecomm.calibration.place_figures import COUNT_FACTOR, Skipped

FIT_START = "2008-01-01"
FIT_END = "2014-12-31"
FIRST_YEAR, LAST_YEAR = 2008, 2014
SOURCE = (
    "NPR FOIA detainers by facility, FY2008 - Jul 2015 (nprapps/sanctuary-cities @ 3aba2d3, "
    "privatefacility/public_detentations_percentages.csv), mapped to counties in core/data/npr_facility_counties.csv"
)
URL = "https://github.com/nprapps/sanctuary-cities"


def share_of_years(national_by_year: Mapping[int, int]) -> float:
    """The share of NPR's detainers (every year of its table) lodged in calendar years 2008–2014."""
    return sum(count for year, count in national_by_year.items() if FIRST_YEAR <= year <= LAST_YEAR) / sum(
        national_by_year.values()
    )


def county_volume_targets(
    facilities_csv: str, provenance: Mapping[str, Any], national_by_year: Mapping[int, int]
) -> tuple[list[dict[str, str]], list[Skipped]]:
    """One target row per place of the facility table (the columns of calibration/targets.csv), or the place
    skipped with its reason; every row of the facility table is in exactly one place."""
    rows = list(csv.DictReader(io.StringIO(facilities_csv)))
    places = provenance["places"]
    unknown = {row["place"] for row in rows} - set(places)
    if unknown:
        raise ValueError(f"facilities of places the provenance does not list: {sorted(unknown)}")
    years = share_of_years(national_by_year)
    targets: list[dict[str, str]] = []
    skipped: list[Skipped] = []
    for line, (place, spec) in enumerate(places.items(), start=1):
        own = [row for row in rows if row["place"] == place]
        detainers = sum(int(row["detainers"]) for row in own)
        if not own or detainers == 0:
            skipped.append(
                Skipped(line, spec["name"], "detainers_issued", "0", "no facility of the place in the table")
            )
            continue
        codes = sorted({row["fips"] for row in own} | set(spec["fips"]))
        published = round(detainers * years)
        targets.append(
            {
                "id": f"npr_volume_{place}",
                "use": "fit",
                "metric": "detainers_issued",
                "channel": "all",
                "place": ",".join(codes),
                "place_name": spec["name"],
                "start": FIT_START,
                "end": FIT_END,
                "published": str(published),
                "comparison": "approx",
                "tolerance": f"{COUNT_FACTOR:g}",
                "tolerance_unit": "factor",
                "series": "",
                "source": SOURCE,
                "url": URL,
                "note": (
                    f"{detainers} detainers FY2008 - Jul 2015 at {len(own)} facilities "
                    f"({', '.join(row['facility'] for row in own)}) x {years:.4f} (the nation's share in 2008-2014): "
                    "the place keeps its share of the nation's detainers over the years (assumption)"
                ),
            }
        )
    return targets, skipped
