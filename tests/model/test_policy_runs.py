"""Several policy runs on one population (as compare makes them): what no policy changes is made once, and
each run's numbers are those of a run on a population of its own."""

import datetime as dt

import numpy as np
import polars as pl
import pytest

from securecomm.core.places import resolve_place
from securecomm.law import holdclock
from securecomm.model.metrics import county_sums
from securecomm.model.simulation import Reform, Scenario, apply_policies, draw_population
from securecomm.model.stages import removal
from securecomm.model.stages.jail import covered_positions

START, END = dt.date(2013, 6, 1), dt.date(2014, 12, 31)


def _honoring(scenario: Scenario) -> Scenario:
    return Scenario(
        "CT", START, END, scenario.seed, reforms=(Reform(frozenset(resolve_place("CT")), "us/ice-request"),)
    )


def test_the_removal_draws_are_made_once_for_every_policy_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chance of removal and its draws do not depend on the policy: made for the first run on a
    population, read by the next; each run removes whom a run on a fresh population removes."""
    scenario = Scenario("CT", START, END, seed=11)
    alone = [
        apply_policies(draw_population(chosen), chosen.detainer_timeline()).issued_records
        for chosen in (scenario, _honoring(scenario))
    ]
    made, original = [], removal.removal_draws
    monkeypatch.setattr(removal, "removal_draws", lambda *args: made.append(args) or original(*args))
    population = draw_population(scenario)
    together = [
        apply_policies(population, chosen.detainer_timeline()).issued_records
        for chosen in (scenario, _honoring(scenario))
    ]
    assert len(made) == 1
    for run, fresh in zip(together, alone, strict=True):
        assert run.select("removed", "removal_at").equals(fresh.select("removed", "removal_at"))
    assert together[1].get_column("removed").sum() > together[0].get_column("removed").sum()


def test_an_entry_covers_the_positions_of_its_counties_in_the_place() -> None:
    """A timeline entry's counties as positions among the place's (ascending, those outside the place left
    out), kept read-only for the next policy run."""
    place = ("09001", "09003", "09005", "09007")
    covered = covered_positions(frozenset({"09007", "09001", "36061"}), place)
    assert covered.tolist() == [0, 3]
    assert covered_positions(frozenset({"09007", "09001", "36061"}), place) is covered
    with pytest.raises(ValueError):
        covered[0] = 1
    assert covered_positions(frozenset({"36061"}), place).size == 0


def test_county_sums_are_those_of_a_group_by_float_for_float() -> None:
    """What a replication sends per county: the sums Polars' group_by makes, to the last bit of every float
    (counties of one to thirteen months, some left out), integers in their own type."""
    rng = np.random.default_rng(5)
    months = rng.integers(1, 14, 800)
    rows = int(months.sum())
    table = pl.DataFrame(
        {
            "fips": pl.Series([f"{county:05d}" for county in np.repeat(np.arange(months.size), months)]).set_sorted(),
            "month": pl.Series(np.zeros(rows, dtype="datetime64[D]")),
            "hours": rng.lognormal(3, 3, rows) * (rng.random(rows) < 0.7),
            "removals": pl.Series(rng.integers(0, 50, rows), dtype=pl.UInt32),
        }
    )
    grouped = table.group_by("fips").agg(pl.col("hours", "removals").sum()).sort("fips")
    summed = county_sums(table)
    assert summed.schema == grouped.schema
    assert summed.get_column("hours").to_numpy().tobytes() == grouped.get_column("hours").to_numpy().tobytes()
    assert summed.equals(grouped)
    with pytest.raises(ValueError, match="sorted by county"):
        county_sums(table.reverse())


def test_runs_over_nearby_years_read_one_table_of_a_zones_offsets() -> None:
    """The hold clock reads a zone's offsets over whole decades: times of 2012 and of 2013-2015 (two
    replications' releases) share one table, and read as a table over their own years alone reads them
    (the spring-forward gap and the fall-back repeat included)."""
    zone = "America/Chicago"
    holdclock._offsets.cache_clear()
    walls = [
        np.array(["2012-03-11T02:30", "2012-11-04T01:30", "2012-07-01T12:00"], dtype="datetime64[us]"),
        np.array(["2013-03-10T02:30", "2015-11-01T01:30", "NaT"], dtype="datetime64[us]"),
    ]
    for wall, (first, last) in zip(walls, ((2011, 2013), (2012, 2016)), strict=True):
        utc = holdclock.utc_of_wall(wall, zone)
        starts, offsets = holdclock._offsets.__wrapped__(zone, first, last)
        known = ~np.isnat(wall)
        expected = holdclock._utc_microseconds(wall[known].astype(np.int64), starts, offsets)
        assert (utc[known].astype(np.int64) == expected).all() and np.isnat(utc[~known]).all()
    assert holdclock._offsets.cache_info().currsize == 1


def test_values_kept_for_every_case_are_given_as_they_are_kept_and_read_only() -> None:
    from securecomm.core.cases import CaseTables
    from securecomm.model.stages.state import CaseSubsets

    records = pl.DataFrame({"row": np.arange(4, dtype=np.uint32)})
    empty = pl.DataFrame({"row": np.zeros(0, dtype=np.uint32)})
    cases = CaseSubsets(CaseTables(records, empty, empty))
    computed: list[np.ndarray] = []

    def compute(rows: np.ndarray) -> tuple[np.ndarray, ...]:
        computed.append(rows)
        return (rows * 10,)

    (every,) = cases.filled("tens", np.arange(4), compute)
    (again,) = cases.filled("tens", np.arange(4), compute)
    (some,) = cases.filled("tens", np.array([1, 3]), compute)
    assert len(computed) == 1 and every.tolist() == again.tolist() == [0, 10, 20, 30] and some.tolist() == [10, 30]
    assert np.shares_memory(every, again) and not every.flags.writeable  # no copy, and nobody writes into the cache
    with pytest.raises(ValueError, match="read-only"):
        every[0] = 1
