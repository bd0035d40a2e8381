"""Several policy runs on one population (as compare makes them): what no policy changes is made once, and
each run's numbers are those of a run on a population of its own."""

import datetime as dt

import pytest

from securecomm.core.places import resolve_place
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
