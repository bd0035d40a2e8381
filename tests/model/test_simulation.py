import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from securecomm.cli import app
from securecomm.core.places import resolve_place
from securecomm.model.metrics import METRICS, REPORTED, channel_totals, county_months
from securecomm.model.parameters import load_parameters
from securecomm.model.simulation import Reform, Scenario, apply_policies, draw_population, simulate


@pytest.fixture(scope="module")
def connecticut():
    return simulate("CT", "2013-06-01", "2014-12-31", seed=11)


def test_no_ident_check_before_activation():
    harris = simulate("48201", "2008-10-01", "2008-11-30", seed=3)
    assert harris.records.filter(
        (pl.col("channel") == "secure_communities") & (pl.col("booking_at") < dt.datetime(2008, 10, 27))
    ).is_empty()
    assert harris.records.filter(pl.col("channel") == "secure_communities").height > 0
    october = harris.county_months.filter(pl.col("month") == dt.date(2008, 10, 1)).row(0, named=True)
    november = harris.county_months.filter(pl.col("month") == dt.date(2008, 11, 1)).row(0, named=True)
    # Only Oct 27–31 of October is checked: about 5 of 31 days.
    assert 0 < october["fingerprints_checked"] < october["bookings"] * 0.3
    # All of November is checked: every booking whose prints were submitted.
    submitted = harris.scenario.parameters.value("fingerprint_submission_share")
    assert november["fingerprints_checked"] == pytest.approx(submitted * november["bookings"], rel=0.05)

    fairfield = simulate("09001", "2010-06-01", "2010-07-31", seed=3)
    checked = fairfield.records.filter(pl.col("channel") == "secure_communities")
    assert checked.get_column("booking_at").min() >= dt.datetime(2010, 6, 29)
    # New Haven County was activated later (statewide, 2012-02-22): nothing checked in 2010.
    new_haven = simulate("09009", "2010-06-01", "2010-12-31", seed=3)
    assert new_haven.total["fingerprints_checked"] == 0 and new_haven.total["ident_matches"] == 0


def test_conservation_along_the_pipeline(connecticut):
    for row in [connecticut.total, *connecticut.county_months.to_dicts()]:
        assert row["bookings"] >= row["fingerprints_checked"] >= row["ident_matches"]
        assert row["removals"] <= row["transfers_to_ice"]
        assert row["detainers_issued"] == row["detainers_honored"] + row["detainers_declined"] + row["detainers_review"]
    sc = connecticut.channels["secure_communities"]
    assert connecticut.total["ident_matches"] >= sc["detainers_issued"] >= sc["detainers_honored"]
    assert sc["transfers_to_ice"] >= sc["removals"]
    records = connecticut.records
    assert records.filter(pl.col("transferred") & ~pl.col("detainer_issued")).is_empty()
    assert records.filter(pl.col("held") & (pl.col("jail_decision") == "decline")).is_empty()
    assert records.filter(pl.col("hold_until") > pl.col("release_eligible_at") + pl.duration(days=6)).is_empty()


def test_policy_timeline_switches_on_its_effective_date(connecticut):
    decided = connecticut.records.filter(pl.col("detainer_issued"))
    before = decided.filter(pl.col("release_eligible_at") < dt.datetime(2014, 1, 1))
    after = decided.filter(pl.col("release_eligible_at").is_between(dt.datetime(2014, 1, 1), dt.datetime(2014, 12, 14)))
    assert set(before.get_column("jail_policy").unique()) <= {"us/ice-request", "ct/case-by-case-2012"}
    assert "ct/case-by-case-2012" not in set(after.get_column("jail_policy").unique())
    assert "ct/trust-act-2013" in set(after.get_column("jail_policy").unique())
    later = decided.filter(
        pl.col("release_eligible_at").is_between(dt.datetime(2014, 12, 15), dt.datetime(2019, 9, 30))
    )
    # The DOC's 2014 policy narrows the TRUST Act it works under: both in force, either can decide.
    assert "ct/doc-2014" in set(later.get_column("jail_policy").unique())
    assert set(later.get_column("jail_policy").unique()) <= {"us/ice-request", "ct/trust-act-2013", "ct/doc-2014"}


def test_a_policy_that_declines_everything_leaves_no_holds():
    result = simulate(
        "CT", "2013-06-01", "2014-12-31", seed=11, reforms=(Reform(frozenset(resolve_place("CT")), "nm/dona-ana/2014"),)
    )
    assert result.total["detainers_issued"] > 0
    assert result.total["detainers_honored"] == 0
    assert result.total["hold_hours"] == 0
    assert result.total["transfers_to_ice"] == 0
    assert result.total["us_citizens_held"] == 0


def test_a_reform_reads_the_same_draws_as_its_baseline(connecticut):
    scenario = Scenario("CT", dt.date(2013, 6, 1), dt.date(2014, 12, 31), seed=11)
    population = draw_population(scenario)
    baseline = apply_policies(population, scenario.detainer_timeline())
    reform = Scenario(
        "CT", scenario.start, scenario.end, seed=11, reforms=(Reform(frozenset(resolve_place("CT")), "us/ice-request"),)
    )
    honoring = apply_policies(population, reform.detainer_timeline())
    assert baseline.total == connecticut.total
    for name in ("bookings", "fingerprints_checked", "ident_matches", "detainers_issued"):
        assert honoring.total[name] == baseline.total[name]
    # Honoring everything holds at least everyone the historical timeline held.
    assert honoring.total["detainers_honored"] > baseline.total["detainers_honored"]
    assert honoring.records.filter(pl.col("held")).height >= baseline.records.filter(pl.col("held")).height
    held_in_baseline = baseline.records.get_column("held").to_numpy()
    assert honoring.records.get_column("held").to_numpy()[held_in_baseline].all()


def test_same_seed_same_numbers_different_seed_different_numbers():
    first = simulate("09001", "2011-01-01", "2011-12-31", seed=5)
    again = simulate("09001", "2011-01-01", "2011-12-31", seed=5)
    other = simulate("09001", "2011-01-01", "2011-12-31", seed=6)
    assert first.total == again.total
    assert first.records.equals(again.records)
    assert first.total != other.total


def test_large_draws_match_their_expectations():
    """Bookings are Poisson, submissions and IDENT matches binomial: within 5 standard deviations."""
    from securecomm.core.schema import STATUSES
    from securecomm.model.stages import bookings, ident, issuance
    from securecomm.model.stages.state import State, Streams

    parameters = load_parameters()
    segments = bookings.expected_bookings(
        bookings.county_segments(resolve_place("TX"), dt.date(2011, 1, 1), dt.date(2011, 12, 31)), parameters
    )
    expected = sum(segments.get_column(f"expected_{s}").sum() for s in STATUSES)
    state = State(tuple(resolve_place("TX")), dt.date(2011, 1, 1), dt.date(2011, 12, 31))
    rng = Streams(1)
    drawn = ident.draw_matches(bookings.draw_bookings(state, parameters, rng), parameters, rng).segments
    assert abs(drawn.get_column("bookings").sum() - expected) < 5 * np.sqrt(expected)
    activated = drawn.filter(pl.col("activated"))
    submitted = parameters.value("fingerprint_submission_share")
    booked = activated.get_column("bookings").sum()
    checked_sd = np.sqrt(booked * submitted * (1 - submitted))
    assert abs(activated.get_column("fingerprints_checked").sum() - booked * submitted) < 5 * checked_sd
    office_factor = ident.field_office_factor(issuance.field_offices_of(activated.get_column("fips")), parameters)
    for code, status in enumerate(STATUSES):
        # a booking is matched if its prints were submitted and matched a record (by the county's field office)
        probability = submitted * ident.match_probability(np.full(activated.height, code), office_factor, parameters)
        booked_by_segment = activated.get_column(f"booked_{status}").to_numpy()
        mean = (booked_by_segment * probability).sum()
        sd = np.sqrt(max((booked_by_segment * probability * (1 - probability)).sum(), 1))
        assert abs(activated.get_column(f"matched_{status}").sum() - mean) < 5 * sd


def test_simulate_cli_json_and_out(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--place",
            "09001",
            "--start",
            "2012-01-01",
            "--end",
            "2012-06-30",
            "--seed",
            "2",
            "--json",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(REPORTED) <= set(report["total"])
    assert report["seed"] == 2 and list(report["places"]) == ["09001"]
    assert pl.read_parquet(tmp_path / "county_months.parquet").height == 6
    assert pl.read_parquet(tmp_path / "records.parquet").height > 0


def test_simulate_cli_rejects_bad_input():
    runner = CliRunner()
    bad_place = runner.invoke(app, ["simulate", "--place", "XX", "--start", "2012-01-01", "--end", "2012-02-01"])
    assert bad_place.exit_code == 2 and "XX" in bad_place.stderr
    bad_policy = runner.invoke(
        app, ["simulate", "--place", "CT", "--start", "2012-01-01", "--end", "2012-02-01", "--policy", "CT=ct/nope"]
    )
    assert bad_policy.exit_code == 2 and "unknown policy" in bad_policy.stderr
    backwards = runner.invoke(app, ["simulate", "--place", "CT", "--start", "2012-02-01", "--end", "2012-01-01"])
    assert backwards.exit_code == 2 and "before the start" in backwards.stderr


def test_every_stage_keeps_the_contract():
    """One signature for every stage of the pipeline: (state, parameters, rng) -> state."""
    import inspect

    from securecomm.model.simulation import PIPELINE, POLICY_STAGES, POPULATION_STAGES

    assert PIPELINE == POPULATION_STAGES + POLICY_STAGES
    for stage in PIPELINE:
        signature = inspect.signature(stage.run)
        assert list(signature.parameters) == ["state", "parameters", "rng"], stage.label
        assert signature.return_annotation == "State", stage.label


def test_a_policy_run_reads_the_same_draws_each_time():
    """The policy stages draw from fresh streams of the seed: the same population under the same
    policies gives the same records, however many runs came before."""
    scenario = Scenario("09001", dt.date(2012, 1, 1), dt.date(2012, 6, 30), seed=3)
    population = draw_population(scenario)
    first = apply_policies(population, scenario.detainer_timeline())
    reform = Scenario(
        "09001", scenario.start, scenario.end, 3, reforms=(Reform(frozenset({"09001"}), "us/ice-request"),)
    )
    apply_policies(population, reform.detainer_timeline())
    again = apply_policies(population, scenario.detainer_timeline())
    assert first.records.equals(again.records)


def test_the_detainer_form_limits_the_hold_in_real_hours():
    """Form I-247N asks for notice only: honored, it is never held (ICE can be there at release). Form
    I-247A (from 2017-04-02) asks for at most 48 clock hours, even where the policy counts 48 business
    hours: a hold ICE does not end early lasts exactly 48 real hours, across changes of the clocks too.
    Harris County (Central time): enough held I-247As that the 48 hours before a change of the clocks hold
    some (Connecticut's, about one in such a window, left it to the draw)."""
    honor_all = (Reform(frozenset(resolve_place("48201")), "us/ice-request"),)
    result = simulate("48201", "2015-07-02", "2018-12-31", seed=4, reforms=honor_all)
    detainers = result.records.filter(pl.col("detainer_issued"))
    notices = detainers.filter(pl.col("detainer_form") == "I-247N")
    assert notices.height > 0 and (notices.get_column("jail_decision") == "honor").all()
    assert not notices.get_column("held").any() and notices.get_column("hold_until").is_null().all()
    assert (notices.get_column("hold_hours") == 0).all() and notices.get_column("transferred").any()
    two_days = detainers.filter((pl.col("detainer_form") == "I-247A") & pl.col("held"))
    assert two_days.height > 0 and two_days.get_column("hold_hours").max() <= 48
    assert (two_days.filter(~pl.col("transferred")).get_column("hold_hours") == 48).all()
    # Released in the 48 hours before clocks sprang forward (2018-03-11 02:00): the deadline is 49 hours later
    # on the wall (whether or not ICE came before it).
    spring_forward = two_days.filter(
        pl.col("release_eligible_at").is_between(dt.datetime(2018, 3, 9, 2), dt.datetime(2018, 3, 11, 2), "left")
    )
    assert spring_forward.height > 0
    assert (
        spring_forward.get_column("hold_until") - spring_forward.get_column("release_eligible_at")
        == dt.timedelta(hours=49)
    ).all()


def test_a_policy_that_excludes_minors_declines_the_simulated_minors():
    """Age at booking is drawn (BJS jail populations by age), so a policy's "no holds for youth" acts:
    under Santa Clara's policy, with the reimbursement it asks for, adults are honored and minors never."""

    reimbursed = load_parameters().replace_values({"ice_reimbursement_probability": ((None, 1.0),)}, "reimbursed")
    santa_clara = (Reform(frozenset({"06037"}), "ca/santa-clara/policy-3-54-2011"),)
    result = simulate("06037", "2012-01-01", "2012-12-31", seed=2, reforms=santa_clara, parameters=reimbursed)
    detainers = result.records.filter(pl.col("detainer_issued"))
    minors, adults = detainers.filter(pl.col("age") < 18), detainers.filter(pl.col("age") >= 18)
    assert minors.height > 0 and adults.filter(pl.col("jail_decision") == "honor").height > 0
    assert (minors.get_column("jail_decision") == "decline").all()
    assert not minors.get_column("held").any()
    ages = result.records.get_column("age")
    assert ages.null_count() == 0 and ages.min() >= 14


def test_the_policies_act_on_the_detainers_and_the_other_records_count_as_the_population_left_them():
    """Local policy acts only on the records with a detainer issued; the others are counted once per population
    for every policy applied to it. Counted again from the whole record table, every record metric is the same,
    per county and month and per channel, and a record without a detainer is never decided, held or removed."""
    scenario = Scenario("CT", dt.date(2012, 1, 1), dt.date(2012, 12, 31), 3, load_parameters())
    population = draw_population(scenario)
    record_metrics = [name for name in REPORTED if METRICS[name].source == "records"]
    for timeline in (scenario.detainer_timeline(), scenario.detainer_timeline("us/ice-request")):
        result = apply_policies(population, timeline)
        assert result.records.height == population.state.records.height
        assert result.records.get_column("record").to_list() == list(range(result.records.height))
        without = result.records.filter(~pl.col("detainer_issued"))
        assert without.height > 0 and without.get_column("jail_decision").is_null().all()
        assert not without.select(pl.any_horizontal("held", "transferred", "removed").any()).item()
        segments = population.segments.with_columns(field_arrests=pl.lit(0))
        whole = county_months(segments, result.records, scenario.end, scenario.parameters)
        assert whole.select("fips", "month", *record_metrics).equals(
            result.county_months.select("fips", "month", *record_metrics)
        )
        assert channel_totals(result.records, scenario.end, scenario.parameters) == result.channels


def test_a_state_run_alone_draws_what_it_draws_among_others():
    """Each state draws from streams of its own: Rhode Island simulated alone gives, record for record,
    Rhode Island's part of a run of New England's southern states."""
    alone = simulate("RI", "2010-06-01", "2012-06-30", seed=4)
    among = simulate("CT,RI,MA", "2010-06-01", "2012-06-30", seed=4)
    in_rhode_island = pl.col("fips").cast(pl.String).str.starts_with("44")
    assert alone.records.height > 500
    assert alone.county_months.equals(among.county_months.filter(in_rhode_island))
    # Every column but the record's number in its run (Connecticut's records come first), labels as text (a
    # run's label columns list the counties, policies and rules of the whole run).
    as_text = pl.col(pl.Enum).cast(pl.String)
    assert (
        alone.records.drop("record")
        .with_columns(as_text)
        .equals(among.records.filter(in_rhode_island).drop("record").with_columns(as_text))
    )


def test_draws_come_grouped_by_place():
    """A stream draws each place's block from that place's generator, so the keys must be grouped."""
    from securecomm.model.stages.state import PlaceKeys, PlaceStream

    with pytest.raises(ValueError, match="grouped by place"):
        PlaceKeys(np.array([9, 44, 9], dtype=np.uint8))
    both = PlaceStream(2, 5).random(PlaceKeys(np.array([9, 9, 9, 44, 44], dtype=np.uint8)))
    only_44 = PlaceStream(2, 5).random(PlaceKeys(np.array([44, 44], dtype=np.uint8)))
    assert np.array_equal(both[3:], only_44)
    assert not np.array_equal(both[:2], only_44)


@settings(max_examples=200, deadline=None)
@given(
    codes=st.lists(st.integers(0, 5), max_size=40).map(sorted),
    picks=st.lists(st.booleans(), min_size=40, max_size=40),
    counts=st.lists(st.integers(0, 3), min_size=40, max_size=40),
)
def test_place_keys_cut_and_repeated_as_blocks_are_those_of_their_rows(codes, picks, counts):
    """A subset (by mask or by ascending indexes) or a repeat of keys kept as blocks gives the blocks of the
    rows' own codes cut or repeated the same way."""
    from securecomm.model.stages.state import PlaceKeys

    row_codes = np.array(codes, dtype=np.uint8)
    keys = PlaceKeys(row_codes)
    mask = np.array(picks[: row_codes.size], dtype=bool)
    repeats = np.array(counts[: row_codes.size], dtype=np.int64)
    assert keys.subset(mask).runs() == PlaceKeys(row_codes[mask]).runs()
    assert keys.subset(np.flatnonzero(mask)).runs() == PlaceKeys(row_codes[mask]).runs()
    assert keys.repeat(repeats).runs() == PlaceKeys(np.repeat(row_codes, repeats)).runs()
    assert keys.size == row_codes.size
    counties = tuple(f"{code + 1:02d}{county:03d}" for code in range(6) for county in (1, 3))
    county_codes = np.array(sorted(2 * code + pick for code, pick in zip(codes, picks, strict=False)), dtype=np.int64)
    by_county = PlaceKeys.of_counties(county_codes, counties)
    assert by_county.runs() == PlaceKeys(np.array([int(counties[c][:2]) for c in county_codes], np.uint8)).runs()
    # Counties out of order within a state: still that state's block, its order checked row by row.
    assert PlaceKeys.of_counties(np.array([1, 0]), counties).runs() == [(1, 0, 2)]
    with pytest.raises(ValueError, match="grouped by place"):
        PlaceKeys.of_counties(np.array([2, 0]), counties)
