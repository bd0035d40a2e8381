"""Comparing policies over one place and period: the same people, the same draws."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import polars as pl

from securecomm.law.loader import load_policy
from securecomm.model.metrics import REPORTED
from securecomm.model.replications import (
    HISTORICAL,
    IN_PROCESS,
    ReplicationPlan,
    ReplicationProgress,
    Runner,
    Summary,
    county_medians,
    run_plan,
    summarize,
)
from securecomm.model.simulation import Participation, participation_entry


@dataclass(frozen=True)
class Comparison:
    plan: ReplicationPlan
    summary: Summary
    counties: pl.DataFrame  # per (policy, county) medians over replications

    def to_dict(self) -> dict[str, Any]:
        effects = {"effects": self.summary.effects} if self.plan.effects else {}
        return {
            "place": self.plan.place,
            "start": self.plan.start.isoformat(),
            "end": self.plan.end.isoformat(),
            "replications": self.plan.replications,
            "seed": self.plan.seed,
            "baseline": self.summary.baseline,
            "policies": self.summary.levels,
            "differences": self.summary.differences,
            "counties": {
                policy: {
                    row.pop("fips"): row
                    for row in self.counties.filter(pl.col("policy") == policy).drop("policy").to_dicts()
                }
                for policy in self.summary.levels
            },
            **participation_entry(self.plan.participation),
            **effects,
        }

    def table(self) -> pl.DataFrame:
        """One row per policy and metric: median, band, and the difference from the baseline."""
        return pl.DataFrame(
            [
                {
                    "policy": policy,
                    "metric": metric,
                    **self.summary.levels[policy][metric],
                    **{f"difference_{key}": value for key, value in self.summary.differences[policy][metric].items()},
                }
                for policy in self.summary.levels
                for metric in REPORTED
            ]
        )


def check_policies(policies: tuple[str, ...]) -> None:
    """Every entry is `historical` or a detainer policy of the library."""
    if not policies:
        raise ValueError("--policies needs at least one policy id (or 'historical')")
    if len(set(policies)) != len(policies):
        raise ValueError("a policy is listed twice in --policies")
    for policy_id in policies:
        if policy_id == HISTORICAL:
            continue
        policy = load_policy(policy_id)
        if policy.kind != "detainer":
            raise ValueError(f"{policy_id} is a {policy.kind} policy; compare takes jail (detainer) policies")


def compare(
    place: str,
    start: dt.date,
    end: dt.date,
    policies: tuple[str, ...],
    *,
    baseline: str | None = None,
    replications: int = 1,
    seed: int = 0,
    runner: Runner = IN_PROCESS,
    effects: tuple[str, ...] = (),
    participation: tuple[Participation, ...] = (),
    progress: ReplicationProgress | None = None,
) -> Comparison:
    """Run every policy on the same replications and summarise them against the baseline
    (by default the first policy listed), all under the same participation reforms;
    `progress(done, all)` as each replication ends."""
    check_policies(policies)
    chosen_baseline = baseline or policies[0]
    if chosen_baseline not in policies:
        raise ValueError(f"the baseline {chosen_baseline!r} must be one of --policies")
    plan = ReplicationPlan(
        place,
        start,
        end,
        policies,
        replications,
        seed,
        vary_parameters=replications > 1,
        effects=effects,
        participation=participation,
    )
    results = run_plan(plan, runner, progress)
    return Comparison(plan, summarize(results, chosen_baseline), county_medians(results))
