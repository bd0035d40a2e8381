"""Replications: the same scenario under several policies, many times, with uncertainty.

Replication r draws every parameter from its uncertainty range and a fresh seed, both
spawned from the run's SeedSequence; within a replication every policy reads the same
population (common random numbers). A replication is one task of a `Runner`: it returns
only totals and per-county sums, so it can run in this process or on a Dask cluster with the
same numbers either way. `Runner` is the one way every caller runs replications (compare,
validate and the calibration ensemble), and `band` the one median and 90% band over them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import polars as pl

from securecomm.core.places import resolve_place
from securecomm.law.timeline import PolicyTimeline
from securecomm.model.metrics import REPORTED
from securecomm.model.parameters import Parameters, load_parameters
from securecomm.model.simulation import Participation, Scenario, apply_policies, draw_population
from securecomm.model.stages.state import EffectsRequest

if TYPE_CHECKING:
    from dask.distributed import Client

HISTORICAL = "historical"


@dataclass(frozen=True)
class ReplicationPlan:
    place: str
    start: dt.date
    end: dt.date
    policies: tuple[str, ...]  # policy ids, or "historical"
    replications: int
    seed: int
    vary_parameters: bool = True
    effects: tuple[str, ...] = ()  # community effects to estimate (model/stages/effects.py)
    participation: tuple[Participation, ...] = ()  # the same for every policy compared

    def seeds(self) -> list[tuple[int, np.random.SeedSequence]]:
        """(simulation seed, parameter-draw seed sequence) for each replication.

        A single replication runs on the seed itself, so that it equals `simulate --seed`.
        """
        if self.replications == 1:
            return [(self.seed, np.random.SeedSequence(self.seed))]
        children = np.random.SeedSequence(self.seed).spawn(self.replications)
        return [(int(child.generate_state(1)[0]), child.spawn(1)[0]) for child in children]


def timeline_for(policy: str, scenario: Scenario) -> PolicyTimeline:
    """`historical`, or one policy governing every jail of the place for the whole period (either under
    the scenario's participation reforms)."""
    return scenario.detainer_timeline(None if policy == HISTORICAL else policy)


def run_replication(plan: ReplicationPlan, index: int, parameters: Parameters | None = None) -> dict[str, Any]:
    """One replication under every policy: totals, channel totals and per-county sums."""
    simulation_seed, parameter_seed = plan.seeds()[index]
    base = parameters or load_parameters()
    drawn = base.sample(np.random.default_rng(parameter_seed), f"replication {index}") if plan.vary_parameters else base
    # The studies' estimates are drawn like the parameters: when the replications vary them.
    effects = EffectsRequest(plan.effects, draw=plan.vary_parameters)
    scenario = Scenario(
        plan.place, plan.start, plan.end, simulation_seed, drawn, effects=effects, participation=plan.participation
    )
    population = draw_population(scenario)
    by_policy = {}
    for policy in plan.policies:
        result = apply_policies(population, timeline_for(policy, scenario))
        by_policy[policy] = {
            "total": result.total,
            "channels": result.channels,
            # A frame, not rows: it crosses from a worker as one Arrow buffer, not 3,000 dicts.
            "counties": result.by_county(),
            "effects": result.effects.to_dicts(),
        }
    return {"replication": index, "seed": simulation_seed, "policies": by_policy}


T = TypeVar("T")
ReplicationProgress = Callable[[int, int], None]  # (replications done, replications in all)


# Dask's settings for a local cluster (`Runner._client`): less of its own work beside the replications.
LOCAL_CLUSTER_QUIET = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


@dataclass(frozen=True)
class Runner:
    """Where replications run: in this process (one worker, the default), on a local Dask cluster
    of `workers` workers (one a thread of this process, the others processes), or on the existing
    Dask cluster whose scheduler is at `scheduler`.

    Replication r computes the same numbers wherever it runs (its seeds come from the run's seed
    and r alone), so the runner and the number of workers never change a result.
    """

    workers: int = 1
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.scheduler is not None and self.workers != 1:
            raise ValueError("give workers or a scheduler, not both")

    def map(self, task: Callable[[int], T], count: int, progress: ReplicationProgress | None = None) -> list[T]:
        """`task(0)`, …, `task(count - 1)` in index order, calling `progress(done, count)` as each ends.

        On a cluster the task is pickled: a module-level function, or a `functools.partial` of one.
        """
        if self.scheduler is None and self.workers == 1:
            results = []
            for index in range(count):
                results.append(task(index))
                if progress is not None:
                    progress(index + 1, count)
            return results
        # Imported here: Dask takes a second to import, which a run in this process does not need.
        from dask.distributed import as_completed

        with self._client() as client:
            # pure=False: every index runs once, so there is nothing to deduplicate, and hashing the
            # task's arguments (a whole parameter set) for each key would cost more than it saves.
            futures = client.map(task, range(count), pure=False)
            if progress is not None:
                for done, _ in enumerate(as_completed(futures), start=1):
                    progress(done, count)
            return client.gather(futures)

    @contextmanager
    def _client(self) -> Iterator[Client]:
        import dask
        from dask.distributed import Client, Nanny, Scheduler, SpecCluster, Worker

        if self.scheduler is not None:
            with Client(self.scheduler) as client:
                yield client
            return
        local = {"host": "127.0.0.1", "protocol": "tcp://", "dashboard": False}
        # One worker is a thread of this process, which has imported the model already and starts at once;
        # the others are processes, each with its own interpreter and imports (~1.5 s of CPU and 2-4 s
        # before its first task). One thread each: the workers already fill the cores.
        here = {"cls": Worker, "options": {**local, "nthreads": 1}}
        # One thread per worker process for Polars too: each one's own thread pool would only oversubscribe
        # the cores.
        process = {
            "cls": Nanny,
            "options": {**local, "nthreads": 1, "env": {"POLARS_MAX_THREADS": "1"}, "silence_logs": logging.WARNING},
        }
        with (
            # Dask sets MALLOC_TRIM_THRESHOLD_ in its workers to hand freed memory back at once; setting it
            # also turns off glibc's adaptive mmap threshold, so every large array was mapped and unmapped
            # afresh: a third of the workers' time went to the kernel (9.7 → 2.4 s system time on 6 US
            # replications). The workers keep their memory between replications instead.
            dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}),
            # What a local cluster does between tasks, for dashboards that it does not serve: the workers'
            # sampling profiler (every 10 ms), the event loops' ticks (20 ms), the system monitors (0.5 s) and
            # the memory monitor (0.1 s) took 1.8 s of CPU in 20 s of an idle cluster of 2 workers, 0.3 s without.
            dask.config.set(LOCAL_CLUSTER_QUIET),
            SpecCluster(
                scheduler={"cls": Scheduler, "options": {**local, "dashboard_address": "127.0.0.1:0"}},
                workers={"here": here},
                worker=process,
                silence_logs=logging.WARNING,
            ) as cluster,
            Client(cluster) as client,
        ):
            # Not waited for: the worker processes join as they start, and the worker here works meanwhile.
            cluster.scale(self.workers)
            yield client


IN_PROCESS = Runner()


def run_plan(
    plan: ReplicationPlan, runner: Runner = IN_PROCESS, progress: ReplicationProgress | None = None
) -> list[dict[str, Any]]:
    """Every replication of a plan, ordered by replication index; `progress(done, all)` as each ends."""
    if plan.replications < 1:
        raise ValueError("replications must be at least 1")
    resolve_place(plan.place)  # fail fast on a bad place, before any work is sent out
    return runner.map(partial(run_replication, plan), plan.replications, progress)


@dataclass(frozen=True)
class Summary:
    """Median and 90% band (5th–95th percentile) of every metric per policy (`levels`) and of
    its difference from the baseline, paired by replication (`differences`)."""

    baseline: str
    levels: dict[str, dict[str, dict[str, float]]]
    differences: dict[str, dict[str, dict[str, float]]]
    # Per policy and effect: the band of its value over replications (None: a direction or a point
    # without a number), whether it applies, and the first replication's note.
    effects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


def summarize(results: list[dict[str, Any]], baseline: str) -> Summary:
    policies = list(results[0]["policies"])
    if baseline not in policies:
        raise ValueError(f"the baseline {baseline!r} is not among the policies compared: {', '.join(policies)}")
    levels: dict[str, dict[str, dict[str, float]]] = {}
    differences: dict[str, dict[str, dict[str, float]]] = {}
    for policy in policies:
        levels[policy], differences[policy] = {}, {}
        for metric in REPORTED:
            values = np.array([result["policies"][policy]["total"][metric] for result in results], dtype=float)
            base = np.array([result["policies"][baseline]["total"][metric] for result in results], dtype=float)
            levels[policy][metric] = band(values)
            differences[policy][metric] = band(values - base)
    return Summary(baseline, levels, differences, {policy: effect_bands(results, policy) for policy in policies})


def effect_bands(results: list[dict[str, Any]], policy: str) -> dict[str, dict[str, Any]]:
    """Each effect of a policy over replications: its band (None without a number), where the band comes
    from (`band_from`: the replications, or for a single run the study's own 90% interval), whether it
    applies, and the note of the first replication."""
    first = results[0]["policies"][policy]["effects"]
    bands = {}
    for index, row in enumerate(first):
        values = [result["policies"][policy]["effects"][index]["value"] for result in results]
        numbers = [value for value in values if value is not None]
        study_interval = len(results) == 1 and row.get("low") is not None
        bands[row["effect"]] = {
            "band": {"median": row["value"], "low": row["low"], "high": row["high"]}
            if study_interval
            else (band(numbers) if numbers else None),
            "band_from": "study" if study_interval else "replications",
            "applies": row["applies"],
            "note": row["note"],
        }
    return bands


BAND_PERCENTILES = (5.0, 50.0, 95.0)


def band(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """The median and the 90% band (5th and 95th percentiles, linearly interpolated) of a quantity
    over replications: the one summary that compare, validate and the calibration ensemble report."""
    low, median, high = np.percentile(np.asarray(values, dtype=float), BAND_PERCENTILES)
    return {"median": float(median), "low": float(low), "high": float(high)}


def county_medians(results: list[dict[str, Any]]) -> pl.DataFrame:
    """Per-county medians over replications, one row per (policy, county)."""
    frame = pl.concat(
        outcome["counties"].with_columns(policy=pl.lit(policy))
        for result in results
        for policy, outcome in result["policies"].items()
    )
    return frame.group_by("policy", "fips").agg(pl.col(list(REPORTED)).median()).sort("policy", "fips")
