import numpy as np
import polars as pl
import pytest

from securecomm.core.schema import STATUSES, Status
from securecomm.model.parameters import load_parameters
from securecomm.model.stages.removal import (
    FIELD_OFFICE_CONVICTED,
    FIELD_OFFICE_NON_CRIMINAL,
    removal_chance,
    removal_draws,
    removals,
)
from securecomm.model.stages.state import PlaceKeys, PlaceStream


def remove(statuses, ice_level, fips, transferred, transfer_at, keys, parameters, rng):
    """One policy run's removals: the draws, then who among the transferred is removed, and when."""
    draws = removal_draws(statuses, ice_level, fips, keys, parameters, rng)
    return removals(transferred, transfer_at, draws, parameters)


@pytest.fixture(scope="module")
def parameters():
    return load_parameters(calibrated=False)


def test_level_1_records_take_their_own_chance_and_citizens_are_never_removed(parameters):
    statuses = np.arange(len(STATUSES)).repeat(2)
    level_1 = np.tile([True, False], len(STATUSES))
    offices = pl.Series(["HOU"] * statuses.size)
    chance = removal_chance(statuses, level_1, ~level_1, offices, parameters)
    by_status = parameters.value("removal_probability")
    level_1_chance = parameters.value("level_1_removal_probability")
    for index, status in enumerate(STATUSES):
        with_level_1, without = chance[2 * index], chance[2 * index + 1]
        assert without == by_status[status]
        assert with_level_1 == (level_1_chance if by_status[status] > 0 else 0.0), status
    assert level_1_chance > max(by_status.values())  # mandatory detention, no cancellation: removed more often


def test_only_the_transferred_are_removed_after_their_transfer(parameters):
    rng = np.random.default_rng(7)
    count = 20_000
    statuses = rng.integers(0, len(STATUSES), count)
    ice_level = pl.Series(np.where(rng.random(count) < 0.3, "level_1", "level_3"))
    fips = pl.Series(["48201"] * count)
    transferred = rng.random(count) < 0.6
    transfer_at = np.datetime64("2011-01-01T00:00", "us") + rng.integers(0, 10**6, count).astype("timedelta64[m]")
    keys = PlaceKeys.one_place(count)
    removed, removal_at = remove(
        statuses, ice_level, fips, transferred, transfer_at, keys, parameters, PlaceStream(7, 0)
    )
    assert not removed[~transferred].any()
    assert not removed[statuses >= Status.NATURALIZED].any()  # naturalized and native-born citizens
    assert (removal_at[removed] >= transfer_at[removed]).all() and np.isnat(removal_at[~removed]).all()
    unauthorized = transferred & (statuses == Status.UNAUTHORIZED)
    level_1 = (ice_level == "level_1").to_numpy()
    for flag, expected in (
        (True, parameters.value("level_1_removal_probability")),
        (False, parameters.value("removal_probability")["unauthorized"]),
    ):
        group = unauthorized & (level_1 == flag)
        assert removed[group].mean() == pytest.approx(expected, abs=0.03)


def test_a_field_office_removes_its_convicted_and_non_criminal_by_its_own_factors(parameters):
    """Issue 16: whom an ICE field office removes. Boston's factors (0.5 for the convicted, 1.4 for those
    without a conviction) move Suffolk County's chances and leave Harris County's (Houston's office) as
    the nation's; a chance above 1 is kept at 1."""
    factors = {
        FIELD_OFFICE_CONVICTED: {**parameters.value(FIELD_OFFICE_CONVICTED), "BOS": 0.5},
        FIELD_OFFICE_NON_CRIMINAL: {**parameters.value(FIELD_OFFICE_NON_CRIMINAL), "BOS": 1.4},
    }
    moved = parameters.replace_values({name: ((None, value),) for name, value in factors.items()}, "Boston")
    count = 40_000
    statuses = np.full(count, int(Status.UNAUTHORIZED))
    ice_level = pl.Series(
        ["level_2", "non_criminal", "level_1", "level_2", "non_criminal", "level_1"] * (count // 6 + 1)
    )[:count]
    fips = pl.Series((["25025"] * 3 + ["48201"] * 3) * (count // 6 + 1))[:count]
    transferred = np.ones(count, dtype=bool)
    transfer_at = np.full(count, np.datetime64("2011-01-01T00:00", "us"))
    keys = PlaceKeys.one_place(count)
    removed, _ = remove(statuses, ice_level, fips, transferred, transfer_at, keys, moved, PlaceStream(11, 0))
    nation = parameters.value("removal_probability")["unauthorized"]
    level_1 = parameters.value("level_1_removal_probability")
    expected = [0.5 * nation, min(1.4 * nation, 1.0), 0.5 * level_1, nation, nation, level_1]
    for position, chance in enumerate(expected):
        assert removed[position::6].mean() == pytest.approx(chance, abs=0.02), position
    assert removed[2::6].mean() < removed[5::6].mean()


def _transferred_at_once(count: int) -> tuple[np.ndarray, pl.Series, pl.Series, np.ndarray, np.ndarray, PlaceKeys]:
    statuses = np.full(count, int(Status.UNAUTHORIZED))
    ice_level = pl.Series(["level_2", "non_criminal"] * (count // 2))
    fips = pl.Series(["48201"] * count)
    transfer_at = np.full(count, np.datetime64("2011-01-01T00:00", "us"))
    return statuses, ice_level, fips, np.ones(count, dtype=bool), transfer_at, PlaceKeys.one_place(count)


def test_a_removal_after_a_hearing_takes_months_and_one_without_takes_days(parameters):
    """Issue 16, "Time": the immigration_hearing_share of the removed (Warren Institute, 52%) wait for a
    judge's order (TRAC: 140 days on average), the others are removed within days; the lags are the two
    lognormals of removal_lag_days."""
    count = 60_000
    removed, removal_at = remove(*_transferred_at_once(count), parameters, PlaceStream(5, 0))
    days = (removal_at[removed] - np.datetime64("2011-01-01T00:00", "us")) / np.timedelta64(1, "D")
    lag = parameters.value("removal_lag_days")
    share = parameters.value("immigration_hearing_share")
    slow = days > 45  # few without a hearing (7-day median), few with one (100-day median) take that long
    assert slow.mean() == pytest.approx(
        share * (1 - _lognormal_cdf(45, lag["with_hearing"]))
        + (1 - share) * (1 - _lognormal_cdf(45, lag["without_hearing"])),
        abs=0.01,
    )
    assert np.median(days[slow]) > 60 and np.median(days[~slow]) < 15
    assert days.max() <= lag["with_hearing"]["max"]


def _lognormal_cdf(days: float, lognormal: dict[str, float]) -> float:
    from math import erf, log, sqrt

    return 0.5 * (1 + erf(log(days / lognormal["median"]) / (lognormal["sigma"] * sqrt(2))))


def test_the_hearing_share_moves_the_dates_of_removal_and_not_who_is_removed(parameters):
    """Whether a removal went before a judge takes no draw of its own (the removal draw, below the chance,
    is uniform again): a larger hearing share removes the same people, later."""
    count = 20_000
    inputs = _transferred_at_once(count)
    more = parameters.replace_values({"immigration_hearing_share": ((None, 0.9),)}, "more hearings")
    removed, removal_at = remove(*inputs, parameters, PlaceStream(9, 0))
    removed_more, removal_at_more = remove(*inputs, more, PlaceStream(9, 0))
    assert (removed == removed_more).all()
    assert (removal_at_more[removed] >= removal_at[removed]).all()
    late = np.datetime64("2011-03-01T00:00", "us")
    assert (removal_at_more[removed] < late).sum() < 0.6 * (removal_at[removed] < late).sum()
