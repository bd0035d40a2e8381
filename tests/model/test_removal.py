import numpy as np
import pytest

from securecomm.core.schema import STATUSES, Status
from securecomm.model.parameters import load_parameters
from securecomm.model.stages.removal import removal_chance, remove
from securecomm.model.stages.state import PlaceKeys, PlaceStream


@pytest.fixture(scope="module")
def parameters():
    return load_parameters(calibrated=False)


def test_level_1_records_take_their_own_chance_and_citizens_are_never_removed(parameters):
    statuses = np.arange(len(STATUSES)).repeat(2)
    level_1 = np.tile([True, False], len(STATUSES))
    chance = removal_chance(statuses, level_1, parameters)
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
    level_1 = rng.random(count) < 0.3
    transferred = rng.random(count) < 0.6
    transfer_at = np.datetime64("2011-01-01T00:00", "us") + rng.integers(0, 10**6, count).astype("timedelta64[m]")
    keys = PlaceKeys.one_place(count)
    removed, removal_at = remove(statuses, level_1, transferred, transfer_at, keys, parameters, PlaceStream(7, 0))
    assert not removed[~transferred].any()
    assert not removed[statuses >= Status.NATURALIZED].any()  # naturalized and native-born citizens
    assert (removal_at[removed] >= transfer_at[removed]).all() and np.isnat(removal_at[~removed]).all()
    unauthorized = transferred & (statuses == Status.UNAUTHORIZED)
    for flag, expected in (
        (True, parameters.value("level_1_removal_probability")),
        (False, parameters.value("removal_probability")["unauthorized"]),
    ):
        group = unauthorized & (level_1 == flag)
        assert removed[group].mean() == pytest.approx(expected, abs=0.03)


def test_a_current_charge_convicted_before_removal_sets_the_level_at_removal(parameters):
    """Issue 16: ICE counts a removal at the record at removal. A removed person without a conviction
    whose felony (misdemeanor) charge ended in a conviction counts at Level 2 (Level 3), with the
    parameter's chance; records with a level, those not removed and infractions keep theirs."""
    import polars as pl

    from securecomm.model.stages.removal import CONVICTED_BEFORE_REMOVAL, level_at_removal

    count = 40_000
    ice_level = pl.Series(["non_criminal", "non_criminal", "non_criminal", "level_3"] * (count // 4))
    charge = pl.Series(["felony", "misdemeanor", "infraction", "felony"] * (count // 4))
    removed = np.tile([True, True, True, True, False, False, False, False], count // 8)
    keys = PlaceKeys.one_place(count)
    levels = level_at_removal(ice_level, charge, removed, keys, parameters, PlaceStream(3, 0)).to_numpy()
    chance = parameters.value(CONVICTED_BEFORE_REMOVAL)
    assert set(levels[0::8]) == {"level_2", "non_criminal"} and set(levels[1::8]) == {"level_3", "non_criminal"}
    assert np.mean(levels[0::8] == "level_2") == pytest.approx(chance, abs=0.02)
    assert set(levels[2::8]) == {"non_criminal"} and set(levels[3::8]) == {"level_3"}
    assert set(levels[4::8]) == set(levels[5::8]) == set(levels[6::8]) == {"non_criminal"}
