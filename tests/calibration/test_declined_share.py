"""The simulator's declined share by calendar year against NPR's FOIA data (issue 12, item 10).

Simulated: detainers_declined / detainers_issued, `simulate --place US` over each calendar year
(historical policy timeline, seed 0). Observed: NPR's "Detainer Declined by LEA" share of closed
detainers (non-null lift reason) by calendar year of the prepare date
(../shared/data/npr_detainers: detainers_by_lift_reason_and_year.csv / lifted_detainers_by_year.csv,
nprapps/sanctuary-cities @ f80c438):

    year  declined  closed   share
    2010     121    153,808  0.08 %
    2011     279    156,876  0.18 %
    2012     942    138,026  0.68 %
    2013   2,378    102,035  2.33 %
    2014  13,595     75,480  18.01 %

Tolerances (issue 12): 1 point for 2010–2012, 2 for 2013, 3 for 2014.

The model met them once a county's detainer volume could differ from its field office's (issues 12 and
16; docs/calibration-declined-share.md, "The fix"): before, 99 % of the 2012 declines were in Cook County,
Santa Clara County, New York City, Connecticut and D.C., where one national rate per noncitizen booking put
2.5-5.8 times NPR's share of detainers — already in 2010, before any of their policies. The places' volumes
are now held to the detainers NPR's table records at their jails and police (calibration/place_targets.csv,
npr_volume_*), through a county factor on both routes (county_detainer_factor, issuance.yaml), fitted with
the national targets (the overlay of scripts/refit_county_factors.py): 1.58 % (2012), 2.26 % (2013) and
16.86 % (2014) at seed 0. 2012 is the closest (0.90 points of the 1 allowed).
"""

from __future__ import annotations

import datetime as dt

import pytest

import securecomm

NPR_DECLINED_SHARE = {
    2010: 121 / 153_808,
    2011: 279 / 156_876,
    2012: 942 / 138_026,
    2013: 2_378 / 102_035,
    2014: 13_595 / 75_480,
}
TOLERANCE_POINTS = {2010: 1.0, 2011: 1.0, 2012: 1.0, 2013: 2.0, 2014: 3.0}


@pytest.mark.parametrize("year", sorted(NPR_DECLINED_SHARE))
def test_declined_share_tracks_npr(year: int) -> None:
    result = securecomm.simulate("US", dt.date(year, 1, 1), dt.date(year, 12, 31), seed=0)
    simulated = result.total["detainers_declined"] / result.total["detainers_issued"]
    assert abs(simulated - NPR_DECLINED_SHARE[year]) * 100 <= TOLERANCE_POINTS[year], (
        f"{year}: simulated {100 * simulated:.2f} % vs NPR {100 * NPR_DECLINED_SHARE[year]:.2f} %"
    )
