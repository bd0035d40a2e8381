import datetime as dt
import json
from dataclasses import replace

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from securecomm.calibration import fit as cal
from securecomm.calibration import overlay as written
from securecomm.calibration import surrogate as reweighting
from securecomm.calibration.targets import TARGET_COLUMNS, evaluate_targets, parse_targets
from securecomm.calibration.validate import held_out_figures, median_count_error
from securecomm.cli import app
from securecomm.model.parameters import ParameterError, apply_overlay, load_parameters

HEADER = ",".join(TARGET_COLUMNS)
PLACE, START, END = "AZ", "2010-01-01", "2012-12-31"


def targets_csv(rows):
    lines = [
        f"{id},fit,{metric},{channel},{PLACE},,{start},{end},1,approx,0.05,relative,,synthetic,https://example.org,"
        for id, metric, channel, start, end in rows
    ]
    return parse_targets("\n".join([HEADER, *lines]))


SYNTHETIC = [
    ("matches", "ident_matches", "secure_communities", START, END),
    ("matches_2010", "ident_matches", "secure_communities", START, "2010-12-31"),
    ("detainers_levels", "detainers_issued", "secure_communities", START, "2011-06-16"),
    ("detainers_discretion", "detainers_issued", "secure_communities", "2011-06-17", "2012-12-20"),
    ("transfers_2010", "transfers_to_ice", "secure_communities", START, "2010-12-31"),
    ("transfers_2011", "transfers_to_ice", "secure_communities", "2011-01-01", "2011-12-31"),
    ("transfers_2012", "transfers_to_ice", "secure_communities", "2012-01-01", END),
    ("removals", "removals", "secure_communities", START, END),
    ("removals_2012", "removals", "secure_communities", "2012-01-01", END),
]
SPECS = [
    {"parameter": "ident_record_probability"},
    {"parameter": "issuance_eras", "each_date": True},
    {"parameter": "ice_pickup_probability", "each_date": True},
    {"parameter": "removal_probability"},
]
TRUTH = {
    "ident_record_probability": 0.85,
    "issuance_eras@2009-10-01": 0.80,
    "issuance_eras@2011-06-17": 0.85,
    "ice_pickup_probability@2010-01-01": 0.90,
    "ice_pickup_probability@2011-01-01": 1.10,
    "removal_probability": 1.20,
}


@pytest.fixture(scope="module")
def sources():
    return load_parameters(calibrated=False)


@pytest.fixture(scope="module")
def dims(sources):
    targets = targets_csv(SYNTHETIC)
    start, end = targets[0].start, targets[0].end
    return cal.dimensions(sources, SPECS, start, end, require_all=False)


def test_dimensions_follow_the_uncertainty_ranges(sources, dims):
    names = [d.name for d in dims]
    # the first issuance era and the 2009 pickup value end before the period, the 2013 pickup
    # value starts after it, PEP is later still
    assert names == [
        "ident_record_probability",
        "issuance_eras@2009-10-01",
        "issuance_eras@2011-06-17",
        "issuance_eras@2012-12-21",
        "ice_pickup_probability@2010-01-01",
        "ice_pickup_probability@2011-01-01",
        "ice_pickup_probability@2012-01-01",
        "removal_probability",
    ]
    ident = dims[0]
    assert (ident.low, ident.high) == pytest.approx((0.65, 1.35))
    # a label of the SC offense levels: only the eras that classify by them get a multiplier
    level_1 = cal.dimensions(
        sources, [{"parameter": "issuance_eras", "keys": ["level_1"], "each_date": True}], *_period(), require_all=False
    )
    assert [d.name for d in level_1] == ["issuance_eras[level_1]@2009-10-01", "issuance_eras[level_1]@2011-06-17"]
    with pytest.raises(cal.CalibrationError, match="not marked"):
        cal.dimensions(sources, [{"parameter": "jail_daily_cost_usd"}], dims[0].low, dims[0].high)
    with pytest.raises(cal.CalibrationError, match="without a dimension"):
        cal.dimensions(sources, SPECS, *_period())


def _period():
    targets = targets_csv(SYNTHETIC)
    return targets[0].start, targets[0].end


def test_multipliers_scale_clip_and_move_absolute_ranges(sources):
    dims = cal.dimensions(
        sources,
        [
            {"parameter": "issuance_eras", "each_date": True, "keys": ["non_criminal"]},
            {"parameter": "noncitizen_booking_ratio"},
        ],
        *_period(),
        require_all=False,
    )
    # non_criminal is a label of the two offense-levels eras in the period, not of the Dec 2012 guidance
    assert [d.name for d in dims][:2] == [
        "issuance_eras[non_criminal]@2009-10-01",
        "issuance_eras[non_criminal]@2011-06-17",
    ]
    changed = cal.apply_multipliers(sources, dims, [1.3, 1.3, 1.2], "test")
    era = changed["issuance_eras"].dated_values[1][1]["probability"]
    source_era = sources["issuance_eras"].dated_values[1][1]["probability"]
    assert era["non_criminal"] == pytest.approx(min(source_era["non_criminal"] * 1.3, 1.0))
    assert era["level_1"] == source_era["level_1"]  # other labels untouched
    for outside in (0, -1):  # the first era ends before the period, PEP starts after it
        assert changed["issuance_eras"].dated_values[outside] == sources["issuance_eras"].dated_values[outside]
    ratio = sources["noncitizen_booking_ratio"]
    assert changed.value("noncitizen_booking_ratio") == pytest.approx(ratio.value * 1.2)
    assert changed["noncitizen_booking_ratio"].uncertainty == pytest.approx(
        {"low": ratio.uncertainty["low"] * 1.2, "high": ratio.uncertainty["high"] * 1.2}
    )


def test_the_reweighted_population_gives_the_simulated_expectations(sources):
    targets = targets_csv(
        [
            *SYNTHETIC,
            ("detainers_all", "detainers_issued", "all", START, END),
            ("removals_level1", "removals_level1", "secure_communities", START, END),
        ]
    )
    segments, records, simulated = cal._simulate(reweighting.saturated(sources), PLACE, *_period(), seed=5)
    surrogate = reweighting.Surrogate.build(sources, segments, records, targets, simulated)
    expected = surrogate.values(sources)
    plain = evaluate_targets(targets, *cal._simulate(sources, PLACE, *_period(), seed=5))
    for target in targets:
        assert expected[target.id] == pytest.approx(plain[target.id], rel=0.05), target.id
    # Removal enters linearly, except for records Level 1 at the match, whose chance is their own (Level 1
    # removals also count records a current felony made Level 1 at removal, whose chance moves); a 10%
    # lower IDENT match rate removes ~10% of everything downstream.
    dims = cal.dimensions(sources, SPECS, *_period(), require_all=False)
    more_removals = cal.apply_multipliers(sources, dims, [1, 1, 1, 1, 1, 1, 1, 1.2], "x")
    moved = surrogate.values(more_removals)
    assert expected["removals_level1"] < moved["removals_level1"] < 1.2 * expected["removals_level1"]
    assert moved["removals"] - moved["removals_level1"] == pytest.approx(
        1.2 * (expected["removals"] - expected["removals_level1"])
    )
    assert surrogate.values(more_removals)["transfers_2011"] == pytest.approx(expected["transfers_2011"])
    fewer_matches = cal.apply_multipliers(sources, dims, [0.9, 1, 1, 1, 1, 1, 1, 1], "x")
    assert surrogate.values(fewer_matches)["removals"] == pytest.approx(0.9 * expected["removals"], rel=0.01)


def test_the_reweighting_follows_the_ident_conviction_ratio(sources):
    """A higher ratio puts more people with convictions among the matched: the surrogate's
    expectation at a new ratio agrees with a plain simulation at that ratio."""
    targets = targets_csv(
        [
            ("convicted", "removals_convicted", "secure_communities", START, END),
            ("noncriminal", "removals_noncriminal_share", "secure_communities", START, END),
            ("matches", "ident_matches", "secure_communities", START, END),
        ]
    )
    segments, records, simulated = cal._simulate(reweighting.saturated(sources), PLACE, *_period(), seed=5)
    surrogate = reweighting.Surrogate.build(sources, segments, records, targets, simulated)
    dims = cal.dimensions(
        sources, [{"parameter": "ident_record_ratio_prior_conviction"}], *_period(), require_all=False
    )
    higher = cal.apply_multipliers(sources, dims, [1.8], "higher ratio")
    expected, before = surrogate.values(higher), surrogate.values(sources)
    plain = evaluate_targets(targets, *cal._simulate(higher, PLACE, *_period(), seed=5))
    # (less than it would be by the FBI record alone: a current charge convicted before removal counts too)
    assert expected["convicted"] > 1.05 * before["convicted"]
    assert expected["noncriminal"] < before["noncriminal"]
    assert expected["matches"] == pytest.approx(before["matches"], rel=0.005)  # the mean match probability is kept
    for target in targets:
        assert expected[target.id] == pytest.approx(plain[target.id], rel=0.05), target.id


def test_calibration_recovers_known_parameters(sources, dims):
    """Targets made by the model itself at known multipliers; the fit, from other random numbers, finds them."""
    truth = [TRUTH.get(d.name, 1.0) for d in dims]
    true_parameters = cal.apply_multipliers(sources, dims, truth, "truth")
    placeholders = targets_csv(SYNTHETIC)
    made = evaluate_targets(placeholders, *cal._simulate(true_parameters, PLACE, *_period(), seed=101))
    targets = [replace(t, published=made[t.id]) for t in placeholders]
    result = cal.fit(sources, targets, dims, seed=202, outer_iterations=2, prior_weight=1e-4)
    assert result.loss_start > 1  # the source values miss the synthetic targets by more than their tolerance
    assert result.loss_fitted < 0.1
    recovered = dict(zip([d.name for d in dims], result.multipliers, strict=True))
    for name, value in TRUTH.items():
        assert recovered[name] == pytest.approx(value, rel=0.04), (name, recovered)


def test_the_draws_narrow_to_what_the_fit_learned(sources, dims):
    """The matches determine IDENT's record probability (within 5%) and say nothing of the chance of removal:
    the posterior spread of the first is a fraction of its uniform prior's, the second's is the prior's, and
    the replications draw the first within √3 × its spread, the second over its whole range."""
    import math

    truth = [TRUTH.get(d.name, 1.0) for d in dims]
    placeholders = targets_csv(SYNTHETIC[:2])
    made = evaluate_targets(
        placeholders, *cal._simulate(cal.apply_multipliers(sources, dims, truth, "truth"), PLACE, *_period(), seed=101)
    )
    targets = [replace(t, published=made[t.id]) for t in placeholders]
    result = cal.fit(sources, targets, dims, seed=202, outer_iterations=1, prior_weight=1e-4)
    names = [d.name for d in dims]
    spread = dict(zip(names, result.spread, strict=True))
    fitted = dict(zip(names, result.multipliers, strict=True))
    prior = {d.name: (d.high - d.low) / 2 / math.sqrt(3) for d in dims}
    assert spread["removal_probability"] == pytest.approx(prior["removal_probability"], rel=1e-6)
    assert spread["ident_record_probability"] < 0.2 * prior["ident_record_probability"]
    ident = result.parameters["ident_record_probability"].uncertainty
    assert ident["relative"] == pytest.approx(
        math.sqrt(3) * spread["ident_record_probability"] / fitted["ident_record_probability"]
    )
    assert ident["relative"] < sources["ident_record_probability"].uncertainty["relative"]
    assert result.parameters["removal_probability"].uncertainty == {"relative": pytest.approx(0.3)}
    # the overlay keeps each multiplier's spread beside it
    entry = written.provenance(result)["multipliers"]["ident_record_probability"]
    assert entry["posterior_sd"] == pytest.approx(spread["ident_record_probability"], rel=1e-4)


def _refit_from_the_truth(sources, dims, fixed_ratios, **ensemble):
    """scripts/refit_county_factors.py's fit on targets the model made at known multipliers: it starts at
    those multipliers with `fixed_ratios` (a target's earlier median over replications / point value)."""
    truth = [TRUTH.get(d.name, 1.0) for d in dims]
    placeholders = targets_csv(SYNTHETIC)
    made = evaluate_targets(
        placeholders, *cal._simulate(cal.apply_multipliers(sources, dims, truth, "truth"), PLACE, *_period(), seed=101)
    )
    targets = [replace(t, published=made[t.id]) for t in placeholders]
    result = cal.fit(
        sources,
        targets,
        dims,
        seed=202,
        outer_iterations=1,
        prior_weight=1e-4,
        start_multipliers=truth,
        fixed_ratios=fixed_ratios,
        **ensemble,
    )
    return made, targets, result


def test_a_refit_from_given_multipliers_with_fixed_ensemble_ratios(sources, dims):
    """The refit meets published / ratio with the point values, where a target's ratio is fixed; a target
    without one keeps 1."""
    ratios = {"removals": 0.97, "removals_2012": 0.97}
    made, targets, result = _refit_from_the_truth(sources, dims, ratios)
    assert result.ensemble_ratios == {t.id: ratios.get(t.id, 1.0) for t in targets}
    assert result.start_values["matches"] == pytest.approx(made["matches"], rel=0.03)  # the start is the truth
    for target in targets:
        point = result.surrogate_values[target.id]
        assert point * ratios.get(target.id, 1.0) == pytest.approx(target.published, rel=0.02), target.id
    assert result.surrogate_values["removals"] > 1.02 * made["removals"]


def test_an_ensemble_round_replaces_the_fixed_ratios(sources, dims):
    """scripts/refit_county_factors.py --ensemble-replications: an ensemble round at the refit replaces every
    fixed ratio (an earlier fit's, stale once the model changed) by the current model's median over
    replications / point value, and refits to it."""
    stale = {"removals": 0.3, "removals_2012": 0.3}
    _, targets, result = _refit_from_the_truth(sources, dims, stale, ensemble_rounds=1, ensemble_replications=3)
    assert set(result.ensemble_ratios) == {t.id for t in targets}
    assert set(result.ensemble_values) == {t.id for t in targets}
    # the medians of 3 replications drawn around the truth are near the truth's point values, not a third of them
    assert 0.5 < result.ensemble_ratios["removals"] < 1.5
    assert result.ensemble_ratios["removals"] != pytest.approx(stale["removals"])


def test_overlay_round_trip_and_checks(sources, dims, tmp_path):
    fitted = cal.apply_multipliers(sources, dims, [TRUTH.get(d.name, 1.0) for d in dims], "fitted")
    targets = targets_csv(SYNTHETIC[:1])
    result = cal.CalibrationResult(
        parameters=fitted,
        dims=dims,
        multipliers=[TRUTH.get(d.name, 1.0) for d in dims],
        targets=targets,
        start_values={"matches": 1.0},
        fitted_values={"matches": 1.0},
        surrogate_values={"matches": 1.0},
        loss_start=0.0,
        loss_fitted=0.0,
        loss_surrogate=0.0,
        evaluations=0,
        seconds=0.0,
        seed=1,
        place=PLACE,
        start=targets[0].start,
        end=targets[0].end,
        prior_weight=0.0,
        outer_iterations=0,
    )
    path = written.write_overlay(result, tmp_path / "overlay.yaml", targets)
    loaded = apply_overlay(sources, path)
    assert loaded.label.startswith("calibrated ")
    for name in ("ident_record_probability", "issuance_eras", "ice_pickup_probability", "removal_probability"):
        for (day, value), (fitted_day, fitted_value) in zip(
            loaded[name].dated_values, fitted[name].dated_values, strict=True
        ):
            assert day == fitted_day
            assert json.dumps(value, sort_keys=True) == json.dumps(written._round(fitted_value), sort_keys=True)
        assert loaded[name].references == sources[name].references  # sources keep their references
    document = yaml.safe_load(path.read_text())
    assert document["provenance"]["seed"] == 1 and document["provenance"]["targets_fitted"] == ["matches"]
    document["parameters"]["jail_daily_cost_usd"] = {"value": 1.0, "uncertainty": {"relative": 0.1}}
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ParameterError, match="not marked 'calibrate: true'"):
        apply_overlay(sources, path)


def test_the_default_parameters_are_the_calibrated_ones():
    calibrated, sources = load_parameters(), load_parameters(calibrated=False)
    fitted = [name for name, p in sources.by_name.items() if p.calibrate]
    assert calibrated.label.startswith("calibrated")
    assert any(calibrated[name].dated_values != sources[name].dated_values for name in fitted)
    for name, parameter in sources.by_name.items():
        if not parameter.calibrate:
            assert calibrated[name] == parameter, name


def test_calibrate_cli(tmp_path):
    path = tmp_path / "targets.csv"
    rows = [
        "m,fit,ident_matches,secure_communities,NM,,2011-01-01,2011-12-31,4000,approx,0.2,relative,,s,https://example.org,",
        "d,fit,detainers_issued,all,NM,,2011-01-01,2011-12-31,3000,approx,0.2,relative,,s,https://example.org,",
        "r,fit,removals,secure_communities,NM,,2011-01-01,2011-12-31,700,approx,0.2,relative,,s,https://example.org,",
        "h,holdout,removals,secure_communities,NM,,2012-01-01,2012-12-31,700,approx,0.2,relative,,s,https://example.org,",
    ]
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    out = tmp_path / "overlay.yaml"
    result = CliRunner().invoke(
        app, ["calibrate", "--targets", str(path), "--out", str(out), "--ensemble-rounds", "0", "--json"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["targets_fitted"] == ["d", "m", "r"] and document["targets_held_out"] == ["h"]
    assert document["loss"]["fitted_simulated"] <= document["loss"]["start"]
    assert set(document["multipliers"]) >= {"noncitizen_booking_ratio", "removal_probability"}
    loaded = apply_overlay(load_parameters(calibrated=False), out)
    assert loaded.value("removal_probability") != load_parameters(calibrated=False).value("removal_probability")
    assert np.isfinite(document["seconds"])


def test_field_office_pooling_recovers_known_factors(sources, tmp_path):
    """Place targets made by the model at known field-office factors (El Paso 0.5 for New Mexico,
    Philadelphia 0.75 for Delaware); the fit finds them, leaves a field office without figures (Salt
    Lake City: Utah is simulated, but has none) at the nation, and a strong pull towards the nation
    (partial pooling) keeps the fitted factors between the nation and the truth."""
    spec = [{"parameter": "field_office_detainer_factor", "each_key": True, "range": [0.25, 1.75]}]
    start, end = dt.date(2011, 1, 1), dt.date(2012, 12, 31)
    dims = cal.dimensions(sources, spec, start, end, require_all=False)
    assert len(dims) == 24 and all(d.keys and len(d.keys) == 1 for d in dims)
    truth = {"field_office_detainer_factor[ELP]": 0.5, "field_office_detainer_factor[PHI]": 0.75}
    true_parameters = cal.apply_multipliers(sources, dims, [truth.get(d.name, 1.0) for d in dims], "truth")
    lines = [
        f"{state}_{metric},fit,{metric},secure_communities,{state},,{start},{end},1,approx,1.5,factor,,s,https://example.org,"
        for state in ("NM", "DE")
        for metric in ("detainers_issued", "transfers_to_ice", "removals")
    ]
    lines.append(
        f"ut,holdout,bookings,secure_communities,UT,,{start},{end},1,approx,0.2,relative,,s,https://example.org,"
    )
    placeholders = parse_targets("\n".join([HEADER, *lines]))
    made = evaluate_targets(placeholders, *cal._simulate(true_parameters, "NM,DE,UT", start, end, seed=101))
    targets = [replace(t, published=made[t.id]) for t in placeholders]
    result = cal.fit(sources, targets, dims, seed=202, outer_iterations=1, prior_weight=1e-4)
    recovered = dict(zip([d.name for d in dims], result.multipliers, strict=True))
    for name, value in truth.items():
        assert recovered[name] == pytest.approx(value, rel=0.1), (name, recovered[name])  # Delaware: small counts
    assert recovered["field_office_detainer_factor[SLC]"] == pytest.approx(1.0, abs=1e-3)
    # Leave one place out: without New Mexico's figures, El Paso has none and returns to the nation, so
    # the prediction of New Mexico's detainers is about twice the figure (the truth is 0.5).
    held_out = {p.target.id: p for p in cal.leave_one_place_out(sources, result)}
    assert set(held_out) == {t.id for t in targets}
    nm = held_out["NM_detainers_issued"]
    assert nm.office == "ELP" and nm.fitted == pytest.approx(nm.target.published, rel=0.1)
    assert nm.held_out == pytest.approx(2 * nm.fitted, rel=0.1)
    # The overlay keeps the predictions, and `validate --place` reads New Mexico's back from it.
    path = written.write_overlay(result, tmp_path / "overlay.yaml", targets, list(held_out.values()))
    shown = {f.target.id: f for f in held_out_figures([t for t in targets if t.place == "NM"], path)}
    assert set(shown) == {"NM_detainers_issued", "NM_transfers_to_ice", "NM_removals"}
    assert shown["NM_detainers_issued"].held_out == pytest.approx(nm.held_out, rel=1e-4)
    assert shown["NM_detainers_issued"].within_held_out == nm.target.within(nm.held_out)
    assert median_count_error(list(shown.values())) == pytest.approx(
        np.median([abs(held_out[id].held_out / held_out[id].target.published - 1) for id in shown]), rel=1e-3
    )
    assert held_out_figures(targets, written.write_overlay(result, tmp_path / "without.yaml", targets)) == []
    pooled = cal.dimensions(sources, [{**spec[0], "prior_weight": 1.0}], start, end, require_all=False)
    shrunk = cal.fit(sources, targets, pooled, seed=202, outer_iterations=1, prior_weight=1e-4)
    shrunk_by_name = dict(zip([d.name for d in pooled], shrunk.multipliers, strict=True))
    # Pooling pulls each factor from its own fit toward the nation (1): the truth, near the own fit, need not
    # lie below the pooled value, since the own fit carries the simulation's noise.
    for name in truth:
        assert recovered[name] < shrunk_by_name[name] < 1.0


def test_leaving_a_place_out_refits_its_field_offices_removal_factors(sources):
    """Leave-one-place-out refits every multiplier of the place's field office, its removal factors as well
    as its detainer factor: New Mexico's removals made at El Paso's factor 0.5 for the convicted are fitted,
    and without New Mexico's figures El Paso returns to the nation, so the held-out removals are higher, by more
    than ICE arrests (before removal: only the detainer factor moves them)."""
    start, end = dt.date(2011, 1, 1), dt.date(2012, 12, 31)
    spec = [
        {"parameter": name, "each_key": True, "range": [0.25, 1.75]}
        for name in (
            "field_office_detainer_factor",
            "field_office_removal_factor_convicted",
            "field_office_removal_factor_non_criminal",
        )
    ]
    dims = cal.dimensions(sources, spec, start, end, require_all=False)
    truth = {"field_office_removal_factor_convicted[ELP]": 0.5}
    true_parameters = cal.apply_multipliers(sources, dims, [truth.get(d.name, 1.0) for d in dims], "truth")
    placeholders = _placeholder_targets(
        [
            ("NM_removals", "removals", "secure_communities", "NM", start.isoformat(), end.isoformat()),
            ("NM_transfers", "transfers_to_ice", "secure_communities", "NM", start.isoformat(), end.isoformat()),
            ("DE_removals", "removals", "secure_communities", "DE", start.isoformat(), end.isoformat()),
        ]
    )
    made = evaluate_targets(placeholders, *cal._simulate(true_parameters, "NM,DE", start, end, seed=101))
    targets = [replace(t, published=made[t.id]) for t in placeholders]
    result = cal.fit(sources, targets, dims, seed=202, outer_iterations=1, prior_weight=1e-4)
    held_out = {p.target.id: p for p in cal.leave_one_place_out(sources, result)}
    removals, transfers = held_out["NM_removals"], held_out["NM_transfers"]
    assert removals.office == "ELP" and removals.fitted == pytest.approx(removals.target.published, rel=0.1)
    assert removals.held_out > 1.2 * removals.fitted
    assert removals.held_out / removals.fitted > transfers.held_out / transfers.fitted + 0.1


def _placeholder_targets(rows: list[tuple[str, str, str, str, str, str]]):
    """Targets of value 1 (id, metric, channel, place, start, end) whose expectations a test reads."""
    lines = [
        f"{id},fit,{metric},{channel},{place},,{first},{last},1,approx,1.5,factor,,s,https://example.org,"
        for id, metric, channel, place, first, last in rows
    ]
    return parse_targets("\n".join([HEADER, *lines]))


def _moved_surrogate(sources, rows, places, start, end, spec, multipliers, label):
    """Targets of `rows` (id, metric, channel, place) over the period, the parameters with `spec` moved to
    `multipliers`, and the surrogate's expectations there and at the source values."""
    targets = _placeholder_targets(
        [(id, metric, channel, place, start.isoformat(), end.isoformat()) for id, metric, channel, place in rows]
    )
    segments, records, simulated = cal._simulate(reweighting.saturated(sources), places, start, end, seed=5)
    surrogate = reweighting.Surrogate.build(sources, segments, records, targets, simulated)
    dims = cal.dimensions(sources, spec, start, end, require_all=False)
    moved = cal.apply_multipliers(sources, dims, multipliers, label)
    return targets, moved, surrogate.values(moved), surrogate.values(sources)


def test_the_reweighting_follows_the_ramp_up_after_activation(sources):
    """ICE's ramp-up in a newly activated county (issuance.yaml): the surrogate's expectations at a ramp
    from 0.3 over 6 months agree with plain simulations there, lower the first months after Utah's
    activations (Mar 2010 onwards) and leave 2012 nearly as it was."""
    start, end = dt.date(2010, 1, 1), dt.date(2012, 12, 31)
    targets = _placeholder_targets(
        [
            ("detainers_first", "detainers_issued", "secure_communities", "UT", "2010-03-01", "2010-08-31"),
            ("transfers_first", "transfers_to_ice", "secure_communities", "UT", "2010-03-01", "2010-10-31"),
            ("detainers_2012", "detainers_issued", "secure_communities", "UT", "2012-01-01", "2012-12-31"),
        ]
    )
    segments, records, simulated = cal._simulate(reweighting.saturated(sources), "UT", start, end, seed=5)
    surrogate = reweighting.Surrogate.build(sources, segments, records, targets, simulated)
    spec = [
        {"parameter": "activation_ramp_start_share", "range": [0.1, 1.0]},
        {"parameter": "activation_ramp_months"},
    ]
    dims = cal.dimensions(sources, spec, start, end, require_all=False)
    ramped = cal.apply_multipliers(sources, dims, [0.3, 1.0], "ramp")
    assert ramped.value("activation_ramp_start_share") == pytest.approx(0.3)
    expected, before = surrogate.values(ramped), surrogate.values(sources)
    plain = [evaluate_targets(targets, *cal._simulate(ramped, "UT", start, end, seed=seed)) for seed in (5, 6, 7)]
    for target in targets:  # a few hundred detainers: the mean of three plain runs
        assert expected[target.id] == pytest.approx(np.mean([p[target.id] for p in plain]), rel=0.1), target.id
    assert expected["detainers_first"] < 0.8 * before["detainers_first"]
    assert expected["transfers_first"] < 0.8 * before["transfers_first"]
    # (a few small Utah counties were activated in 2011-2012)
    assert expected["detainers_2012"] == pytest.approx(before["detainers_2012"], rel=0.02)


def test_the_reweighting_follows_the_county_factor(sources):
    """A county's own factor (issuance.yaml, county_detainer_factor) acts on both routes: at 0.4 in D.C.,
    the surrogate's expectations of its detainers (every route, and Secure Communities alone) and transfers
    agree with plain simulations and fall to about 0.4 of what they were, while Montgomery County MD, beside
    it in the same field office but without a factor of its own, does not move."""
    start, end = dt.date(2011, 1, 1), dt.date(2012, 12, 31)
    rows = [
        ("dc_all", "detainers_issued", "all", "11001"),
        ("dc_sc", "detainers_issued", "secure_communities", "11001"),
        ("dc_transfers", "transfers_to_ice", "all", "11001"),
        ("montgomery", "detainers_issued", "all", "24031"),
    ]
    places = "11001,24031"
    spec = [{"parameter": "county_detainer_factor", "keys": ["11001"], "range": [0.1, 1.75]}]
    targets, lowered, expected, before = _moved_surrogate(sources, rows, places, start, end, spec, [0.4], "county")
    assert lowered.value("county_detainer_factor")["11001"] == pytest.approx(0.4)
    share = {"dc_all": 0.4, "dc_sc": 0.4, "dc_transfers": 0.4, "montgomery": 1.0}
    for target in targets:
        assert expected[target.id] == pytest.approx(share[target.id] * before[target.id], rel=1e-9), target.id
    # Plain simulations, seed by seed at the factor and at the source value (the same population: only
    # the issuance draw decides); a hundred Secure Communities detainers in D.C. a run, so three runs.
    seeds = (5, 6, 7)
    low = [evaluate_targets(targets, *cal._simulate(lowered, places, start, end, seed=seed)) for seed in seeds]
    source = [evaluate_targets(targets, *cal._simulate(sources, places, start, end, seed=seed)) for seed in seeds]
    for target in targets:
        total_low, total_source = sum(p[target.id] for p in low), sum(p[target.id] for p in source)
        assert total_low == pytest.approx(share[target.id] * total_source, rel=0.1), target.id
    assert source[0]["dc_all"] == pytest.approx(before["dc_all"], rel=0.05)


def test_the_reweighting_follows_the_field_office_removal_factors(sources):
    """Whom a field office removes (removal.yaml): at Phoenix's factors 0.5 for the transferred with a
    conviction on record and 1.4 for those without, Maricopa County's expected non-criminal removals rise
    1.4 times and its Level 2 removals fall, its ICE arrests (before removal) and Bernalillo County NM (El
    Paso's office) stay as they were, and plain simulations at the factors agree."""
    start, end = dt.date(2011, 1, 1), dt.date(2012, 12, 31)
    rows = [
        (id, metric, "secure_communities", place)
        for id, metric, place in (
            ("removals", "removals", "04013"),
            ("non_criminal", "removals_noncriminal", "04013"),
            ("level_2", "removals_level2", "04013"),
            ("transfers", "transfers_to_ice", "04013"),
            ("bernalillo", "removals", "35001"),
        )
    ]
    places = "04013,35001"
    spec = [
        {"parameter": "field_office_removal_factor_convicted", "keys": ["PHO"], "range": [0.25, 1.75]},
        {"parameter": "field_office_removal_factor_non_criminal", "keys": ["PHO"], "range": [0.25, 1.75]},
    ]
    targets, moved, expected, before = _moved_surrogate(sources, rows, places, start, end, spec, [0.5, 1.4], "Phoenix")
    assert expected["non_criminal"] == pytest.approx(1.4 * before["non_criminal"], rel=1e-9)
    assert expected["level_2"] < 0.8 * before["level_2"]
    for unmoved in ("transfers", "bernalillo"):
        assert expected[unmoved] == pytest.approx(before[unmoved], rel=1e-9), unmoved
    plain = [evaluate_targets(targets, *cal._simulate(moved, places, start, end, seed=seed)) for seed in (5, 6)]
    for target in targets:
        assert expected[target.id] == pytest.approx(np.mean([p[target.id] for p in plain]), rel=0.1), target.id


def test_the_reweighting_follows_the_field_office_ident_factor(sources):
    """IDENT matches per submission by field office (ident.yaml): at Houston's factor 0.6, Harris County's
    expected matches fall 0.6 times (the native-born's erroneous matches aside), the detainers of every route
    less (fewer matched, more left for the other routes), Bernalillo County NM (El Paso's office) stays as it
    was, and plain simulations at the factor agree, Bernalillo's draw for draw."""
    start, end = dt.date(2011, 1, 1), dt.date(2011, 12, 31)
    rows = [
        ("matches", "ident_matches", "secure_communities", "48201"),
        ("detainers", "detainers_issued", "secure_communities", "48201"),
        ("removals", "removals", "secure_communities", "48201"),
        ("detainers_all", "detainers_issued", "all", "48201"),
        ("bernalillo", "ident_matches", "secure_communities", "35001"),
    ]
    places = "48201,35001"
    spec = [{"parameter": "field_office_ident_factor", "keys": ["HOU"], "range": [0.5, 1.5]}]
    targets, moved, expected, before = _moved_surrogate(sources, rows, places, start, end, spec, [0.6], "Houston")
    assert expected["matches"] == pytest.approx(0.6 * before["matches"], rel=0.01)
    assert expected["detainers"] < 0.7 * before["detainers"]
    assert expected["detainers_all"] - expected["detainers"] > before["detainers_all"] - before["detainers"]
    assert expected["bernalillo"] == pytest.approx(before["bernalillo"], rel=1e-9)
    plain = [evaluate_targets(targets, *cal._simulate(moved, places, start, end, seed=seed)) for seed in (5, 6)]
    for target in targets:
        assert expected[target.id] == pytest.approx(np.mean([p[target.id] for p in plain]), rel=0.1), target.id
    unmoved = evaluate_targets(targets, *cal._simulate(sources, places, start, end, seed=5))
    assert plain[0]["bernalillo"] == unmoved["bernalillo"]
    assert plain[0]["matches"] == pytest.approx(0.6 * unmoved["matches"], rel=0.05)


def test_leaving_a_place_out_refits_its_field_offices_ident_factor(sources):
    """Leave-one-place-out refits the place's field office's factor on IDENT matches too: New Mexico's matches
    made at El Paso's factor 0.6 are fitted, and without New Mexico's figures El Paso returns to the nation,
    so the held-out matches are higher."""
    start, end = dt.date(2011, 1, 1), dt.date(2011, 12, 31)
    spec = [
        {"parameter": name, "each_key": True, "range": [0.5, 1.5]}
        for name in ("field_office_detainer_factor", "field_office_ident_factor")
    ]
    dims = cal.dimensions(sources, spec, start, end, require_all=False)
    truth = {"field_office_ident_factor[ELP]": 0.6}
    true_parameters = cal.apply_multipliers(sources, dims, [truth.get(d.name, 1.0) for d in dims], "truth")
    placeholders = _placeholder_targets(
        [
            ("NM_matches", "ident_matches", "secure_communities", "NM", start.isoformat(), end.isoformat()),
            ("DE_matches", "ident_matches", "secure_communities", "DE", start.isoformat(), end.isoformat()),
        ]
    )
    made = evaluate_targets(placeholders, *cal._simulate(true_parameters, "NM,DE", start, end, seed=101))
    targets = [replace(t, published=made[t.id]) for t in placeholders]
    result = cal.fit(sources, targets, dims, seed=202, outer_iterations=1, prior_weight=1e-4)
    matches = {p.target.id: p for p in cal.leave_one_place_out(sources, result)}["NM_matches"]
    assert matches.office == "ELP" and matches.fitted == pytest.approx(matches.target.published, rel=0.05)
    assert matches.held_out > 1.4 * matches.fitted
