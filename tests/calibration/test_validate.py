import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from securecomm.calibration.targets import TARGET_COLUMNS, SeriesCheck, load_targets, parse_targets
from securecomm.calibration.validate import Scorecard, score, series_results, validate
from securecomm.cli import app
from securecomm.model.replications import Runner

HEADER = ",".join(TARGET_COLUMNS)
JSON_KEYS = {
    "id",
    "metric",
    "place",
    "place_name",
    "start",
    "end",
    "published",
    "model_median",
    "low",
    "high",
    "comparison",
    "tolerance",
    "tolerance_unit",
    "rel_error",
    "within",
}


def target(
    id="t", published="100", comparison="approx", tolerance="0.2", series="", start="2010-01-01", unit="relative"
):
    line = (
        f"{id},fit,removals,secure_communities,US,,{start},{start[:4]}-12-31,{published},{comparison},{tolerance},"
        f"{unit},{series},a source,https://example.org,"
    )
    return parse_targets(f"{HEADER}\n{line}\n")[0]


def test_the_scorecard_arithmetic_on_a_hand_made_example():
    # 21 replications 70, 73, ..., 130: median 100, 5th percentile 73, 95th 127 (linear interpolation).
    values = [70 + 3 * i for i in range(21)]
    result = score(target(published="80"), values)
    assert result.model_median == 100
    assert result.low == pytest.approx(73) and result.high == pytest.approx(127)
    assert result.rel_error == pytest.approx(0.25)
    assert not result.within  # 25% above, tolerance 20%
    assert score(target(published="84"), values).within  # 19.05% above
    assert score(target(published="125"), values).within  # exactly 20% below: the tolerance is inclusive
    assert not score(target(published="126"), values).within
    # A lower bound ("more than 80"): any model value above it is within; below it, within the tolerance.
    assert score(target(published="80", comparison="at_least"), values).within
    assert score(target(published="120", comparison="at_least"), values).within  # -16.7%
    assert not score(target(published="130", comparison="at_least"), values).within  # -23.1%


def test_series_correlation_and_summary():
    published = [100, 200, 300, 250]
    scores = [
        score(target(id=f"y{i}", published=str(p), series="s", start=f"201{i}-01-01"), [model])
        for i, (p, model) in enumerate(zip(published, [110, 190, 330, 240], strict=True))
    ]
    checks = [SeriesCheck("s", "a series", "pearson", 0.9), SeriesCheck("none", "no members", "pearson", 0.9)]
    [result] = series_results(scores, checks)
    # deviations from the means 212.5 and 217.5: Σdx·dy = 23,125, Σdx² = 21,875, Σdy² = 25,475
    assert result.value == pytest.approx(23125 / (21875 * 25475) ** 0.5)
    assert result.within and result.targets == ("y0", "y1", "y2", "y3")
    # the same models against a reversed series do not correlate
    flipped = [score(replace(s.target, published=400 - s.target.published), [s.model_median]) for s in scores]
    assert not series_results(flipped, checks[:1])[0].within
    card = Scorecard(scores, [result], replications=1, seed=0, parameters="default")
    assert card.summary() == "4 of 4 targets within tolerance"
    document = card.to_dict()
    assert document["summary"] == {"within": 4, "total": 4}
    assert all(set(row) == JSON_KEYS for row in document["targets"])


@pytest.fixture(scope="module")
def fairfield_targets(tmp_path_factory):
    path = tmp_path_factory.mktemp("targets") / "fairfield.csv"
    rows = [
        "ff_matches,holdout,ident_matches,secure_communities,09001,,2010-06-29,2011-06-30,5000,approx,0.2,relative,,a source,https://example.org,",
        "ff_removals,holdout,removals,secure_communities,09001,,2010-06-29,2012-12-31,1000,approx,0.2,relative,,a source,https://example.org,",
        "ff_detainers,holdout,detainers_issued,all,09001,,2011-01-01,2011-12-31,2000,approx,0.2,relative,,a source,https://example.org,",
        "ct_counties,holdout,counties_activated,secure_communities,CT,,2008-10-27,2012-12-31,8,approx,0.2,relative,,a source,https://example.org,",
    ]
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def test_validate_cli_json_shape(fairfield_targets):
    args = ["validate", "--targets", str(fairfield_targets), "--replications", "2", "--workers", "1", "--json"]
    result = CliRunner().invoke(app, [*args, "--place", "09001"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert {"targets", "summary"} <= set(document)
    assert [row["id"] for row in document["targets"]] == ["ff_matches", "ff_removals", "ff_detainers"]
    assert all(set(row) == JSON_KEYS for row in document["targets"])
    for row in document["targets"]:
        assert row["low"] <= row["model_median"] <= row["high"]
        assert row["rel_error"] == pytest.approx((row["model_median"] - row["published"]) / row["published"], abs=1e-4)
    assert document["summary"]["total"] == 3
    assert document["summary"]["within"] == sum(row["within"] for row in document["targets"])
    figures = document["place"]
    assert figures["place"] == "09001" and (figures["start"], figures["end"]) == ("2008-10-27", "2014-11-20")
    assert figures["figures"]["removals:secure_communities"]["median"] > 0
    assert (
        figures["figures"]["detainers_issued:all"]["median"]
        >= figures["figures"]["detainers_issued:secure_communities"]["median"]
    )


def test_validate_cli_table(fairfield_targets):
    result = CliRunner().invoke(
        app, ["validate", "--targets", str(fairfield_targets), "--replications", "2", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "ct_counties" in result.stdout and "ff_matches" in result.stdout
    assert "of 4 targets within tolerance" in result.stdout


def test_validate_cli_rejects_bad_input(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,value\nx,1\n")
    result = CliRunner().invoke(app, ["validate", "--targets", str(bad), "--replications", "1"])
    assert result.exit_code == 2 and "columns" in result.stderr
    result = CliRunner().invoke(app, ["validate", "--place", "XX", "--replications", "1"])
    assert result.exit_code == 2 and "XX" in result.stderr


def test_validate_on_a_local_cluster_gives_the_in_process_numbers(fairfield_targets):
    seen = []
    on_cluster = validate(
        load_targets(fairfield_targets),
        place="09001",
        replications=3,
        seed=4,
        runner=Runner(workers=2),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(1, 3), (2, 3), (3, 3)]  # what the command's progress bar shows
    args = ["--targets", str(fairfield_targets), "--replications", "3", "--seed", "4", "--place", "09001"]
    in_process = CliRunner().invoke(app, ["validate", *args, "--workers", "1", "--json"])
    assert in_process.exit_code == 0, in_process.output
    assert json.loads(in_process.stdout) == json.loads(json.dumps(on_cluster.to_dict()))
    row = on_cluster.to_dict()["targets"][0]
    assert row["low"] < row["high"]  # the replications differ: there is something to get wrong


def test_a_place_shows_its_field_offices_fit():
    from securecomm.calibration.targets import load_all_targets
    from securecomm.calibration.validate import field_office_fits
    from securecomm.model.parameters import load_parameters

    fits = {fit.office: fit for fit in field_office_fits("06085,06087,17031", load_parameters(), load_all_targets())}
    assert set(fits) == {"SFR", "CHI"}
    assert fits["SFR"].counties == 2 and fits["CHI"].counties == 1
    # Santa Clara, Santa Cruz, Monterey, the Bay Area counties: place figures in San Francisco's area
    assert fits["SFR"].place_figures >= 10
    assert fits["SFR"].low == pytest.approx(0.25) and fits["SFR"].high == pytest.approx(1.75)
    assert fits["SFR"].to_dict()["office"] == "SFR"
    # whom the office removes (removal.yaml), as calibrated
    removals, calibrated = fits["CHI"].to_dict()["removal_factors"], load_parameters()
    for record in ("convicted", "non_criminal"):
        factor = calibrated.value(f"field_office_removal_factor_{record}")["CHI"]
        assert removals[record] == pytest.approx(factor, abs=1e-4) and factor != 1
    # IDENT matches per submission by field office (ident.yaml), as calibrated
    assert fits["CHI"].to_dict()["ident_factor"] == pytest.approx(
        calibrated.value("field_office_ident_factor")["CHI"], abs=1e-4
    )
    assert calibrated.value("field_office_ident_factor")["CHI"] != 1


def test_the_place_scorecard_reads_each_tolerance_in_its_own_terms():
    from rich.console import Console

    from securecomm.calibration.validate import Scorecard, score
    from securecomm.cli.validate import error_text, render_places

    count = replace(target(id="c", published="100", tolerance="1.5", unit="factor"), place="09001", place_name="A")
    share = replace(target(id="s", published="0.5", tolerance="0.12", unit="points"), place="US", place_name="US")
    scores = [score(count, [140, 150, 160]), score(share, [0.30, 0.35, 0.40])]
    assert [s.within for s in scores] == [True, False]
    assert error_text(scores[0]) == "×1.50 (÷/×1.5)" and error_text(scores[1]) == "-0.15 (±0.12)"
    console = Console(record=True, width=200)
    render_places(Scorecard(scores, [], 3, 1, "test"), console)
    text = console.export_text()
    assert "A (09001)" in text and "1 of 2 place figures within tolerance; 1 of 1 outside the national rows" in text


def test_a_place_shows_how_well_the_model_predicts_it_left_out():
    """`validate --place`: the place's figures as the shipped fit predicted them with the place left out of
    it (calibrate --leave-one-out), each error in its own terms, and the median error of its counts."""
    from rich.console import Console

    from securecomm.calibration.validate import HeldOutFigure
    from securecomm.cli.validate import render_held_out

    count_a = target(id="removals_a", published="100", tolerance="1.5", unit="factor")
    count_b = target(id="removals_b", published="200", comparison="at_least", tolerance="1.5", unit="factor")
    share = target(id="share_c", published="0.6", tolerance="0.12", unit="points")
    figures = [
        HeldOutFigure(count_a, 110, 160, False),
        HeldOutFigure(count_b, 190, 240, True),
        HeldOutFigure(share, 0.55, 0.52, True),
    ]
    console = Console(record=True, width=200)
    render_held_out(figures, console)
    text = console.export_text()
    assert "+60%" in text and "+20%" in text and "-0.08" in text
    assert "≥ 200" in text  # a lower bound shown as one
    assert "2 of 3 figures within tolerance with the place left out; median absolute error of its counts 40%" in text
    for nothing, said in ((None, "not shown for parameters other than the shipped"), ([], "has no prediction")):
        console = Console(record=True, width=200)
        render_held_out(nothing, console)
        assert said in console.export_text()


def test_validate_a_place_reads_the_shipped_leave_one_out():
    """The shipped overlay was written by `calibrate --leave-one-out`: `validate --place 06053` gives each of
    Monterey County's fitted figures as predicted with Monterey left out of the fit."""
    from securecomm.calibration.targets import load_place_targets

    fitted = {t.id for t in load_place_targets() if t.place == "06053" and t.fitted}
    result = CliRunner().invoke(
        app, ["validate", "--place", "06053", "--replications", "1", "--workers", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    held_out = json.loads(result.stdout)["place"]["leave_one_place_out"]
    assert {figure["id"] for figure in held_out["figures"]} == fitted and len(fitted) >= 3
    assert 0 < held_out["median_absolute_error_of_counts"] < 1
    table = CliRunner().invoke(app, ["validate", "--place", "06053", "--replications", "1", "--workers", "1"])
    assert "with the place left out; median absolute error of its counts" in table.stdout


def share_figure(id, published, start, end, comparison="approx"):
    line = (
        f"{id},holdout,removals_noncriminal_share,secure_communities,US,United States,{start},{end},{published},"
        f"{comparison},0.2,relative,,source {id},https://example.org,"
    )
    return parse_targets(f"{HEADER}\n{line}\n")[0]


def test_the_nations_shares_without_a_conviction_against_five_points():
    """Issue 16's test: the model's median within 5 points of each published national share (a lower bound:
    not more than 5 below it), and what two cumulative figures imply for the removals between their dates."""
    import datetime as dt

    from securecomm.calibration.validate import national_shares

    february = share_figure("feb_2011", "0.3", "2008-10-27", "2011-02-28", comparison="at_least")
    august = share_figure("aug_2011", "0.2", "2008-10-27", "2011-08-31")
    march = share_figure("gao_2012", "0.26", "2008-10-01", "2012-03-31")
    flow = share_figure("flow_2012", "0.25", "2011-12-01", "2013-01-31")  # not cumulative: nothing implied
    model = {"feb_2011": 0.266, "aug_2011": 0.272, "gao_2012": 0.265, "flow_2012": 0.19}
    removals = {"feb_2011": 94_000, "aug_2011": 135_000, "gao_2012": 183_000, "flow_2012": 110_000}
    runs = [
        {**{k: v + wiggle for k, v in model.items()}, **{f"{k}:removals": v for k, v in removals.items()}}
        for wiggle in (-0.01, 0.0, 0.01)
    ]
    shares = national_shares([flow, march, august, february], runs, 0.05, dt.date(2008, 10, 27))
    assert [s.target.id for s in shares] == ["feb_2011", "aug_2011", "gao_2012", "flow_2012"]  # by the end date
    assert [s.within for s in shares] == [True, False, True, False]  # -3.4 (a bound), +7.2, +0.5, -6.0 points
    assert [round(s.difference, 3) for s in shares] == [-0.034, 0.072, 0.005, -0.06]
    feb, aug, gao, later = shares
    assert feb.published_since_previous is None and later.published_since_previous is None
    # 28,200 of 94,000 without a conviction by February and 27,000 of 135,000 by August: -1,200 of the 41,000 between
    assert aug.published_since_previous == pytest.approx((135_000 * 0.2 - 94_000 * 0.3) / 41_000)
    assert aug.published_since_previous < 0 < aug.model_since_previous < 1
    assert gao.published_since_previous == pytest.approx((183_000 * 0.26 - 135_000 * 0.2) / 48_000)
    assert gao.model_since_previous == pytest.approx((183_000 * 0.265 - 135_000 * 0.272) / 48_000)
    # a lower bound missed by more than the points
    [low] = national_shares([february], [{"feb_2011": 0.24, "feb_2011:removals": 1.0}], 0.05, dt.date(2008, 10, 27))
    assert not low.within
    card = Scorecard([], [], 3, 1, "test", national_shares=shares)
    document = card.to_dict()["national_shares_without_conviction"]
    assert (document["within"], document["total"], document["points"]) == (2, 4, 0.05)
    assert document["figures"][1]["published_since_previous"] == pytest.approx(-0.0293, abs=1e-4)


def test_validate_prints_the_nations_shares_without_a_conviction(tmp_path):
    """A national run scores every national share of its table against 5 points, with the model's removals over
    each window; a place's run does not simulate the nation for them."""
    path = tmp_path / "shares.csv"
    rows = [
        "early,holdout,removals_noncriminal_share,secure_communities,US,United States,2008-10-27,2009-03-31,0.3,approx,0.2,relative,,early source,https://example.org,",
        "later,holdout,removals_noncriminal_share,secure_communities,US,United States,2008-10-27,2009-06-30,0.3,approx,0.2,relative,,later source,https://example.org,",
        "harris,holdout,ident_matches,secure_communities,48201,,2008-10-27,2009-06-30,5000,approx,0.2,relative,,a source,https://example.org,",
    ]
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    args = ["validate", "--targets", str(path), "--replications", "2", "--workers", "1"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    shares = document["national_shares_without_conviction"]
    assert [f["id"] for f in shares["figures"]] == ["early", "later"] and shares["total"] == 2
    early, later = shares["figures"]
    scored = {row["id"]: row["model_median"] for row in document["targets"]}
    assert early["model_median"] == pytest.approx(scored["early"], abs=1e-4)
    assert 0 < early["model_removals"] < later["model_removals"]
    assert early["published_since_previous"] is None and later["published_since_previous"] == pytest.approx(0.3)
    assert shares["within"] == sum(abs(f["difference"]) <= 0.05 for f in shares["figures"])
    table = CliRunner().invoke(app, args)
    assert "The nation's share of removals without a conviction" in table.stdout and "later source" in table.stdout
    alone = CliRunner().invoke(app, [*args, "--place", "48201", "--json"])
    assert alone.exit_code == 0, alone.output
    assert "national_shares_without_conviction" not in json.loads(alone.stdout)
