import shutil
import textwrap

import numpy as np
import pytest

from securecomm.model.parameters import (
    SPEC,
    ParameterError,
    load_parameter_files,
    load_parameters,
    parameters_root,
)


def test_every_parameter_has_a_source_or_is_a_labelled_assumption():
    parameters = load_parameters()
    assert set(parameters.by_name) == set(SPEC)
    for parameter in parameters.by_name.values():
        assert parameter.references or (parameter.assumption and parameter.rationale), parameter.name
        assert parameter.description and parameter.unit


def test_calibrated_parameters_are_marked():
    calibrated = {name for name, parameter in load_parameters().by_name.items() if parameter.calibrate}
    assert {"noncitizen_booking_ratio", "ident_record_probability", "issuance_eras"} <= calibrated


def test_samples_stay_valid():
    parameters = load_parameters()
    rng = np.random.default_rng(0)
    for draw in range(20):
        sample = parameters.sample(rng, f"draw {draw}")
        for name in (name for name, parameter in parameters.by_name.items() if parameter.fraction):
            for _, value in sample[name].dated_values:
                leaves = list(_leaves(value))
                assert all(0 <= leaf <= 1 for leaf in leaves), name
        for name in (name for name, parameter in parameters.by_name.items() if parameter.distribution):
            for _, value in sample[name].dated_values:
                for shares in _distributions(value):
                    assert abs(sum(shares.values()) - 1) < 1e-9, name
    assert sample.value("noncitizen_booking_ratio") != parameters.value("noncitizen_booking_ratio")


def _leaves(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            if key != "classification":
                yield from _leaves(inner)
    else:
        yield value


def _distributions(value):
    if isinstance(value, dict) and all(isinstance(v, int | float) for v in value.values()):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _distributions(inner)


def test_dated_values_apply_from_their_date():
    parameters = load_parameters()
    pickup = parameters["ice_pickup_probability"]
    days = np.array(["2009-06-01", "2013-06-01"], dtype="datetime64[D]")
    assert list(parameters.by_day("ice_pickup_probability", days)) == [pickup.at(d.astype(object)) for d in days]


@pytest.fixture
def copy_of_parameters(tmp_path):
    target = tmp_path / "parameters"
    shutil.copytree(parameters_root(), target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


@pytest.mark.parametrize(
    ("file", "text", "message"),
    [
        (
            "cost.yaml",
            "jail_daily_cost_usd:\n  description: x\n  unit: USD per person-day\n  value: -3\n  uncertainty: {relative: 0.1}\n  assumption: true\n  rationale: test\n",
            "must be a number ≥ 0",
        ),
        (
            "cost.yaml",
            "jail_daily_cost_usd:\n  description: x\n  unit: USD per person-day\n  value: 80\n  uncertainty: {relative: 0.1}\n",
            "needs 'references'",
        ),
        (
            "cost.yaml",
            "jail_daily_cost_usd:\n  description: x\n  unit: USD per person-day\n  value: 80\n  valeu: 3\n  uncertainty: {relative: 0.1}\n  assumption: true\n  rationale: t\n",
            "unknown key 'valeu'",
        ),
        (
            "cost.yaml",
            "jail_daily_cost_usd:\n  description: x\n  unit: USD per person-day\n  value: 80\n  uncertainty: {low: 90, high: 100}\n  assumption: true\n  rationale: t\n",
            "containing the value",
        ),
        ("cost.yaml", "jail_cost:\n  description: x\n", "unknown parameter 'jail_cost'"),
    ],
)
def test_malformed_parameters_are_named(copy_of_parameters, file, text, message):
    (copy_of_parameters / file).write_text(textwrap.dedent(text))
    with pytest.raises(ParameterError, match=message):
        load_parameter_files(copy_of_parameters)


def test_a_distribution_must_sum_to_one(copy_of_parameters):
    path = copy_of_parameters / "bookings.yaml"
    text = path.read_text()
    assert "unauthorized: 0.54" in text
    path.write_text(text.replace("unauthorized: 0.54", "unauthorized: 0.64"))
    with pytest.raises(
        ParameterError, match=r"bookings.yaml, line \d+: parameter 'noncitizen_status_mix': shares must sum to 1"
    ):
        load_parameter_files(copy_of_parameters)


def test_shapes_come_from_the_unit_and_breakdown(copy_of_parameters):
    parameters = load_parameters(calibrated=False)
    assert parameters["noncitizen_status_mix"].distribution and parameters["noncitizen_status_mix"].fraction
    assert parameters["pickup_share_of_hold"].fraction and not parameters["pickup_share_of_hold"].distribution
    assert not parameters["noncitizen_booking_ratio"].fraction
    path = copy_of_parameters / "removal.yaml"
    text = path.read_text()
    path.write_text(text.replace("  breakdown: [immigration_hearing, lognormal]\n", "", 1))
    with pytest.raises(
        ParameterError,
        match=r"removal.yaml, line \d+: .*broken down by \['immigration_hearing', 'lognormal'\], not \[\]",
    ):
        load_parameter_files(copy_of_parameters)
    path.write_text(text.replace("unit: days", "unit: fortnights", 1))
    with pytest.raises(ParameterError, match="unknown unit 'fortnights'"):
        load_parameter_files(copy_of_parameters)


def test_one_bounds_method_for_sampling_and_calibration():
    parameters = load_parameters(calibrated=False)
    relative = parameters["ident_record_probability"].bounds()
    assert relative.relative and relative.multipliers() == (relative.low, relative.high)
    absolute = parameters["noncitizen_booking_ratio"].bounds()
    value = parameters.value("noncitizen_booking_ratio")
    assert not absolute.relative
    assert absolute.multipliers() == pytest.approx((absolute.low / value, absolute.high / value))
