"""Replications: the same scenario under several policies, many times, with uncertainty.

Replication r draws every parameter from its uncertainty range and a fresh seed, both
spawned from the run's SeedSequence; within a replication every policy reads the same
population (common random numbers). A replication is one task: it returns only totals
and per-county sums, so it can run in this process or on a Dask cluster with the same
numbers either way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from securecomm.core.places import resolve_place
from securecomm.law.timeline import PolicyTimeline
from securecomm.model.metrics import EXTRA_METRICS, METRICS
from securecomm.model.parameters import Parameters, load_parameters
from securecomm.model.simulation import Scenario, apply_policies, draw_population

HISTORICAL = "historical"
ALL_METRICS = (*METRICS, *EXTRA_METRICS)


@dataclass(frozen=True)
class ReplicationPlan:
    place: str
    start: dt.date
    end: dt.date
    policies: tuple[str, ...]  # policy ids, or "historical"
    replications: int
    seed: int
    vary_parameters: bool = True

    def seeds(self) -> list[tuple[int, np.random.SeedSequence]]:
        """(simulation seed, parameter-draw seed sequence) for each replication.

        A single replication runs on the seed itself, so that it equals `simulate --seed`.
        """
        if self.replications == 1:
            return [(self.seed, np.random.SeedSequence(self.seed))]
        children = np.random.SeedSequence(self.seed).spawn(self.replications)
        return [(int(child.generate_state(1)[0]), child.spawn(1)[0]) for child in children]


def timeline_for(policy: str, scenario: Scenario) -> PolicyTimeline:
    """`historical`, or one policy governing every jail of the place for the whole period."""
    if policy == HISTORICAL:
        return scenario.detainer_timeline()
    return PolicyTimeline.historical("detainer").replace(frozenset(scenario.counties()), policy, scenario.start)


def run_replication(plan: ReplicationPlan, index: int, parameters: Parameters | None = None) -> dict[str, Any]:
    """One replication under every policy: totals, channel totals and per-county sums."""
    simulation_seed, parameter_seed = plan.seeds()[index]
    base = parameters or load_parameters()
    drawn = base.sample(np.random.default_rng(parameter_seed), f"replication {index}") if plan.vary_parameters else base
    scenario = Scenario(plan.place, plan.start, plan.end, simulation_seed, drawn)
    population = draw_population(scenario)
    by_policy = {}
    for policy in plan.policies:
        result = apply_policies(population, timeline_for(policy, scenario))
        by_policy[policy] = {
            "total": result.total,
            "channels": result.channels,
            "counties": result.by_county().to_dicts(),
        }
    return {"replication": index, "seed": simulation_seed, "policies": by_policy}


Runner = Callable[[ReplicationPlan, Sequence[int]], list[dict[str, Any]]]


def run_in_process(plan: ReplicationPlan, indexes: Sequence[int]) -> list[dict[str, Any]]:
    return [run_replication(plan, index) for index in indexes]


def run_on_dask(address: str | None = None, workers: int | None = None) -> Runner:
    """A runner that sends one task per replication to a Dask cluster (a local one if no address)."""

    def runner(plan: ReplicationPlan, indexes: Sequence[int]) -> list[dict[str, Any]]:
        from dask.distributed import Client, LocalCluster

        if address is not None:
            with Client(address) as client:
                return client.gather(client.map(run_replication, [plan] * len(indexes), list(indexes)))
        with (
            LocalCluster(
                n_workers=workers or 2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # One thread per worker process for Polars too: the workers already fill the cores,
                # and each one's own thread pool would only oversubscribe them.
                env={"POLARS_MAX_THREADS": "1"},
            ) as cluster,
            Client(cluster) as client,
        ):
            return client.gather(client.map(run_replication, [plan] * len(indexes), list(indexes)))

    return runner


def run_plan(plan: ReplicationPlan, runner: Runner = run_in_process) -> list[dict[str, Any]]:
    """Every replication of a plan, ordered by replication index."""
    if plan.replications < 1:
        raise ValueError("replications must be at least 1")
    resolve_place(plan.place)  # fail fast on a bad place, before any work is sent out
    results = runner(plan, range(plan.replications))
    return sorted(results, key=lambda result: result["replication"])


@dataclass(frozen=True)
class Summary:
    """Median and 90% band (5th–95th percentile) of every metric per policy (`levels`) and of
    its difference from the baseline, paired by replication (`differences`)."""

    baseline: str
    levels: dict[str, dict[str, dict[str, float]]]
    differences: dict[str, dict[str, dict[str, float]]]


def summarize(results: list[dict[str, Any]], baseline: str) -> Summary:
    policies = list(results[0]["policies"])
    if baseline not in policies:
        raise ValueError(f"the baseline {baseline!r} is not among the policies compared: {', '.join(policies)}")
    levels: dict[str, dict[str, dict[str, float]]] = {}
    differences: dict[str, dict[str, dict[str, float]]] = {}
    for policy in policies:
        levels[policy], differences[policy] = {}, {}
        for metric in ALL_METRICS:
            values = np.array([result["policies"][policy]["total"][metric] for result in results], dtype=float)
            base = np.array([result["policies"][baseline]["total"][metric] for result in results], dtype=float)
            levels[policy][metric] = _band(values)
            differences[policy][metric] = _band(values - base)
    return Summary(baseline, levels, differences)


def _band(values: np.ndarray) -> dict[str, float]:
    low, median, high = np.percentile(values, [5, 50, 95])
    return {"median": float(median), "low": float(low), "high": float(high)}


def county_medians(results: list[dict[str, Any]]) -> pl.DataFrame:
    """Per-county medians over replications, one row per (policy, county)."""
    rows = [
        {"policy": policy, "replication": result["replication"], **county}
        for result in results
        for policy, outcome in result["policies"].items()
        for county in outcome["counties"]
    ]
    frame = pl.DataFrame(rows)
    return frame.group_by("policy", "fips").agg(pl.col(list(ALL_METRICS)).median()).sort("policy", "fips")
