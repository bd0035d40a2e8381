"""Quality checks on imported records: every row that could not be mapped is reported, none dropped.

Each check counts the rows (or cases) it concerns and compares the share with two thresholds:
above `warn` the report says so; above `stop` the replay refuses to decide anything, because
answers built on that much unmapped data would mislead. A check without thresholds only informs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import polars as pl

Unit = Literal["rows", "cases"]
Status = Literal["ok", "info", "warn", "stop"]


@dataclass(frozen=True)
class Check:
    """One quality check: what it finds, over rows or cases, and its thresholds (shares, 0–1)."""

    name: str
    description: str
    unit: Unit
    warn: float | None = None
    stop: float | None = None
    # Whether the rows or cases it reports were left out of, or only partly taken into, the cases.
    unmapped: bool = False


# Shares are of rows or cases: warn above `warn`, refuse to decide above `stop`.
_UNMAPPED = {"warn": 0.0, "stop": 0.05, "unmapped": True}
CHECKS: dict[str, Check] = {
    check.name: check
    for check in (
        Check("unmapped_charge", "charge text that no rule of the category map recognises", "rows", **_UNMAPPED),
        Check("charge_without_level", "a charge whose level the source does not give", "rows", **_UNMAPPED),
        Check("unknown_disposition", "a release disposition missing from the mapping's table", "rows", **_UNMAPPED),
        Check("unmapped_conviction", "a conviction whose offence or date cannot be used", "rows", **_UNMAPPED),
        # ICE records no level; up to half the convictions of a release may lack the clues to one.
        Check(
            "conviction_level_unknown",
            "a conviction whose level cannot be told from the record",
            "rows",
            warn=0.0,
            stop=0.5,
            unmapped=True,
        ),
        Check("unknown_value", "a coded value missing from the importer's table", "rows", **_UNMAPPED),
        Check("redacted_value", "a redaction code, read as no value", "rows"),
        Check("duplicate_row", "a row repeating another row of the same case", "rows", warn=0.0),
        Check("released_before_booked", "a release time earlier than the booking time", "rows", warn=0.0),
        Check("released_after_booking_release", "a row released after its booking's release time", "rows", warn=0.0),
        Check("conflicting_fields", "two fields of a record that contradict each other", "rows", warn=0.0),
        Check("likely_duplicate", "a case that looks like another case of the source", "cases", warn=0.0),
        Check("no_charge", "a case with no criminal charge (only holds, or the detainer alone)", "cases"),
        Check("no_detainer_record", "a case without the row of the immigration detainer", "cases"),
        Check("release_time_unknown", "a case whose release-eligibility time cannot be derived", "cases"),
        Check("age_uncertain", "an age known only from a birth year that may be under 18", "cases"),
    )
}

ISSUE_SCHEMA = {
    "check": pl.String,
    "row": pl.UInt32,
    "case_id": pl.String,
    "column": pl.String,
    "value": pl.String,
    "message": pl.String,
}


def issues_frame(rows: Iterable[Mapping[str, object]] | pl.DataFrame) -> pl.DataFrame:
    """Issues as a table with the standard columns (missing ones null)."""
    if isinstance(rows, pl.DataFrame):
        frame = rows
    else:
        rows = list(rows)
        frame = pl.DataFrame(
            rows, schema={key: ISSUE_SCHEMA[key] for key in ISSUE_SCHEMA if any(key in r for r in rows)}
        )
    return frame.with_columns(
        pl.lit(None, dtype=dtype).alias(name) for name, dtype in ISSUE_SCHEMA.items() if name not in frame.columns
    ).select([pl.col(name).cast(dtype) for name, dtype in ISSUE_SCHEMA.items()])


def issues_where(
    frame: pl.DataFrame,
    check: str,
    message: pl.Expr,
    *,
    row: str,
    case_id: str,
    column: str | None = None,
    value: pl.Expr | None = None,
) -> pl.DataFrame:
    """Issues of one check, one per row of `frame` (already filtered to the rows concerned)."""
    return frame.select(
        pl.lit(check).alias("check"),
        pl.col(row).cast(pl.UInt32).alias("row"),
        pl.col(case_id).cast(pl.String).alias("case_id"),
        pl.lit(column, dtype=pl.String).alias("column"),
        (value if value is not None else pl.lit(None)).cast(pl.String).alias("value"),
        message.cast(pl.String).alias("message"),
    )


@dataclass(frozen=True)
class CheckResult:
    check: Check
    count: int
    total: int
    status: Status

    @property
    def share(self) -> float:
        return self.count / self.total if self.total else 0.0


@dataclass(frozen=True)
class QaReport:
    """Every issue found while importing, and each check's verdict against its thresholds."""

    issues: pl.DataFrame
    rows: int
    cases: int
    checks: dict[str, Check] = field(default_factory=lambda: dict(CHECKS))

    @classmethod
    def of(cls, names: Iterable[str], issues: pl.DataFrame, rows: int, cases: int) -> QaReport:
        """A report over the checks an importer runs (only those are shown, clean or not)."""
        names = list(names)
        unknown = sorted(set(issues.get_column("check").unique().to_list()) - set(names)) if issues.height else []
        if unknown:
            raise ValueError(f"issues of checks the importer does not declare: {unknown}")
        return cls(issues, rows, cases, {name: CHECKS[name] for name in names})

    def with_thresholds(self, overrides: Mapping[str, tuple[float | None, float | None]]) -> QaReport:
        checks = dict(self.checks)
        for name, (warn, stop) in overrides.items():
            checks[name] = replace(checks.get(name, CHECKS[name]), warn=warn, stop=stop)
        return replace(self, checks=checks)

    def results(self) -> list[CheckResult]:
        """Every check that found something, or that has thresholds (so a clean pass is shown too)."""
        counts = dict(self.issues.group_by("check").len().iter_rows()) if self.issues.height else {}
        results = []
        for name, check in self.checks.items():
            count = counts.get(name, 0)
            if count == 0 and check.warn is None and check.stop is None:
                continue
            if check.unit == "cases":
                affected = self.issues.filter(pl.col("check") == name).get_column("case_id").n_unique() if count else 0
            else:
                affected = count
            total = self.cases if check.unit == "cases" else self.rows
            results.append(CheckResult(check, affected, total, _status(check, affected, total)))
        return results

    def stopped(self) -> list[CheckResult]:
        return [result for result in self.results() if result.status == "stop"]

    def for_check(self, name: str) -> pl.DataFrame:
        return self.issues.filter(pl.col("check") == name)

    def incomplete_cases(self) -> set[str]:
        """Cases that an unmapped row left incomplete (they are decided on what could be mapped)."""
        names = [name for name, check in self.checks.items() if check.unmapped]
        found = self.issues.filter(pl.col("check").is_in(names) & pl.col("case_id").is_not_null())
        return set(found.get_column("case_id").to_list())


def _status(check: Check, count: int, total: int) -> Status:
    share = count / total if total else 0.0
    if check.stop is not None and count and share > check.stop:
        return "stop"
    if check.warn is not None and count and share > check.warn:
        return "warn"
    return "info" if count else "ok"


class QaStop(ValueError):
    """A quality check crossed its stop threshold: nothing is decided."""

    def __init__(self, report: QaReport, source: str) -> None:
        self.report = report
        lines = []
        for result in report.stopped():
            check = result.check
            rows = report.for_check(check.name).get_column("row").drop_nulls().to_list()
            listed = ", ".join(str(row) for row in rows[:20]) + (" …" if len(rows) > 20 else "")
            lines.append(
                f"{check.name}: {result.count} of {result.total} {check.unit} ({result.share:.0%}) — "
                f"{check.description}; stop threshold {check.stop:.0%}" + (f"; rows {listed}" if rows else "")
            )
        super().__init__(f"{source}: quality checks stopped the replay:\n  " + "\n  ".join(lines))
