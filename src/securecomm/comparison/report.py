"""The comparison report: one self-contained HTML file a county supervisor can read.

Plotly's JavaScript is inlined (nothing is fetched: the machine may be offline), every
chart has its data as a CSV download beside it, and the report ends with each policy's
rules and citations, the parameters and their sources, and how to reproduce the numbers.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
import polars as pl
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from securecomm.core.places import counties as county_table
from securecomm.law.explain import clause_table, describe_condition
from securecomm.law.loader import load_policy
from securecomm.model.metrics import METRICS, REPORTED
from securecomm.model.parameters import Parameters
from securecomm.model.replications import HISTORICAL, ReplicationPlan, Summary
from securecomm.model.stages.effects import Effect, studies

FUNNEL = (
    "bookings",
    "fingerprints_checked",
    "ident_matches",
    "detainers_issued",
    "detainers_honored",
    "transfers_to_ice",
    "removals",
)
CRIMINAL_HISTORY = (
    "removals_level1",
    "removals_level2",
    "removals_level3",
    "removals_noncriminal",
    "removals_no_record_or_first_offense",
)
HOLD_DECISIONS = ("detainers_honored", "detainers_declined", "detainers_review")
COUNTY_RANKING_METRIC = "transfers_to_ice"
COUNTIES_SHOWN = 30


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    description: str
    figure_json: str
    csv: str  # the chart's data

    @property
    def csv_name(self) -> str:
        return f"{self.id}.csv"

    @property
    def csv_href(self) -> str:
        """The data as a link the report carries inside itself."""
        return "data:text/csv;base64," + base64.b64encode(self.csv.encode()).decode()


def _policy_label(policy: str) -> str:
    return "historical timeline" if policy == HISTORICAL else policy


def _bands(summary: Summary, metrics: tuple[str, ...]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"policy": policy, "metric": metric, **summary.levels[policy][metric]}
            for policy in summary.levels
            for metric in metrics
        ]
    )


def _grouped_bars(
    summary: Summary, metrics: tuple[str, ...], *, log_axis: bool = False, y_title: str = ""
) -> go.Figure:
    figure = go.Figure()
    for policy in summary.levels:
        medians = [summary.levels[policy][m]["median"] for m in metrics]
        figure.add_bar(
            name=_policy_label(policy),
            x=[METRICS[m].short_label for m in metrics],
            y=medians,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [summary.levels[policy][m]["high"] - v for m, v in zip(metrics, medians, strict=True)],
                "arrayminus": [v - summary.levels[policy][m]["low"] for m, v in zip(metrics, medians, strict=True)],
            },
        )
    figure.update_layout(
        barmode="group",
        yaxis={"type": "log" if log_axis else "linear", "title": y_title},
        legend={"orientation": "h", "y": -0.25},
        margin={"t": 20, "b": 20},
        height=460,
    )
    return figure


def _chart(chart_id: str, title: str, description: str, figure: go.Figure, data: pl.DataFrame) -> Chart:
    return Chart(chart_id, title, description, figure.to_json(), data.write_csv())


@dataclass(frozen=True)
class MetricBars:
    """A chart of metrics side by side, a bar per policy (its median, the 90% band as error bars); its data is
    each policy's median and band of those metrics and of `also_in_data`."""

    id: str
    title: str
    description: str
    metrics: tuple[str, ...]
    y_title: str
    log_axis: bool = False
    also_in_data: tuple[str, ...] = ()

    def chart(self, summary: Summary) -> Chart:
        figure = _grouped_bars(summary, self.metrics, log_axis=self.log_axis, y_title=self.y_title)
        return _chart(self.id, self.title, self.description, figure, _bands(summary, self.metrics + self.also_in_data))


# The report's charts of metrics, in the report's order (the county chart follows them).
METRIC_BARS = (
    MetricBars(
        "funnel",
        "The pipeline, stage by stage",
        "From every booking to removal, per policy (median; bars show the 90% band). Log scale: bookings "
        "outnumber removals by orders of magnitude.",
        FUNNEL,
        "people (log scale)",
        log_axis=True,
    ),
    MetricBars(
        "criminal-history",
        "Who is removed: criminal history",
        "Removals by ICE's Secure Communities level (Morton, June 2010) on the record ICE saw, and removals of "
        "people with no record or a single prior conviction.",
        CRIMINAL_HISTORY,
        "removals",
    ),
    MetricBars(
        "holds",
        "Holds on detainers",
        "Detainers honored, and hours people were held past release eligibility.",
        HOLD_DECISIONS,
        "detainers",
        also_in_data=("hold_hours",),
    ),
    MetricBars(
        "hold-hours",
        "Hours held",
        "Total hours held on detainers past the moment of release eligibility.",
        ("hold_hours",),
        "hours",
    ),
    MetricBars(
        "citizens",
        "U.S. citizens held",
        "Naturalized and native-born citizens held on a detainer after a wrong match or a wrong status determination.",
        ("us_citizens_held",),
        "people",
    ),
    MetricBars(
        "cost",
        "Jail cost of holds",
        "Hours held × the jail's daily cost (parameter jail_daily_cost_usd).",
        ("jail_cost_usd",),
        "USD",
    ),
)


def _county_chart(summary: Summary, counties: pl.DataFrame) -> Chart | None:
    if counties.get_column("fips").n_unique() < 2:
        return None
    names = county_table().select("fips", pl.concat_str("name", pl.lit(", "), "state").alias("county"))
    table = counties.join(names, on="fips", how="left").select("policy", "fips", "county", COUNTY_RANKING_METRIC)
    baseline = table.filter(pl.col("policy") == summary.baseline).sort(COUNTY_RANKING_METRIC, descending=True)
    shown = baseline.head(COUNTIES_SHOWN).get_column("fips").to_list()
    figure = go.Figure()
    for policy in summary.levels:
        rows = table.filter(pl.col("policy") == policy).filter(pl.col("fips").is_in(shown))
        ordered = {row["fips"]: row for row in rows.to_dicts()}
        figure.add_bar(
            name=_policy_label(policy),
            y=[ordered[fips]["county"] for fips in reversed(shown)],
            x=[ordered[fips][COUNTY_RANKING_METRIC] for fips in reversed(shown)],
            orientation="h",
        )
    figure.update_layout(barmode="group", height=max(400, 28 * len(shown) * max(1, len(summary.levels)) // 2))
    return _chart(
        "counties",
        f"Transfers to ICE by county (median), the {len(shown)} highest under the baseline",
        "Counties ranked by the baseline's median transfers to ICE; each bar is one policy.",
        figure,
        table.sort("policy", COUNTY_RANKING_METRIC, descending=[False, True]),
    )


def policy_sections(policies: tuple[str, ...]) -> list[dict[str, Any]]:
    """Each policy's rules in plain English with citations (the historical timeline is described)."""
    sections = []
    for policy_id in policies:
        if policy_id == HISTORICAL:
            sections.append(
                {
                    "id": HISTORICAL,
                    "title": "The historical timeline",
                    "summary": "Each county's jails follow the library's policies on their real effective dates; where "
                    "several apply, the strictest governs (see securecomm.law.timeline).",
                    "rules": [],
                    "hold": "",
                    "references": [],
                    "clauses": [],
                }
            )
            continue
        policy = load_policy(policy_id)
        question = policy.questions[0]
        sections.append(
            {
                "id": policy.id,
                "title": policy.title,
                "summary": f"{policy.jurisdiction.name} · {policy.status} · effective {policy.effective or '—'}. "
                f"Default: {question.default.decision} — {question.default.text} ({question.default.citation}).",
                "rules": [
                    {
                        "decision": rule.decision,
                        "text": rule.text,
                        "citation": rule.citation,
                        "reads": describe_condition(rule.condition, policy),
                    }
                    for rule in question.rules
                ],
                "hold": f"{policy.hold.describe()} ({policy.hold.citation})" if policy.hold else "no hold",
                "references": [{"cite": ref.cite, "title": ref.title, "url": ref.url} for ref in policy.references],
                "clauses": [asdict(row) for row in clause_table(policy)],
            }
        )
    return sections


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 160 else text[:157] + "…"


def parameter_rows(parameters: Parameters) -> list[dict[str, Any]]:
    return [
        {
            "name": parameter.name,
            "value": "; ".join(
                f"{'from ' + str(start) + ': ' if start else ''}{_short(value)}"
                for start, value in parameter.dated_values
            ),
            "unit": parameter.unit,
            "fitted": parameter.calibrate,
            "assumption": parameter.assumption,
            "references": [{"title": ref.title, "url": ref.url} for ref in parameter.references],
        }
        for parameter in parameters.by_name.values()
    ]


def reproduce_snippet(plan: ReplicationPlan, baseline: str) -> str:
    policies = ", ".join(repr(p) for p in plan.policies)
    return (
        "import datetime as dt\n"
        "from securecomm.model.replications import ReplicationPlan, run_plan, summarize\n\n"
        f"plan = ReplicationPlan({plan.place!r}, dt.date.fromisoformat({plan.start.isoformat()!r}), "
        f"dt.date.fromisoformat({plan.end.isoformat()!r}),\n"
        f"                       ({policies},), replications={plan.replications}, seed={plan.seed}, "
        f"vary_parameters={plan.vary_parameters})\n"
        f"summary = summarize(run_plan(plan), baseline={baseline!r})\n"
        f"print(summary.levels[{baseline!r}]['detainers_honored'])\n"
    )


def report_charts(summary: Summary, counties: pl.DataFrame) -> list[Chart]:
    """The report's charts, each with its data: the HTML report's, and the web lab's."""
    charts = [bars.chart(summary) for bars in METRIC_BARS]
    county_chart = _county_chart(summary, counties)
    if county_chart is not None:
        charts.append(county_chart)
    return charts


def table_rows(summary: Summary) -> list[dict[str, Any]]:
    """The comparison table: per reported metric, each policy's level, band and difference from the baseline."""
    return [
        {
            "label": METRICS[metric].label,
            "cells": [
                {
                    "level": summary.levels[policy][metric],
                    "difference": summary.differences[policy][metric],
                    "is_baseline": policy == summary.baseline,
                }
                for policy in summary.levels
            ],
        }
        for metric in REPORTED
    ]


# How an effect's value reads in a sentence about the place, by the computation that made it: the
# value's format, and the sentence ({place}, {value}, {low}, {high}: the median and the 90% band).
COUNT, PERCENT_CHANGE = "{:,.0f}", "{:+.1f}%"
EFFECT_READINGS: dict[str, tuple[str, str]] = {
    "percent_of_log_points": (
        PERCENT_CHANGE,
        "Index crime in {place} changes by {value} (90% band {low} to {high}) where the program ran: a band around "
        "zero, so the evidence does not say the program made {place} safer or less safe.",
    ),
    "victimization": (
        COUNT,
        "About {value} more crimes against Hispanic residents of {place} aged 12 and over while the program ran "
        "(90% band {low} to {high}).",
    ),
    "reporting": (
        COUNT,
        "About {value} incidents against Hispanic victims in {place} that would have been reported to the police "
        "go unreported (90% band {low} to {high}).",
    ),
    "published_null": (
        COUNT,
        "The crimes the police of {place} count stay about the same: more crimes and less reporting cancel out, "
        "which is why police figures alone would miss both.",
    ),
    "elasticity_per_doubling": (
        PERCENT_CHANGE,
        "If detainees in {place} doubled, index crime would change by {value} (90% band {low} to {high}): no effect.",
    ),
    "percent_under_program": (
        PERCENT_CHANGE,
        "Over the period, {label} in {place} changes by {value} (the study's average, scaled to the time under the "
        "program).",
    ),
    "published_range": (PERCENT_CHANGE, "{label} in {place} rises by {value} (the study's published range)."),
    "percent_after": (PERCENT_CHANGE, "{label} in {place} changes by {value} after enforcement de-escalated."),
}


def place_name(place: str) -> str:
    """A county FIPS as the county's name (`New Haven County, CT`); any other place as given."""
    rows = county_table().filter(pl.col("fips") == place)
    return f"{rows['name'][0]}, {rows['state'][0]}" if rows.height else place


def evidence_strength(status: str) -> str:
    """`confirmed` when every part of a study's status was read in its own text (C), `partly confirmed`
    when some part was only in a secondary summary (S) or not found (U), else `unverified`."""
    marks = set(re.findall(r"\b([CSU])\b", status))
    if marks == {"C"}:
        return "confirmed"
    return "partly confirmed" if "C" in marks else "unverified"


def _estimate(effect: Effect) -> str:
    if effect.published_range is not None:
        return f"{effect.published_range[0]:+g} to {effect.published_range[1]:+g} ({effect.unit})"
    if effect.estimate is None:
        return f"{effect.direction} (direction only)"
    error = f", standard error {effect.standard_error:g}" if effect.standard_error is not None else ""
    return f"{effect.estimate:+g} {effect.unit}{error}"


def effects_intro(place: str, replications: int) -> Markup:
    """The paragraph that opens the section "What it does to communities" (HTML; the place escaped)."""
    bands = (
        "The 90% bands carry the study's own uncertainty (its standard error, drawn per replication) as well as the "
        "model's."
        if replications > 1
        else "A single run takes each study's estimate as published; its range is the study's own 90% interval (from "
        "its standard error) applied to the place, without the model's uncertainty: run replications for both."
    )
    return Markup(
        "Economists have measured, on the program's own staggered rollout, what Secure Communities did to the places "
        "that ran it. Each published estimate below is applied to {place}: its months under the program and its "
        "Hispanic residents. {bands} These are averages over the counties the studies observed, not measurements of "
        "{place} itself, and the studies did not measure local detainer policies: a policy column changes an effect "
        "only where a study says so. <strong>Default</strong> effects are the ones the evidence supports best; "
        "<strong>scenarios</strong> are labelled with their study and population. Evidence: <em>confirmed</em> = read "
        "in the study's own text (C), <em>partly confirmed</em> = some part only in a secondary summary (S) or not "
        "found (U); the status says which part."
    ).format(place=place, bands=bands)


def effect_rows(summary: Summary, place: str) -> list[dict[str, Any]]:
    """The section "What it does to communities": per effect its study, population, estimate and
    evidence, each policy's band, and what it means for the place (under the baseline)."""
    known = studies().effects
    rows = []
    for name, baseline in summary.effects.get(summary.baseline, {}).items():
        effect = known[name]
        value_format, sentence = EFFECT_READINGS.get(effect.computation, ("{:,.1f}", ""))
        band = baseline["band"]
        if not baseline["applies"] or band is None or not sentence:
            meaning = f"In {place}: {baseline['note']}."
        else:
            numbers = {key: value_format.format(band[key]) for key in ("median", "low", "high")}
            meaning = sentence.format(
                place=place,
                label=effect.label.lower(),
                value=numbers["median"],
                low=numbers["low"],
                high=numbers["high"],
            )
        cells = []
        for policy in summary.effects:
            row = summary.effects[policy][name]
            cells.append(
                {
                    "band": None
                    if row["band"] is None
                    else {key: value_format.format(value) for key, value in row["band"].items()},
                    "applies": row["applies"],
                    "note": row["note"],
                }
            )
        rows.append(
            {
                "name": name,
                "label": effect.label,
                "kind": effect.kind,
                "study": f"{effect.study}, {effect.table}",
                "population": effect.population,
                "period": effect.period,
                "estimate": _estimate(effect),
                "status": effect.status,
                "strength": evidence_strength(effect.status),
                "evidence_of": effect.evidence_of,
                "not_evidence_of": effect.not_evidence_of,
                "references": [{"title": ref.title, "url": ref.url} for ref in effect.references],
                "cells": cells,
                "meaning": meaning,
            }
        )
    return rows


def render_report(plan: ReplicationPlan, summary: Summary, counties: pl.DataFrame, parameters: Parameters) -> str:
    """The report as one HTML string."""
    template = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.files("securecomm.comparison") / "templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    ).get_template("report.html.j2")
    return template.render(
        plan=plan,
        baseline=summary.baseline,
        policies=[_policy_label(p) for p in summary.levels],
        table_rows=table_rows(summary),
        effects=effect_rows(summary, place_name(plan.place)),
        effects_intro=effects_intro(place_name(plan.place), plan.replications),
        place_name=place_name(plan.place),
        participation=[p.describe() for p in plan.participation],
        charts=report_charts(summary, counties),
        sections=policy_sections(plan.policies),
        parameters=parameter_rows(parameters),
        parameter_label=parameters.label,
        snippet=reproduce_snippet(plan, summary.baseline),
        generated=dt.date.today().isoformat(),
        plotly_js=get_plotlyjs(),
    )


def write_report(path: Path, html: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
