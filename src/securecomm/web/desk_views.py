"""What the desk's pages draw: the countdown to a deadline, a detainer's hold window on a timeline
and the quarterly report's bar charts — SVG drawn on the server, with the numbers also in words."""

from __future__ import annotations

import datetime as dt
from typing import Any

TIMELINE_WIDTH = 720
TIMELINE_MARGIN = 40
BAR_WIDTH = 420


def _span(seconds: float) -> str:
    minutes = int(abs(seconds) // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def countdown(deadline_utc: dt.datetime | None, now_utc: dt.datetime) -> dict[str, Any] | None:
    """Time left until a deadline (a naive UTC instant), in words: `in 1 d 4 h`, `overdue by 3 h 5 min`.
    `utc` is the deadline in ISO form with `Z`, for the page's script to count down."""
    if deadline_utc is None:
        return None
    seconds = (deadline_utc - now_utc).total_seconds()
    overdue = seconds < 0
    return {
        "text": f"overdue by {_span(seconds)}" if overdue else f"in {_span(seconds)}",
        "overdue": overdue,
        "utc": deadline_utc.isoformat(timespec="seconds") + "Z",
    }


def timeline(detainer: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """A detainer's custody on one line: received, release eligibility, the hold window up to its
    deadline, the end of custody and now (local wall times), placed on an SVG of fixed width."""
    marks = [("received", "Received", detainer["received_at"])]
    if detainer["release_eligible_at"] is not None:
        marks.append(("eligible", "Release eligible", detainer["release_eligible_at"]))
    if detainer["hold_until"] is not None:
        marks.append(("deadline", "Hold deadline", detainer["hold_until"]))
    if detainer["custody_ended_at"] is not None:
        ended = "Transferred to ICE" if detainer["custody"] == "picked_up_by_ice" else "Released"
        marks.append(("ended", ended, detainer["custody_ended_at"]))
    else:
        marks.append(("now", "Now", now))
    first = min(when for _, _, when in marks)
    last = max(when for _, _, when in marks)
    total = max((last - first).total_seconds(), 3600.0)
    usable = TIMELINE_WIDTH - 2 * TIMELINE_MARGIN

    def x(when: dt.datetime) -> float:
        return round(TIMELINE_MARGIN + usable * (when - first).total_seconds() / total, 1)

    window = None
    if detainer["release_eligible_at"] is not None and detainer["hold_until"] is not None:
        start, end = x(detainer["release_eligible_at"]), x(detainer["hold_until"])
        window = {"x": start, "width": max(end - start, 2.0)}
    placed = [
        {"kind": kind, "label": label, "when": when, "x": x(when), "row": index % 2}
        for index, (kind, label, when) in enumerate(sorted(marks, key=lambda mark: mark[2]))
    ]
    return {"width": TIMELINE_WIDTH, "marks": placed, "window": window}


def bar_chart(title: str, bars: list[tuple[str, float]]) -> dict[str, Any]:
    """A horizontal bar chart: each bar's label, value and length (the longest fills the width)."""
    top = max((value for _, value in bars), default=0) or 1
    rows = [
        {"label": label, "value": value, "length": round(BAR_WIDTH * value / top, 1), "y": 28 * index}
        for index, (label, value) in enumerate(bars)
    ]
    return {"title": title, "rows": rows, "height": 28 * len(rows) + 4, "width": BAR_WIDTH}


def report_charts(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The quarterly report's charts: the quarter's decisions, and detainers by the rule that decided."""
    totals = report["detainers"]
    decisions = [
        ("Honored", totals.get("honored", 0)),
        ("Declined", totals.get("declined", 0)),
        ("Awaiting review", totals.get("awaiting_review", 0)),
    ]
    by_rule = [(f"{row['rule']} ({row['policy_id']})", row["received"]) for row in report["by_rule"]]
    by_form = [(row["detainer_form"], row["received"]) for row in report["by_form"]]
    charts = [bar_chart("Decisions on the quarter's detainers", decisions)]
    if by_rule:
        charts.append(bar_chart("Detainers by the rule that decided", by_rule))
    if by_form:
        charts.append(bar_chart("Detainers by form", by_form))
    return charts
