"""Issue 15: who is caught (indicators), what it does to communities (effects), and state participation."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import polars as pl
import pytest

from securecomm.core import schema
from securecomm.core.demographics import hispanic_ages, hispanic_population
from securecomm.model.metrics import METRICS, SHARES
from securecomm.model.parameters import load_parameters
from securecomm.model.simulation import simulate
from securecomm.model.stages import effects
from securecomm.model.stages.bookings import county_segments

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


# --- what it does to communities ---------------------------------------------------------


def test_each_effect_reproduces_its_study_arithmetic() -> None:
    # Gonçalves, Jácome & Weisburst: +0.152 pp a month on the pre-period base is +16% (the published base
    # is rounded to 0.9%: 0.152/0.9 = 16.9%, 0.152/0.95 = 16.0%)
    assert round(effects.relative_change(0.152, 0.0095), 2) == 0.16
    assert round(effects.relative_change(0.152, 0.009), 2) == 0.17
    # ... and -9.4 pp of a 31.3% reporting share is about -30%
    assert round(effects.relative_change(-9.4, 0.313), 2) == -0.30
    # 0.152 pp a month over 1,000 person-months adds 1.52 victimizations
    assert effects.added_events(0.152, 1_000) == pytest.approx(1.52)
    # Alsan & Yang: +0.017 log offenses is +1.7%
    assert effects.percent_of_log_points(0.017) == pytest.approx(1.7146, abs=1e-4)


def test_every_effect_cites_its_study_table_population_period_and_status() -> None:
    known = effects.studies()
    assert set(known.names("default")) == {
        "index_crime",
        "hispanic_victimization",
        "hispanic_reporting",
        "reported_crime",
    }
    for effect in known.effects.values():
        assert effect.study and effect.table and effect.population and effect.period and effect.status
        assert effect.references and effect.evidence_of and effect.not_evidence_of
    assert known.effects["hispanic_victimization"].estimate == 0.152
    assert known.effects["hispanic_victimization"].standard_error == 0.067


def _new_haven_12_plus_months() -> tuple[float, float, float]:
    """New Haven County in 2012: its ACS Hispanic residents, its own share aged 12+ (the age table's 15+
    and 3/5 of its 10-14, over all ages) and its months under the program within 24 of activation."""
    known = effects.studies().inputs
    ages = hispanic_ages().filter(pl.col("fips") == "09009").row(0, named=True)
    split = known["hispanic_share_of_10_to_14_aged_12_plus"].value
    aged_12_plus = ages["hispanic_aged_15_plus"] + split * (
        ages["hispanic_aged_10_plus"] - ages["hispanic_aged_15_plus"]
    )
    segments = county_segments(["09009"], dt.date(2012, 1, 1), dt.date(2012, 12, 31))
    months = effects.program_months(segments, dt.date(2012, 1, 1), 24)["window_months"].item()
    hispanic = hispanic_population().filter(pl.col("fips") == "09009")["hispanic_population"].item()
    return hispanic, aged_12_plus / ages["hispanic_population"], months


def test_victimization_applies_the_estimate_to_the_county_s_own_hispanic_residents_12_plus() -> None:
    result = simulate("09009", "2012-01-01", "2012-12-31", effects=("hispanic_victimization",))
    row = result.effects.row(0, named=True)
    hispanic, own_share, months = _new_haven_12_plus_months()
    assert row["value"] == pytest.approx(0.152 / 100 * hispanic * own_share * months)
    assert row["applies"] and "national 12+ share" not in row["note"]
    # New Haven's own share (0.793) is not the national fallback (0.758): the county's count is used
    national = effects.studies().inputs["hispanic_share_aged_12_plus"].value
    assert row["value"] != pytest.approx(0.152 / 100 * hispanic * national * months, rel=0.01)


def test_a_county_without_age_data_takes_the_national_share_and_the_note_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shares = effects.hispanic_share_aged_12_plus
    monkeypatch.setattr(
        effects,
        "hispanic_share_aged_12_plus",
        lambda split: shares(split).filter(pl.col("fips") != "09009"),
    )
    result = simulate("09009", "2012-01-01", "2012-12-31", effects=("hispanic_victimization", "hispanic_reporting"))
    victimization, reporting = result.effects.rows(named=True)
    hispanic, _, months = _new_haven_12_plus_months()
    national = effects.studies().inputs["hispanic_share_aged_12_plus"].value
    assert victimization["value"] == pytest.approx(0.152 / 100 * hispanic * national * months)
    assert victimization["note"].endswith("; 1 county without age data at the national 12+ share")
    assert reporting["note"].endswith("; 1 county without age data at the national 12+ share")


def test_with_the_estimates_at_zero_the_outputs_equal_a_run_without_the_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    known = effects.studies()
    zeroed = effects.Studies(
        known.inputs,
        {
            name: replace(effect, estimate=0.0 if effect.estimate is not None else None)
            for name, effect in known.effects.items()
        },
    )
    monkeypatch.setattr(effects, "studies", lambda: zeroed)
    chosen = known.names("default")
    with_stage = simulate("09009", "2012-01-01", "2013-06-30", effects=chosen)
    without = simulate("09009", "2012-01-01", "2013-06-30")
    assert with_stage.total == without.total
    assert with_stage.county_months.equals(without.county_months)
    assert with_stage.records.equals(without.records)
    assert with_stage.effects.filter(pl.col("value") != 0).height == 0
    assert "effects" not in without.to_dict()


def test_a_single_run_gives_each_effect_the_study_s_own_90_percent_interval() -> None:
    """Without replications the band of an effect with a standard error is the study's 90% interval (estimate
    ± 1.645 standard errors) carried through the place's arithmetic: Alsan & Yang's +0.017 log points (SE
    0.023) is a null band around +1.7%; an effect without a standard error has none."""
    from securecomm.model.replications import effect_bands

    chosen = ("index_crime", "hispanic_victimization", "reported_crime")
    result = simulate("09009", "2012-01-01", "2013-06-30", effects=chosen)
    rows = {row["effect"]: row for row in result.effects.rows(named=True)}
    crime = rows["index_crime"]
    assert crime["low"] == pytest.approx(effects.percent_of_log_points(0.017 - 1.6448536 * 0.023), abs=1e-4)
    assert crime["high"] == pytest.approx(effects.percent_of_log_points(0.017 + 1.6448536 * 0.023), abs=1e-4)
    assert crime["low"] < 0 < crime["value"] < crime["high"]
    victimization = rows["hispanic_victimization"]
    # Added victimizations are proportional to the estimate: the interval scales the value.
    assert victimization["low"] / victimization["value"] == pytest.approx((0.152 - 1.6448536 * 0.067) / 0.152)
    assert rows["reported_crime"]["low"] is None and rows["reported_crime"]["high"] is None
    bands = effect_bands([{"policies": {"p": {"effects": result.effects.to_dicts()}}}], "p")
    assert bands["index_crime"]["band_from"] == "study"
    assert bands["index_crime"]["band"] == {"median": crime["value"], "low": crime["low"], "high": crime["high"]}
    assert bands["reported_crime"]["band_from"] == "replications"
