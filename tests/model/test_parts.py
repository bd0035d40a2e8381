"""A run in parts of whole states (`simulate(workers=...)`): each state draws from its own random streams,
so the parts, run in threads of their own and put together, give the run in one thread, record for
record."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from securecomm.cli import app
from securecomm.core.places import population, resolve_place
from securecomm.law.loader import UnknownPolicyError
from securecomm.model.simulation import NONCITIZENS_PER_COUNTY_OF_WORK, Participation, Reform, simulate, state_parts
from securecomm.model.stages.effects import select as select_effects

# New England and New York: several states, a state policy (Connecticut's), a county ordinance (New York
# City's), a participation reform and every community effect.
PLACE = "CT,RI,MA,NY,VT"
REFORM = Reform(frozenset(resolve_place("RI")), "ct/trust-act-2013")
PARTICIPATION = Participation.parse("MA=never@2012-01-01")


def _runs(workers: int):
    return simulate(
        PLACE,
        "2011-06-01",
        "2013-05-31",
        seed=4,
        reforms=(REFORM,),
        participation=(PARTICIPATION,),
        effects=select_effects(True, "all"),
        workers=workers,
    )


@pytest.fixture(scope="module")
def in_one_process():
    return _runs(1)


def test_a_run_in_parts_is_the_run_in_one_process(in_one_process) -> None:
    in_parts = _runs(2)
    assert len(state_parts(resolve_place(PLACE), 2, 2011)) == 2
    assert in_parts.to_dict() == in_one_process.to_dict()
    assert_frame_equal(in_parts.county_months, in_one_process.county_months)
    assert_frame_equal(in_parts.records, in_one_process.records)
    assert_frame_equal(in_parts.issued_records, in_one_process.issued_records)
    assert_frame_equal(in_parts.effects, in_one_process.effects)


def test_parts_are_whole_states_in_fips_order_of_about_equal_work() -> None:
    counties = resolve_place("US")
    for workers, within in ((2, 0.01), (3, 0.06)):
        parts = state_parts(counties, workers, 2008)
        assert len(parts) == workers
        assert [fips for part in parts for fips in part] == counties
        assert all(before[-1][:2] != after[0][:2] for before, after in itertools.pairwise(parts)), "a state is cut"
        # A part's work: its noncitizens' records and its counties' months. Cut by noncitizens alone, the
        # nation's two parts were 0.473 and 0.527 of it.
        work = [
            population(part, 2008, clamp_year=True).get_column("noncitizen_population").sum()
            + NONCITIZENS_PER_COUNTY_OF_WORK * len(part)
            for part in parts
        ]
        shares = np.array(work) / sum(work)
        # Equal parts, within a state's grain (California is a quarter of the nation's noncitizens).
        assert np.abs(shares - 1 / workers).max() < within, shares


def test_one_state_or_one_worker_is_one_part() -> None:
    assert state_parts(resolve_place("TX"), 4, 2012) == [resolve_place("TX")]
    assert state_parts(resolve_place("CT,NY"), 1, 2012) == [resolve_place("CT,NY")]
    # Never more parts than states.
    assert len(state_parts(resolve_place("CT,NY"), 8, 2012)) == 2
    with pytest.raises(ValueError, match="workers must be at least 1"):
        state_parts(resolve_place("CT"), 0, 2012)


def test_the_first_part_reports_its_stages() -> None:
    stages: list[str] = []
    simulate("CT,RI", "2012-01-01", "2012-03-31", seed=2, workers=2, progress=stages.append)
    one: list[str] = []
    simulate("CT", "2012-01-01", "2012-03-31", seed=2, progress=one.append)
    assert stages == one


def test_simulate_command_takes_workers(tmp_path: Path) -> None:
    arguments = [
        "simulate",
        "--place",
        "CT,RI",
        "--start",
        "2012-01-01",
        "--end",
        "2012-06-30",
        "--seed",
        "3",
        "--json",
    ]
    one, two = (CliRunner().invoke(app, [*arguments, "--workers", str(workers)]) for workers in (1, 2))
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    assert json.loads(one.stdout) == json.loads(two.stdout)
    refused = CliRunner().invoke(app, [*arguments, "--workers", "0"])
    assert refused.exit_code != 0 and "workers" in refused.output


def test_a_part_that_fails_fails_the_run() -> None:
    # Rhode Island's part (the second) fails: its error is the run's.
    unknown = Reform(frozenset(resolve_place("RI")), "xx/no-such-policy")
    with pytest.raises(UnknownPolicyError, match="no-such-policy"):
        simulate("CT,RI", "2012-01-01", "2012-03-31", seed=2, reforms=(unknown,), workers=2)
