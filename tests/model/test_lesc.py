import shutil

import numpy as np
import pytest

from securecomm.core.schema import Status
from securecomm.model.parameters import ParameterError, load_parameter_files, load_parameters, parameters_root
from securecomm.model.stages.lesc import removable_chance


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
