"""The quarterly transparency report: what the desk received and did in a quarter.

Counts only — no personal data — so auditors and the public may read it. The cohort is the
detainers *received* in the quarter (by local date); what happened to them since is counted
as of the moment the report is made (`as_of`), so an open hold counts its hours so far.
JSON is the source; CSV (one row per number) and a printable HTML page are views of it.

The profiling indicator (issue #15) is `model.profiling.profiling_indicator` — the one definition
replay uses too — on the quarter's cases by month received, beside Irving's pattern, which is
descriptive (its caveat travels with it).
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Any

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from securecomm.core.cases import to_tables
from securecomm.core.places import activation_date, resolve_place
from securecomm.desk.models import DeskSettings, Detainer, Event, PolicyPeriod
from securecomm.law.holdclock import CALENDAR_YEARS
from securecomm.law.loader import load_policy
from securecomm.model.profiling import IRVING, profiling_indicator

QUARTER_PATTERN = r"^[0-9]{4}Q[1-4]$"
DECISIONS = ("honor", "decline", "review")
CSV_COLUMNS = ("quarter", "section", "policy_id", "rule", "citation", "detainer_form", "month", "metric", "value")
PROFILING_COUNTS = ("detainers", "with_charges", "minor_only", "minor_only_share")
PROFILING_DEFINITION = (
    "Detainers on people booked only for minor charges: the most serious current charge is not a felony, or is "
    "a traffic offense (the simulation's MINOR_CHARGES); cases without a current charge are left out of the "
    "share. By the month the detainer was received."
)


@dataclass(frozen=True)
class Quarter:
    year: int
    number: int

    @property
    def label(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, 3 * self.number - 2, 1)

    @property
    def end(self) -> dt.date:
        """The first day after the quarter."""
        return dt.date(self.year + 1, 1, 1) if self.number == 4 else dt.date(self.year, 3 * self.number + 1, 1)


def parse_quarter(text: str) -> Quarter:
    """`2014Q1` → Quarter(2014, 1); ValueError with the reason otherwise."""
    if not re.fullmatch(QUARTER_PATTERN, text):
        raise ValueError(f"must look like 2014Q1 (a year, Q, and 1–4), not {text!r}")
    year, number = int(text[:4]), int(text[5])
    if year not in CALENDAR_YEARS:
        raise ValueError(f"the year must be in {CALENDAR_YEARS.start}–{CALENDAR_YEARS.stop - 1}")
    return Quarter(year, number)


def _hours(start: dt.datetime, end: dt.datetime) -> float:
    return max(0.0, (end - start).total_seconds() / 3600)


def _tally(rows: list[Detainer]) -> dict[str, int]:
    decisions = Counter(row.decision for row in rows)
    return {
        "received": len(rows),
        "honored": decisions["honor"],
        "declined": decisions["decline"],
        "awaiting_review": decisions["review"],
    }


def _activation(place: str | None) -> dt.date | None:
    """The day Secure Communities began in the desk's place, when all its counties share one."""
    if place is None:
        return None
    try:
        dates = {activation_date(fips) for fips in resolve_place(place)}
    except ValueError:
        return None
    return dates.pop() if len(dates) == 1 else None


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def profiling(rows: list[Detainer], place: str | None) -> dict[str, Any]:
    """The profiling indicator of the quarter's detainers, by month received, with Irving's pattern
    beside it (descriptive: the reference, its status and caveat)."""
    cases = [{**json.loads(row.facts), "case_id": f"detainer:{row.id}"} for row in rows]
    activation = _activation(place)
    by_month = profiling_indicator(
        to_tables(cases, "case"), pl.Series([row.received_at for row in rows], dtype=pl.Datetime("us")), activation
    )
    months = [
        {**month, "month": month["month"].isoformat(), "minor_only_share": _round(month["minor_only_share"])}
        for month in by_month.iter_rows(named=True)
    ]
    with_charges = sum(month["with_charges"] for month in months)
    minor = sum(month["minor_only"] for month in months)
    return {
        "definition": PROFILING_DEFINITION,
        "activation": activation.isoformat() if activation else None,
        "quarter": {
            "detainers": len(rows),
            "with_charges": with_charges,
            "minor_only": minor,
            "minor_only_share": _share(minor, with_charges),
        },
        "by_month": months,
        "reference": {
            "label": "Irving, TX (descriptive reference, not a benchmark)",
            "descriptive": True,
            "share": IRVING.share,
            "study": IRVING.study,
            "population": IRVING.population,
            "status": IRVING.status,
            "caveat": IRVING.caveat,
            "url": IRVING.url,
        },
    }


def _round(share: float | None) -> float | None:
    return None if share is None else round(share, 4)


def quarterly_report(
    session: Session, quarter: Quarter, as_of: dt.datetime, title: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """The report for one quarter as a JSON-ready dict (datetimes as ISO text).

    `title`: a policy's title by the id a period records — the desk's own lookup, which also knows the
    files registered with `desk add-policy` (`file:NAME`); by default the library's."""
    title = title or (lambda policy_id: load_policy(policy_id).title)
    settings = session.get(DeskSettings, 1)
    start = dt.datetime.combine(quarter.start, dt.time())
    end = dt.datetime.combine(quarter.end, dt.time())
    rows = list(
        session.execute(
            select(Detainer).where(Detainer.received_at >= start, Detainer.received_at < end).order_by(Detainer.id)
        ).scalars()
    )
    notifications = session.execute(
        select(func.count(Event.id))
        .join(Detainer, Detainer.id == Event.detainer_id)
        .where(Event.kind == "ice_notified", Detainer.received_at >= start, Detainer.received_at < end)
    ).scalar_one()

    totals = _tally(rows)
    totals["sent_to_review"] = sum(row.auto_decision == "review" for row in rows)
    totals["reviewed"] = sum(row.reviewed_by is not None for row in rows)
    totals["reviewed_honored"] = sum(row.reviewed_by is not None and row.decision == "honor" for row in rows)
    totals["reviewed_declined"] = sum(row.reviewed_by is not None and row.decision == "decline" for row in rows)
    totals["ice_notifications"] = notifications

    by_rule: dict[tuple[str, str, str], list[Detainer]] = defaultdict(list)
    by_form: dict[str, list[Detainer]] = defaultdict(list)
    for row in rows:
        # The layer that decided (a detainer recorded before layers: the desk's policy, the only one then).
        by_rule[(row.decided_by or row.policy_id, row.rule, row.citation)].append(row)
        by_form[row.detainer_form or "not stated"].append(row)

    holds = {
        "holds_begun": 0,
        "hold_hours": 0.0,
        "holds_open": 0,
        "holds_past_deadline": 0,
        "transferred_to_ice": 0,
        "released": 0,
        "held_past_release_eligibility_without_honored_detainer": 0,
        "hours_held_without_honored_detainer": 0.0,
    }
    for row in rows:
        holds["transferred_to_ice"] += row.custody == "picked_up_by_ice"
        holds["released"] += row.custody == "released"
        eligible = row.release_eligible_at
        if eligible is None or eligible > as_of:
            continue
        custody_end = row.custody_ended_at if row.custody_ended_at is not None else as_of
        held = _hours(eligible, custody_end)
        if row.decision == "honor" and row.hold_until is not None:
            holds["holds_begun"] += 1
            holds["hold_hours"] += held
            holds["holds_open"] += row.custody == "in_custody"
            holds["holds_past_deadline"] += custody_end > row.hold_until
        elif held > 0:
            holds["held_past_release_eligibility_without_honored_detainer"] += 1
            holds["hours_held_without_honored_detainer"] += held
    holds["hold_hours"] = round(holds["hold_hours"], 2)
    holds["hours_held_without_honored_detainer"] = round(holds["hours_held_without_honored_detainer"], 2)

    periods = session.execute(select(PolicyPeriod).order_by(PolicyPeriod.effective_from)).scalars().all()
    in_quarter = [
        period
        for index, period in enumerate(periods)
        if period.effective_from < quarter.end
        and (index + 1 == len(periods) or periods[index + 1].effective_from > quarter.start)
    ]
    return {
        "jurisdiction": settings.jurisdiction if settings else None,
        "quarter": quarter.label,
        "period": {"from": quarter.start.isoformat(), "to": (quarter.end - dt.timedelta(days=1)).isoformat()},
        "as_of": as_of.isoformat(timespec="seconds"),
        "policies": [
            {
                "policy_id": period.policy_id,
                "title": title(period.policy_id),
                "effective_from": period.effective_from.isoformat(),
            }
            for period in in_quarter
        ],
        "detainers": totals,
        "by_rule": [
            {"policy_id": policy_id, "rule": rule, "citation": citation, **_tally(group)}
            for (policy_id, rule, citation), group in sorted(by_rule.items(), key=lambda item: -len(item[1]))
        ],
        "by_form": [
            {"detainer_form": form, **_tally(group)} for form, group in sorted(by_form.items(), key=lambda x: x[0])
        ],
        "holds": holds,
        "profiling": profiling(rows, settings.place if settings else None),
    }


def report_csv(report: dict[str, Any]) -> str:
    """One row per number: quarter, section, the grouping columns, metric, value."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    quarter = report["quarter"]
    for metric, value in report["detainers"].items():
        writer.writerow({"quarter": quarter, "section": "detainers", "metric": metric, "value": value})
    # The detainers by rule and by form: a row per count, with the columns that name the group.
    for section, grouped_by in (("by_rule", ("policy_id", "rule", "citation")), ("by_form", ("detainer_form",))):
        for row in report[section]:
            group = {column: row[column] for column in grouped_by}
            for metric in ("received", "honored", "declined", "awaiting_review"):
                writer.writerow(
                    {"quarter": quarter, "section": section, **group, "metric": metric, "value": row[metric]}
                )
    for metric, value in report["holds"].items():
        writer.writerow({"quarter": quarter, "section": "holds", "metric": metric, "value": value})
    indicator = report["profiling"]
    for metric in PROFILING_COUNTS:
        writer.writerow(
            {"quarter": quarter, "section": "profiling", "metric": metric, "value": indicator["quarter"][metric]}
        )
    for month in indicator["by_month"]:
        for metric in PROFILING_COUNTS:
            writer.writerow(
                {
                    "quarter": quarter,
                    "section": "profiling_by_month",
                    "month": month["month"],
                    "metric": metric,
                    "value": month[metric],
                }
            )
    writer.writerow(
        {
            "quarter": quarter,
            "section": "profiling_reference",
            "citation": f"{indicator['reference']['label']}: {indicator['reference']['study']}",
            "metric": "minor_only_share",
            "value": indicator["reference"]["share"],
        }
    )
    return buffer.getvalue()


def _cell(value: Any) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return f'<td class="n">{value}</td>' if numeric else f"<td>{html.escape(str(value))}</td>"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(cell) for cell in row) + "</tr>" for row in rows)
    if not rows:
        body = f'<tr><td colspan="{len(headers)}">none</td></tr>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _label(metric: str) -> str:
    text = " ".join("ICE" if word == "ice" else word for word in metric.split("_"))
    return text[:1].upper() + text[1:]


def report_html(report: dict[str, Any]) -> str:
    """A self-contained printable page (no scripts, no external files)."""
    template = Template((resources.files("securecomm.desk") / "templates" / "quarterly_report.html").read_text("utf-8"))
    counts = ["received", "honored", "declined", "awaiting_review"]
    return template.substitute(
        title=html.escape(f"{report['jurisdiction']} — detainer report {report['quarter']}"),
        jurisdiction=html.escape(str(report["jurisdiction"])),
        quarter=html.escape(report["quarter"]),
        period_from=html.escape(report["period"]["from"]),
        period_to=html.escape(report["period"]["to"]),
        as_of=html.escape(report["as_of"]),
        policies=_table(
            ["Policy", "Title", "In force from"],
            [[p["policy_id"], p["title"], p["effective_from"]] for p in report["policies"]],
        ),
        detainers=_table(["", "Count"], [[_label(k), v] for k, v in report["detainers"].items()]),
        by_rule=_table(
            ["Policy", "Rule", "Citation", *[_label(c) for c in counts]],
            [[r["policy_id"], r["rule"], r["citation"], *[r[c] for c in counts]] for r in report["by_rule"]],
        ),
        by_form=_table(
            ["Detainer form", *[_label(c) for c in counts]],
            [[r["detainer_form"], *[r[c] for c in counts]] for r in report["by_form"]],
        ),
        holds=_table(["", "Value"], [[_label(k), v] for k, v in report["holds"].items()]),
        profiling=_profiling_html(report["profiling"]),
    )


def _profiling_html(indicator: dict[str, Any]) -> str:
    reference = indicator["reference"]
    months = _table(
        ["Month received", "Months from activation", "Detainers", "With a current charge", "Minor only", "Share"],
        [
            [
                month["month"][:7],
                "—" if month["months_from_activation"] is None else month["months_from_activation"],
                month["detainers"],
                month["with_charges"],
                month["minor_only"],
                "—" if month["minor_only_share"] is None else f"{month['minor_only_share']:.1%}",
            ]
            for month in indicator["by_month"]
        ],
    )
    quarter = indicator["quarter"]
    share = "—" if quarter["minor_only_share"] is None else f"{quarter['minor_only_share']:.1%}"
    return (
        f"<p>{html.escape(indicator['definition'])}</p>"
        + _table(
            ["", "Value"],
            [
                ["Detainers received", quarter["detainers"]],
                ["With a current charge", quarter["with_charges"]],
                ["Booked only for minor charges", quarter["minor_only"]],
                ["Share of those with a charge", share],
            ],
        )
        + months
        + f'<p class="reference"><strong>{html.escape(reference["label"])}: {reference["share"]:.0%}</strong> — '
        f"{html.escape(reference['population'])}. {html.escape(reference['study'])}. "
        f"<em>{html.escape(reference['caveat'])}</em></p>"
    )
