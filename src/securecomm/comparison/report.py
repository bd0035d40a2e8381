"""The comparison report: one self-contained HTML file a county supervisor can read.

Plotly's JavaScript is inlined (nothing is fetched: the machine may be offline), every
chart has its data as a CSV download beside it, and the report ends with each policy's
rules and citations, the parameters and their sources, and how to reproduce the numbers.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
import polars as pl
from plotly.offline import get_plotlyjs

from securecomm.core.places import counties as county_table
from securecomm.law.explain import clause_table, describe_condition
from securecomm.law.loader import load_policy
from securecomm.model.metrics import METRICS, REPORTED
from securecomm.model.parameters import Parameters
from securecomm.model.replications import HISTORICAL, ReplicationPlan, Summary

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
    charts = [
        _chart(
            "funnel",
            "The pipeline, stage by stage",
            "From every booking to removal, per policy (median; bars show the 90% band). Log scale: bookings "
            "outnumber removals by orders of magnitude.",
            _grouped_bars(summary, FUNNEL, log_axis=True, y_title="people (log scale)"),
            _bands(summary, FUNNEL),
        ),
        _chart(
            "criminal-history",
            "Who is removed: criminal history",
            "Removals by ICE's Secure Communities level (Morton, June 2010) on the record ICE saw, and removals of "
            "people with no record or a single prior conviction.",
            _grouped_bars(summary, CRIMINAL_HISTORY, y_title="removals"),
            _bands(summary, CRIMINAL_HISTORY),
        ),
        _chart(
            "holds",
            "Holds on detainers",
            "Detainers honored, and hours people were held past release eligibility.",
            _grouped_bars(
                summary, ("detainers_honored", "detainers_declined", "detainers_review"), y_title="detainers"
            ),
            _bands(summary, ("detainers_honored", "detainers_declined", "detainers_review", "hold_hours")),
        ),
        _chart(
            "hold-hours",
            "Hours held",
            "Total hours held on detainers past the moment of release eligibility.",
            _grouped_bars(summary, ("hold_hours",), y_title="hours"),
            _bands(summary, ("hold_hours",)),
        ),
        _chart(
            "citizens",
            "U.S. citizens held",
            "Naturalized and native-born citizens held on a detainer after a wrong match or a wrong status "
            "determination.",
            _grouped_bars(summary, ("us_citizens_held",), y_title="people"),
            _bands(summary, ("us_citizens_held",)),
        ),
        _chart(
            "cost",
            "Jail cost of holds",
            "Hours held × the jail's daily cost (parameter jail_daily_cost_usd).",
            _grouped_bars(summary, ("jail_cost_usd",), y_title="USD"),
            _bands(summary, ("jail_cost_usd",)),
        ),
    ]
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
