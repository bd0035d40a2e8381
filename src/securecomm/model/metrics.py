"""The metrics of docs/design.md §6, from a simulation's segments and records.

Counts that never branch (bookings, fingerprints checked, IDENT matches) come from the
county segments; everything from the detainer on comes from the records.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

METRICS = (
    "bookings",
    "fingerprints_checked",
    "ident_matches",
    "detainers_issued",
    "detainers_honored",
    "detainers_declined",
    "detainers_review",
    "hold_hours",
    "transfers_to_ice",
    "removals",
    "removals_level1",
    "removals_level2",
    "removals_level3",
    "removals_noncriminal",
    "removals_no_record_or_first_offense",
    "us_citizens_held",
    "jail_cost_usd",
)
EXTRA_METRICS = ("field_arrests",)
ALL_METRIC_LABELS = {
    "bookings": "Jail bookings",
    "fingerprints_checked": "Fingerprints checked in IDENT",
    "ident_matches": "IDENT matches",
    "detainers_issued": "Detainers issued",
    "detainers_honored": "Detainers honored",
    "detainers_declined": "Detainers declined",
    "detainers_review": "Detainers sent to review",
    "hold_hours": "Hours held on detainers",
    "transfers_to_ice": "Transfers to ICE",
    "removals": "Removals (by the end date)",
    "removals_level1": "Removals: Level 1 (aggravated felony or 2+ felonies)",
    "removals_level2": "Removals: Level 2 (a felony or 3+ misdemeanors)",
    "removals_level3": "Removals: Level 3 (misdemeanors)",
    "removals_noncriminal": "Removals: no conviction on record",
    "removals_no_record_or_first_offense": "Removals: no record or a first offense",
    "us_citizens_held": "U.S. citizens held",
    "jail_cost_usd": "Jail cost of holds (USD)",
    "field_arrests": "Street arrests on ICE warrants",
}
SEGMENT_METRICS = ("bookings", "fingerprints_checked", "ident_matches", "field_arrests")
CHANNELS = ("secure_communities", "other_routes")


def record_metric_expressions(end: dt.date, daily_cost: float) -> list[pl.Expr]:
    """Per-group sums over outcome records (one row per record that reached IDENT or another route)."""
    removed_by_end = pl.col("removed") & (pl.col("removal_at") < pl.lit(end + dt.timedelta(days=1)).cast(pl.Datetime))
    issued = pl.col("detainer_issued")
    return [
        issued.sum().alias("detainers_issued"),
        (issued & (pl.col("jail_decision") == "honor")).sum().alias("detainers_honored"),
        (issued & (pl.col("jail_decision") == "decline")).sum().alias("detainers_declined"),
        (issued & (pl.col("jail_decision") == "review")).sum().alias("detainers_review"),
        pl.col("hold_hours").sum().alias("hold_hours"),
        pl.col("transferred").sum().alias("transfers_to_ice"),
        removed_by_end.sum().alias("removals"),
        (removed_by_end & (pl.col("ice_level") == "level_1")).sum().alias("removals_level1"),
        (removed_by_end & (pl.col("ice_level") == "level_2")).sum().alias("removals_level2"),
        (removed_by_end & (pl.col("ice_level") == "level_3")).sum().alias("removals_level3"),
        (removed_by_end & (pl.col("ice_level") == "non_criminal")).sum().alias("removals_noncriminal"),
        (removed_by_end & (pl.col("known_convictions") <= 1)).sum().alias("removals_no_record_or_first_offense"),
        (pl.col("held") & pl.col("status").is_in(["naturalized", "native"])).sum().alias("us_citizens_held"),
        (pl.col("hold_hours").sum() / 24 * daily_cost).alias("jail_cost_usd"),
    ]


def county_months(segments: pl.DataFrame, records: pl.DataFrame, end: dt.date, daily_cost: float) -> pl.DataFrame:
    """Every metric per county and calendar month (records by month of booking)."""
    segment_counts = (
        segments.with_columns(month=pl.col("segment_start").dt.truncate("1mo"))
        .group_by("fips", "month")
        .agg(pl.col(name).sum() for name in SEGMENT_METRICS)
    )
    record_counts = (
        records.with_columns(pl.col("fips").cast(pl.String), month=pl.col("booking_at").dt.date().dt.truncate("1mo"))
        .group_by("fips", "month")
        .agg(record_metric_expressions(end, daily_cost))
    )
    joined = segment_counts.join(record_counts, on=["fips", "month"], how="full", coalesce=True)
    return (
        joined.with_columns(pl.col(name).fill_null(0) for name in (*METRICS, *EXTRA_METRICS))
        .select("fips", "month", *METRICS, *EXTRA_METRICS)
        .sort("fips", "month")
    )


def totals(table: pl.DataFrame) -> dict[str, float]:
    """Sum every metric column of a table into a plain dict (ints where whole)."""
    sums = table.select(pl.col(name).sum() for name in (*METRICS, *EXTRA_METRICS)).row(0, named=True)
    return {
        name: (int(value) if name not in ("hold_hours", "jail_cost_usd") else round(float(value), 2))
        for name, value in sums.items()
    }


def channel_totals(
    records: pl.DataFrame, segments: pl.DataFrame, end: dt.date, daily_cost: float
) -> dict[str, dict[str, float]]:
    """Record metrics per channel; IDENT matches belong to Secure Communities alone."""
    result = {}
    for channel in CHANNELS:
        subset = records.filter(pl.col("channel") == channel)
        row = subset.select(record_metric_expressions(end, daily_cost)).row(0, named=True)
        values = {
            name: (round(float(v or 0), 2) if name in ("hold_hours", "jail_cost_usd") else int(v or 0))
            for name, v in row.items()
        }
        values["ident_matches"] = (
            int(segments.get_column("ident_matches").sum()) if channel == "secure_communities" else 0
        )
        result[channel] = values
    return result
