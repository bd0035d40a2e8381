"""A replay in words and numbers: the notes that explain its figures, and the whole result as JSON.

The tables a reader checks are drawn by the command line (securecomm/cli/replay.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

import polars as pl

from securecomm.model.profiling import IRVING
from securecomm.replay.actual import ACTUAL_OUTCOMES
from securecomm.replay.run import Replay

DECISION_NOTE = (
    "honor: the policy allows the jail to hold the person for ICE; decline: it requires release; review: the "
    "policy turns on a determination the records do not contain (such as an official's finding of a public-safety "
    "risk), so the case cannot be decided from them."
)
HOLD_NOTE = (
    "hold-hours allowed: for honored cases whose release-eligibility time is known, the clock hours from that time "
    "to the policy's hold deadline (48 hours excluding weekends and federal holidays can span 96 clock hours). It is "
    "the most the policy permits, not what ICE would have used."
)
NO_HOLD_NOTE = "hold-hours: no case has a known release-eligibility time, so no hold deadline can be computed."
HELD_NOTE = (
    "held past release eligibility (records): of the cases whose release-eligibility time is known, those whose "
    "booking ended later than that moment, with the total and median of those hours, as the source's own times show."
)
TRANSFER_NOTE = (
    "moved to another agency's custody: the person went to a prison, another jail or a federal agency and the "
    "detainer went with them; a policy's decision shows what it would have allowed had the person been released here."
)


PROFILING_NOTE = (
    "detainers on people booked only for minor charges: by month of booking, the share of the detainers whose "
    "most serious current charge is a misdemeanor, an infraction or a traffic offense (cases without a charge in the "
    f"records left out), beside the {IRVING.share:.0%} of {IRVING.study}. {IRVING.caveat}"
)


def reading_notes(replay: Replay) -> list[str]:
    """The notes that explain the numbers shown, and only those."""
    notes = [DECISION_NOTE]
    known = replay.imported.provenance.get_column("release_eligible_at").is_not_null().any()
    notes.append(HOLD_NOTE if known else NO_HOLD_NOTE)
    if replay.profiling.get_column("with_charges").sum():
        notes.append(PROFILING_NOTE)
    if replay.actual is not None:
        outcomes = set(replay.actual.get_column("actual_outcome").to_list())
        if replay.actual.get_column("release_time_known").sum():
            notes.append(HELD_NOTE)
        if "transferred" in outcomes:
            notes.append(TRANSFER_NOTE)
    return notes


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):  # a datetime too
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def _records(frame: pl.DataFrame | None) -> list[dict[str, Any]] | None:
    return None if frame is None else _jsonable(frame.to_dicts())


def to_json(replay: Replay) -> dict[str, Any]:
    """The same numbers as the tables, plus every quality issue."""
    imported = replay.imported
    provenance = imported.provenance
    report = imported.qa
    return {
        "source": {
            "file": imported.source.name,
            "format": imported.format,
            "title": imported.title,
            "rows": imported.rows.height,
            "cases": imported.case_count,
            "row_roles": dict(imported.rows.group_by("role").len().sort("role").iter_rows()),
            "release_time_known": int(provenance.get_column("release_eligible_at").is_not_null().sum()),
            "incomplete_cases": int((~provenance.get_column("complete")).sum()),
            "likely_duplicates": int(provenance.get_column("likely_duplicate").sum()),
        },
        "quality": [
            {
                "check": result.check.name,
                "description": result.check.description,
                "unit": result.check.unit,
                "count": result.count,
                "total": result.total,
                "status": result.status,
                "warn": result.check.warn,
                "stop": result.check.stop,
            }
            for result in report.results()
        ],
        "issues": _records(report.issues),
        "policies": _records(replay.summary),
        "actual": _records(replay.actual),
        "actual_vs_policy": _records(replay.versus),
        "actual_outcome_labels": ACTUAL_OUTCOMES,
        "profiling": {
            "by_month": _records(replay.profiling),
            "activation": None if replay.activation is None else replay.activation.to_dict(),
            "reference": asdict(IRVING),
            "descriptive": True,
        },
        "notes": reading_notes(replay),
        "limitations": list(imported.limitations),
    }
