"""Replaying real records: every imported case decided under every policy, summed up, and set
beside what actually happened.

Hold-hours are the most a policy allows: for each honored case whose release-eligibility
time is known, the wall-clock hours from that time to the policy's hold deadline (a
48-business-hour hold that starts on a Thursday evening runs 96 clock hours). What the
records show the jail actually did is counted separately: the hours between release
eligibility and the booking's recorded release, where both are known.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from securecomm.core.places import activation_date, counties, resolve_place
from securecomm.law.compiler import compile_policy
from securecomm.law.loader import load_policy
from securecomm.law.model import Policy
from securecomm.model.profiling import profiling_indicator
from securecomm.replay.actual import ACTUAL_OUTCOMES
from securecomm.replay.ddp import import_ddp
from securecomm.replay.extract import import_extract
from securecomm.replay.imported import ImportedCases
from securecomm.replay.mapping import builtin_mapping_path, load_mapping
from securecomm.replay.qa import QaStop

BUILTIN_FORMATS: Final = ("ddp", "pierce")
MAPPING_PREFIX: Final = "mapping:"
DECISIONS: Final = ("honor", "decline", "review")
HOURS: Final = 3_600_000_000  # microseconds


class ReplayError(ValueError):
    """A request the replay cannot serve (unknown format, a policy that decides no detainers)."""


@dataclass(frozen=True)
class Replay:
    imported: ImportedCases
    policies: tuple[Policy, ...]
    decisions: pl.DataFrame
    summary: pl.DataFrame
    actual: pl.DataFrame | None
    versus: pl.DataFrame | None
    profiling: pl.DataFrame  # the profiling indicator by month (model/profiling.py)
    activation: Activation | None = None  # the day its months are counted from (None: by month only)


@dataclass(frozen=True)
class Activation:
    """The day Secure Communities began where the records come from, and how it was found."""

    day: dt.date
    source: str  # in words: given, or the place's date in the shipped table

    def to_dict(self) -> dict[str, str]:
        return {"date": self.day.isoformat(), "source": self.source}


def place_activation(place: str) -> Activation | None:
    """The activation date of a place (a county FIPS code or a state) in the shipped county table
    (core/data), when every county of it shares one; None when they differ."""
    fips = resolve_place(place)
    dates = {activation_date(code) for code in fips}
    if len(dates) != 1:
        return None
    if len(fips) == 1:
        row = counties(include_retired=True).filter(pl.col("fips") == fips[0]).row(0, named=True)
        name = f"{row['name']}, {row['state']} ({fips[0]})"
    else:
        name = place
    return Activation(dates.pop(), f"the activation date of {name} in the shipped county table")


def find_activation(imported: ImportedCases, activation: dt.date | None, place: str | None) -> Activation | None:
    """The day the profiling indicator counts months from: the one given, else the activation date of the
    place given or of the one the source names (a mapping's `place`), else none."""
    if activation is not None:
        return Activation(activation, "given (--activation)")
    where = place or imported.place
    if where is None:
        return None
    try:
        return place_activation(where)
    except ValueError as error:
        raise ReplayError(f"place {where!r}: {error}") from None


def import_source(source_format: str, source: Path) -> ImportedCases:
    """Import a source file in one of the formats: ddp, pierce or mapping:FILE.yaml."""
    if source_format == "ddp":
        return import_ddp(source)
    if source_format in BUILTIN_FORMATS:
        mapping = load_mapping(builtin_mapping_path(source_format), f"securecomm/replay/mappings/{source_format}.yaml")
        return import_extract(mapping, source, source_format)
    if source_format.startswith(MAPPING_PREFIX) and source_format[len(MAPPING_PREFIX) :].strip():
        path = Path(source_format[len(MAPPING_PREFIX) :].strip())
        if not path.is_file():
            raise ReplayError(f"--format {source_format}: no such mapping file {path}")
        return import_extract(load_mapping(path), source, source_format)
    raise ReplayError(
        f"unknown format {source_format!r}; use ddp, pierce, or mapping:FILE.yaml (a mapping file of your own)"
    )


def detainer_policies(policy_ids: Sequence[str]) -> tuple[Policy, ...]:
    """Load the policies; only detainer policies decide whether to hold a person."""
    ids = [policy_id.strip() for policy_id in policy_ids if policy_id.strip()]
    if not ids:
        raise ReplayError("no policy id given")
    policies = tuple(load_policy(policy_id) for policy_id in ids)
    for policy in policies:
        if policy.kind != "detainer":
            raise ReplayError(
                f"policy '{policy.id}' is a {policy.kind} policy; replay decides detainers, so give detainer policies"
            )
    if len({policy.id for policy in policies}) != len(policies):
        raise ReplayError("a policy id is given twice")
    return policies


def decide_all(imported: ImportedCases, policies: Sequence[Policy]) -> pl.DataFrame:
    """One row per case and policy: the decision, hold, actual outcome and provenance."""
    provenance = imported.provenance.with_columns(
        ((pl.col("released_at") - pl.col("release_eligible_at")).dt.total_microseconds() / HOURS).alias(
            "actual_hours_after_eligibility"
        )
    )
    frames = []
    for policy in policies:
        decided = compile_policy(policy).evaluate(imported.tables)
        frames.append(
            decided.with_columns(pl.col(pl.Enum).cast(pl.String)).with_columns(
                pl.lit(policy.title).alias("policy_title")
            )
        )
    decisions = pl.concat(frames, how="vertical")
    joined = decisions.join(provenance, on="case_id", how="left", maintain_order="left")
    return joined.select(
        "case_id",
        "policy_id",
        "decision",
        "rule",
        "citation",
        "release_eligible_at",
        "hold_until",
        ((pl.col("hold_until") - pl.col("release_eligible_at")).dt.total_microseconds() / HOURS).alias("hold_hours"),
        "actual_outcome",
        "actual_detail",
        "actual_hours_after_eligibility",
        "likely_duplicate",
        "complete",
        "source_file",
        "source_rows",
        "explanation",
        "policy_title",
    )


def summarise(decisions: pl.DataFrame, policies: Sequence[Policy]) -> pl.DataFrame:
    """Per policy: cases, honored, declined, review, and the hold-hours it allows where known."""
    honored = pl.col("decision") == "honor"
    known = honored & pl.col("release_eligible_at").is_not_null()
    summary = decisions.group_by("policy_id", maintain_order=True).agg(
        pl.len().alias("cases"),
        *[(pl.col("decision") == decision).sum().alias(decision) for decision in DECISIONS],
        known.sum().alias("honored_with_release_time"),
        pl.col("hold_hours").filter(known).sum().alias("hold_hours"),
    )
    titles = pl.DataFrame({"policy_id": [p.id for p in policies], "title": [p.title for p in policies]})
    return titles.join(summary, on="policy_id", how="left", maintain_order="left").with_columns(
        pl.col("hold_hours").round(1)
    )


def actual_outcomes(imported: ImportedCases) -> pl.DataFrame:
    """Per actual outcome: cases, how many have a release time, and the hours held past it by the records."""
    hours = (pl.col("released_at") - pl.col("release_eligible_at")).dt.total_microseconds() / HOURS
    table = imported.provenance.group_by("actual_outcome").agg(
        pl.len().alias("cases"),
        pl.col("release_eligible_at").is_not_null().sum().alias("release_time_known"),
        (hours > 0).sum().alias("held_after_eligibility"),
        hours.filter(hours > 0).sum().round(1).alias("hours_after_eligibility"),
        hours.filter(hours > 0).median().round(1).alias("median_hours_after_eligibility"),
    )
    order = {outcome: index for index, outcome in enumerate(ACTUAL_OUTCOMES)}
    return (
        table.with_columns(
            pl.col("actual_outcome").replace_strict(ACTUAL_OUTCOMES, default="other outcome").alias("label"),
            pl.col("actual_outcome").replace_strict(order, default=len(order)).alias("__order"),
        )
        .sort("__order")
        .drop("__order")
        .select(
            "actual_outcome",
            "label",
            "cases",
            "release_time_known",
            "held_after_eligibility",
            "hours_after_eligibility",
            "median_hours_after_eligibility",
        )
    )


def versus_policies(decisions: pl.DataFrame) -> pl.DataFrame:
    """Per policy and actual outcome: how many of those cases the policy would honor, decline, review."""
    order = {outcome: index for index, outcome in enumerate(ACTUAL_OUTCOMES)}
    return (
        decisions.group_by("policy_id", "actual_outcome", maintain_order=True)
        .agg(pl.len().alias("cases"), *[(pl.col("decision") == d).sum().alias(d) for d in DECISIONS])
        .with_columns(pl.col("actual_outcome").replace_strict(order, default=len(order)).alias("__order"))
        .sort("__order", maintain_order=True)
        .drop("__order")
    )


def replay(
    source_format: str,
    source: Path,
    policy_ids: Sequence[str],
    activation: dt.date | None = None,
    place: str | None = None,
) -> Replay:
    """Import a source, check its quality, and decide every case under every policy; the profiling
    indicator by month of booking, counted from `activation` — by default the activation date of `place`
    (a county FIPS code or a state), or of the place the source names, in the shipped county table."""
    policies = detainer_policies(policy_ids)
    imported = import_source(source_format, source)
    if place is not None:
        try:
            resolve_place(place)
        except ValueError as error:
            raise ReplayError(f"--place {place}: {error}") from None
    if imported.qa.stopped():
        raise QaStop(imported.qa, source.name)
    found = find_activation(imported, activation, place)
    decisions = decide_all(imported, policies)
    records_outcome = imported.records_outcome and imported.provenance.get_column("actual_outcome").is_not_null().any()
    return Replay(
        imported=imported,
        policies=policies,
        decisions=decisions,
        summary=summarise(decisions, policies),
        actual=actual_outcomes(imported) if records_outcome else None,
        versus=versus_policies(decisions) if records_outcome else None,
        profiling=profiling_indicator(
            imported.tables, imported.provenance.get_column("booked_at"), found.day if found else None
        ),
        activation=found,
    )
