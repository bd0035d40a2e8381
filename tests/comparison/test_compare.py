import datetime as dt
import json
import os
import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from securecomm.cli import app
from securecomm.comparison.compare import compare
from securecomm.comparison.report import render_report, write_report
from securecomm.core.places import resolve_place
from securecomm.model.parameters import load_parameters
from securecomm.model.replications import Runner
from securecomm.model.simulation import Reform, simulate
from securecomm.model.stages.effects import select as select_effects
from securecomm.model.stages.effects import studies

START, END = dt.date(2013, 6, 1), dt.date(2014, 12, 31)
POLICIES = ("us/ice-request", "historical", "ct/trust-act-2013", "nm/dona-ana/2014")


@pytest.fixture(scope="module")
def single_run():
    return compare("CT", START, END, POLICIES, replications=1, seed=21)


def test_compare_agrees_with_separate_simulate_runs(single_run):
    connecticut = frozenset(resolve_place("CT"))
    for policy in POLICIES:
        reforms = () if policy == "historical" else (Reform(connecticut, policy),)
        separate = simulate("CT", START, END, seed=21, reforms=reforms)
        for metric, value in separate.total.items():
            assert single_run.summary.levels[policy][metric]["median"] == pytest.approx(value), (policy, metric)


def test_declining_everything_means_no_holds(single_run):
    dona_ana = single_run.summary.levels["nm/dona-ana/2014"]
    assert dona_ana["detainers_issued"]["median"] > 0
    assert dona_ana["detainers_honored"]["median"] == 0
    assert dona_ana["hold_hours"]["median"] == 0
    assert single_run.summary.differences["nm/dona-ana/2014"]["hold_hours"]["median"] < 0
    # Same people in every column: the stages before the jail do not move.
    for metric in ("bookings", "ident_matches", "detainers_issued"):
        assert single_run.summary.differences["nm/dona-ana/2014"][metric]["median"] == 0


def test_uncertainty_bands_and_a_local_cluster_give_the_same_numbers():
    in_process = compare("09001", START, END, POLICIES[:2], replications=3, seed=5)
    on_cluster = compare("09001", START, END, POLICIES[:2], replications=3, seed=5, runner=Runner(workers=2))
    assert in_process.summary == on_cluster.summary
    band = in_process.summary.levels["us/ice-request"]["detainers_issued"]
    assert band["low"] <= band["median"] <= band["high"] and band["low"] < band["high"]


def test_bad_comparisons_are_refused():
    with pytest.raises(ValueError, match="baseline"):
        compare("CT", START, END, POLICIES[:2], baseline="ct/doc-2014")
    with pytest.raises(ValueError, match="field policy"):
        compare("CT", START, END, ("ct/new-haven/general-order-06-2",))


def test_compare_cli_json(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "compare", "--place", "09001", "--start", "2013-06-01", "--end", "2013-12-31",
            "--policies", "us/ice-request,ct/trust-act-2013", "--replications", "2", "--json",
            "--csv", str(tmp_path / "table.csv"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["baseline"] == "us/ice-request"
    assert set(report["policies"]["ct/trust-act-2013"]["detainers_honored"]) == {"median", "low", "high"}
    assert "09001" in report["counties"]["us/ice-request"]
    assert (tmp_path / "table.csv").read_text().startswith("policy,metric,median,low,high")


CHARTS = ("funnel", "criminal-history", "holds", "hold-hours", "citizens", "cost", "counties")


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and (os.environ.get("CI") or os.environ.get("SECURECOMM_REQUIRE_BROWSER")):
        pytest.fail("Chromium is required (make test installs Debian's chromium) but was not found")
    return found


def test_report_renders_offline_in_headless_chromium(tmp_path, repo):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (make test installs it)")
    comparison = compare("CT", START, END, POLICIES, replications=2, seed=3, effects=select_effects(True, "all"))
    html = render_report(comparison.plan, comparison.summary, comparison.counties, load_parameters())
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"https?:", html), "the report must not fetch anything"
    report = tmp_path / "report.html"
    write_report(report, html)
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # No network: every host resolves to nothing.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
    ]
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    for chart in CHARTS:
        match = re.search(rf'<div id="chart-{chart}"[^>]*class="([^"]*)"', dom)
        assert match and "js-plotly-plot" in match.group(1), f"chart {chart} did not render"
    assert dom.count('class="main-svg"') >= len(CHARTS)
    # What it does to communities: each effect's study, evidence, a band per policy and a plain sentence.
    section = dom[dom.index('id="section-effects"') : dom.index("The policies and their law")]
    for name in studies().effects:
        assert f'id="effect-{name}"' in section, name
    victimization = section[section.index('id="effect-hispanic_victimization"') :]
    victimization = victimization[: victimization.index("</tr>", victimization.index('class="meaning"'))]
    assert "Gonçalves" in victimization and "default" in victimization and "partly confirmed" in victimization
    assert victimization.count('class="band"') >= 2 * len(POLICIES)  # a band per policy, and whether it applies
    assert re.search(r"About [\d,]+ more crimes against Hispanic residents of CT aged 12 and over", victimization)
    assert re.search(r"[\d,]+ to [\d,]+", victimization)
    assert "scenario" in section[section.index('id="effect-mental_health"') :]
    assert "The law, clause by clause" in dom
    screenshots = repo / "tests" / "output"
    screenshots.mkdir(exist_ok=True)
    screenshot = screenshots / "compare-report.png"
    subprocess.run(
        [chromium, *flags, "--window-size=1200,3000", f"--screenshot={screenshot}", report.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert screenshot.stat().st_size > 50_000
