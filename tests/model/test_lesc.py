import shutil

import numpy as np
import polars as pl
import pytest

from securecomm.core import schema
from securecomm.core.schema import Status
from securecomm.model.parameters import ParameterError, load_parameter_files, load_parameters, parameters_root
from securecomm.model.stages.lesc import AGGRAVATED_SHARE, CONVICTED_BEFORE_REMOVAL, level_at_removal, removable_chance
from securecomm.model.stages.state import PlaceKeys, PlaceStream


@pytest.fixture(scope="module")
def parameters():
    return load_parameters(calibrated=False)


def test_a_permanent_resident_is_removable_on_a_conviction(parameters):
    """INA § 237(a)(2): the grounds that reach a lawful permanent resident are convictions."""
    count = 40_000
    lpr = np.full(count, Status.LAWFUL_PERMANENT_RESIDENT)
    convictions = np.repeat([0, 2], count // 2)
    removable = np.random.default_rng(3).random(count) < removable_chance(lpr, convictions, parameters)
    chances = parameters.value("lesc_removable_probability")["lawful_permanent_resident"]
    assert removable[convictions > 0].mean() == pytest.approx(chances["with_known_conviction"], abs=0.02)
    assert removable[convictions == 0].mean() == pytest.approx(chances["without_known_conviction"], abs=0.01)
    # the unauthorized are removable whatever their record
    unauthorized = np.full(count, Status.UNAUTHORIZED)
    by_record = np.random.default_rng(3).random(count) < removable_chance(unauthorized, convictions, parameters)
    assert by_record[convictions == 0].mean() == pytest.approx(by_record[convictions > 0].mean(), abs=0.02)


def test_the_permanent_resident_entry_must_be_split_by_record(tmp_path):
    target = tmp_path / "parameters"
    shutil.copytree(parameters_root(), target, ignore=shutil.ignore_patterns("*.py", "__pycache__", "calibrated"))
    lesc = target / "lesc.yaml"
    text = lesc.read_text()
    split = "    lawful_permanent_resident:\n      with_known_conviction: 0.75\n      without_known_conviction: 0.03\n"
    assert split in text
    lesc.write_text(text.replace(split, "    lawful_permanent_resident: 0.35\n"))
    with pytest.raises(ParameterError, match="lawful_permanent_resident: must map exactly with_known_conviction"):
        load_parameter_files(target)


def test_a_current_charge_convicted_before_removal_is_added_to_the_level_at_removal(parameters):
    """Issue 16: ICE counts a removal at the record at removal, by the SC offense levels. A current felony
    convicted before removal makes two felonies (Level 1) on a record that shows one, an aggravated felony
    (Level 1) at the aggravated-felony share, else Level 2; a current misdemeanor makes a record without a
    conviction Level 3. Level 1 records, infractions and rows that are not candidates keep their level."""
    cases = [  # (level at the match, current charge, the record shows a felony, candidate)
        ("non_criminal", "felony", False, True),
        ("non_criminal", "misdemeanor", False, True),
        ("non_criminal", "infraction", False, True),
        ("level_3", "felony", False, True),
        ("level_3", "misdemeanor", False, True),
        ("level_2", "felony", True, True),
        ("level_1", "felony", True, True),
        ("non_criminal", "felony", False, False),
    ]
    repeat = 5_000
    # As the stage gives them: Enums of the classification's labels and of the offense levels.
    labels = pl.Enum(["level_1", "level_2", "level_3", "non_criminal", "review"])
    ice_level = pl.Series([case[0] for case in cases] * repeat, dtype=labels)
    charge = pl.Series([case[1] for case in cases] * repeat, dtype=pl.Enum(schema.LEVELS))
    known_felony = np.tile([case[2] for case in cases], repeat)
    candidates = np.tile([case[3] for case in cases], repeat)
    keys = PlaceKeys.one_place(ice_level.len())
    levels = level_at_removal(ice_level, charge, known_felony, candidates, keys, parameters, PlaceStream(3, 0))
    levels = levels.to_numpy().reshape(repeat, len(cases))
    convicted, aggravated = parameters.value(CONVICTED_BEFORE_REMOVAL), parameters.value(AGGRAVATED_SHARE)

    def share(column: int, label: str) -> float:
        return float(np.mean(levels[:, column] == label))

    assert set(levels[:, 0]) == {"non_criminal", "level_2", "level_1"}
    assert share(0, "level_1") == pytest.approx(convicted * aggravated, abs=0.02)
    assert share(0, "level_2") == pytest.approx(convicted * (1 - aggravated), abs=0.02)
    assert set(levels[:, 1]) == {"non_criminal", "level_3"} and share(1, "level_3") == pytest.approx(
        convicted, abs=0.02
    )
    assert set(levels[:, 2]) == {"non_criminal"}
    assert share(3, "level_1") == pytest.approx(convicted * aggravated, abs=0.02)
    assert share(3, "level_2") == pytest.approx(convicted * (1 - aggravated), abs=0.02)
    assert set(levels[:, 4]) == {"level_3"}
    assert set(levels[:, 5]) == {"level_2", "level_1"} and share(5, "level_1") == pytest.approx(convicted, abs=0.02)
    assert set(levels[:, 6]) == {"level_1"} and set(levels[:, 7]) == {"non_criminal"}
