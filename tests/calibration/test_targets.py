import datetime as dt
import math

import polars as pl
import pytest

from securecomm.calibration.targets import (
    TARGET_COLUMNS,
    TARGET_METRICS,
    TargetError,
    evaluate_targets,
    load_settings,
    load_targets,
    parse_targets,
    simulation_period,
    simulation_place,
)
from securecomm.core.places import counties, resolve_place

HEADER = ",".join(TARGET_COLUMNS)


def row(**fields):
    values = {
        "id": "t",
        "use": "fit",
        "metric": "removals",
        "channel": "secure_communities",
        "place": "09001",
        "place_name": "New Haven County",
        "start": "2010-01-01",
        "end": "2010-12-31",
        "published": "100",
        "comparison": "approx",
        "tolerance": "0.2",
        "tolerance_unit": "relative",
        "series": "",
        "source": "a source",
        "url": "https://example.org",
        "note": "",
    } | fields
    return ",".join(values[column] for column in TARGET_COLUMNS)


def test_the_shipped_targets_are_complete_and_sourced():
    targets = load_targets()
    ids = {t.id for t in targets}
    assert len(ids) == len(targets)
    assert all(t.source and t.url.startswith("http") and t.tolerance > 0 for t in targets)
    assert {t.metric for t in targets} <= set(TARGET_METRICS)
    # The list: cumulative SC figures, first-year figures, GAO and program removals, NPR by year,
    # the no-conviction share and jurisdictions by date.
    for metric in ("fingerprints_checked", "ident_matches", "transfers_to_ice", "removals", "detainers_issued"):
        assert any(t.metric == metric and t.place == "US" for t in targets), metric
    npr = sorted(t.start.year for t in targets if t.series == "npr_detainers_by_year")
    assert npr == list(range(2008, 2015))
    assert all(t.channel == "all" for t in targets if t.series == "npr_detainers_by_year")
    assert sum(t.metric == "detainer_transfer_share" for t in targets) == 7
    shares = {t.id: t for t in targets if t.metric == "removals_noncriminal_share"}
    assert len(shares) == 3
    # GAO-12-708: of about 183,000 removed through March 2012, about 74 percent had a conviction; held out
    gao = shares["noncriminal_share_gao_2012_03"]
    assert (gao.published, gao.use, gao.end) == (0.26, "holdout", dt.date(2012, 3, 31))
    assert sum(t.metric == "counties_activated" for t in targets) >= 10
    assert any(t.fitted for t in targets) and any(not t.fitted for t in targets)
    settings = load_settings()
    assert settings.program_start == dt.date(2008, 10, 27) and settings.program_end == dt.date(2014, 11, 20)
    assert {check.id for check in settings.series} <= {t.series for t in targets}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"metric": "deportations"}, "metric 'deportations'"),
        ({"use": "maybe"}, "use 'maybe'"),
        ({"place": "XX"}, "XX"),
        ({"end": "2009-01-01"}, "before the start"),
        ({"published": "lots"}, "not a number"),
        ({"tolerance": "0"}, "positive"),
        ({"tolerance_unit": "percent"}, "tolerance_unit 'percent'"),
        ({"tolerance": "0.9", "tolerance_unit": "factor"}, "above 1"),
        ({"metric": "ident_matches", "channel": "all"}, "secure_communities"),
        ({"url": ""}, "source and a url"),
    ],
)
def test_bad_rows_are_named(fields, message):
    with pytest.raises(TargetError, match="line 2") as error:
        parse_targets(f"{HEADER}\n{row(**fields)}\n", "mine.csv")
    assert message in str(error.value) and "mine.csv" in str(error.value)


def test_duplicate_ids_are_rejected():
    with pytest.raises(TargetError, match="unique"):
        parse_targets(f"{HEADER}\n{row()}\n{row()}\n")


def _records():
    """Five hand-made records in two counties, two channels."""
    at = dt.datetime
    return pl.DataFrame(
        {
            "channel": [
                "secure_communities",
                "secure_communities",
                "secure_communities",
                "other_routes",
                "secure_communities",
            ],
            "fips": ["09001", "09001", "09001", "09001", "09009"],
            "status": ["unauthorized", "native", "unauthorized", "lawful_permanent_resident", "unauthorized"],
            "booking_at": [at(2010, 1, 5), at(2010, 3, 1), at(2010, 12, 31, 23), at(2010, 6, 1), at(2010, 6, 1)],
            "detainer_issued": [True, False, True, True, True],
            "jail_decision": ["honor", None, "decline", "honor", "honor"],
            "held": [True, False, False, True, True],
            "transferred": [True, False, False, True, True],
            "transfer_at": [at(2010, 1, 9), None, None, at(2011, 1, 3), at(2010, 6, 3)],
            "removed": [True, False, False, True, True],
            "removal_at": [at(2011, 1, 2), None, None, at(2011, 2, 1), at(2010, 7, 1)],
            "ice_level": ["non_criminal", "non_criminal", "level_3", "level_1", "level_1"],
            "removal_level": ["non_criminal", "non_criminal", "level_3", "level_1", "level_1"],
        }
    )


def _segments():
    return pl.DataFrame(
        {
            "fips": ["09001", "09001"],
            "segment_start": [dt.date(2010, 1, 1), dt.date(2010, 2, 1)],
            "segment_end": [dt.date(2010, 2, 1), dt.date(2010, 3, 1)],
            "days": [31, 28],
            "bookings": [310, 280],
            "fingerprints_checked": [310, 0],
        }
    )


def test_model_values_count_events_in_their_own_windows():
    text = "\n".join(
        [
            HEADER,
            row(id="matches", metric="ident_matches"),
            row(id="detainers_sc", metric="detainers_issued"),
            row(id="detainers_all", metric="detainers_issued", channel="all"),
            row(id="detainers_state", metric="detainers_issued", place="CT"),
            row(id="transfers", metric="transfers_to_ice", channel="all"),
            row(id="removals_2010", metric="removals", channel="all"),
            row(id="removals_2011", metric="removals", start="2011-01-01", end="2011-12-31"),
            row(id="noncriminal_share", metric="removals_noncriminal_share", start="2010-01-01", end="2011-12-31"),
            row(id="transfer_share", metric="detainer_transfer_share", channel="all"),
            row(id="checked_jan_10th", metric="fingerprints_checked", start="2010-01-01", end="2010-01-10"),
            row(id="bookings_jan_feb", metric="bookings", start="2010-01-22", end="2010-02-14"),
            row(id="activated", metric="counties_activated", place="CT", end="2010-12-31"),
        ]
    )
    targets = parse_targets(text)
    values = evaluate_targets(targets, _segments(), _records(), resolve_place("CT"))
    assert values["matches"] == 3  # bookings of 2010 in Fairfield, Secure Communities only
    assert values["detainers_sc"] == 2
    assert values["detainers_all"] == 3
    assert values["detainers_state"] == 3  # every county simulated: New Haven's as well
    assert values["transfers"] == 1  # by the date of the transfer: the one of Jan 3, 2011 belongs to 2011
    assert values["removals_2010"] == 0  # both Fairfield removals happened in 2011
    assert values["removals_2011"] == 1  # Secure Communities only
    assert values["noncriminal_share"] == 1.0  # one SC removal in Fairfield in 2010-2011, without a conviction
    assert values["transfer_share"] == pytest.approx(2 / 3)  # of 3 detainers booked in 2010, 2 ever transferred
    assert values["checked_jan_10th"] == pytest.approx(310 * 10 / 31)
    assert values["bookings_jan_feb"] == pytest.approx(310 * 10 / 31 + 280 * 14 / 28)
    # Connecticut: Fairfield (2010-06-29) and the statewide activation of 2012-02-22 (places table).
    activated = counties().filter(pl.col("state") == "CT", pl.col("sc_activation_date") <= dt.date(2010, 12, 31))
    assert values["activated"] == activated.height == 1
    assert not any(math.isnan(v) for v in values.values())


def test_simulation_covers_every_target():
    targets = parse_targets(
        "\n".join([HEADER, row(id="a", place="09001"), row(id="b", place="36061", end="2012-05-03")])
    )
    assert simulation_place(targets) == "09001,36061"
    assert simulation_period(targets) == (dt.date(2010, 1, 1), dt.date(2012, 5, 31))
    assert simulation_place([*targets, *parse_targets("\n".join([HEADER, row(place="US")]))]) == "US"


def test_the_removal_lag_moves_removals_at_an_early_date_and_not_the_total():
    """Removals published at a date count those completed by then (dated by `removal_at`): a longer
    lag from ICE custody to removal lowers the count at an early date and leaves the total."""
    from securecomm.calibration.fit import _simulate
    from securecomm.model.parameters import load_parameters

    base = load_parameters()
    lag = base.value("removal_lag_days")
    slower_lag = {hearing: {**lognormal, "median": lognormal["median"] * 4} for hearing, lognormal in lag.items()}
    slower = base.replace_values({"removal_lag_days": ((None, slower_lag),)}, "slower")
    text = "\n".join(
        [
            HEADER,
            row(id="early", place="NM", start="2011-01-01", end="2011-03-31"),
            row(id="total", place="NM", start="2011-01-01", end="2017-12-31"),
        ]
    )
    targets = parse_targets(text)
    start, end = dt.date(2011, 1, 1), dt.date(2011, 6, 30)
    before = evaluate_targets(targets, *_simulate(base, "NM", start, end, 3))
    after = evaluate_targets(targets, *_simulate(slower, "NM", start, end, 3))
    assert after["early"] < 0.85 * before["early"]
    assert after["total"] == before["total"]
