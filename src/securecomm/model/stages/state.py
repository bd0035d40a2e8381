"""The contract every stage keeps: `stage(state, parameters, rng) -> state`.

A stage reads what earlier stages put in the `State`, draws from its own named random
streams, and returns the state with its part added. The ordered list of stages is the
pipeline (securecomm.model.simulation.PIPELINE).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

import numpy as np
import polars as pl

from securecomm.core.cases import CaseTables
from securecomm.law.timeline import PolicyTimeline
from securecomm.model.parameters import Parameters

# Each stream is seeded by its position here, so a stream keeps its numbers whatever other stages
# draw: add new streams at the end, never reorder.
STREAMS = (
    "bookings",
    "ident",
    "other_routes",
    "field",
    "booking_times",
    "charges",
    "histories",
    "aggravated",
    "release",
    "facts",
    "forms",
    "lesc",
    "issuance",
    "jail",
    "removal",
    "effects",
    "ages",
)


class Streams:
    """The named random streams of one run, each a generator spawned from the seed.

    A run makes its own `Streams`: the policy stages of a baseline and of every reform read fresh
    streams from the same seed, so they see the same numbers (common random numbers).
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._generators: dict[str, np.random.Generator] = {}

    def __getitem__(self, name: str) -> np.random.Generator:
        if name not in self._generators:
            # The child SeedSequence(seed).spawn(len(STREAMS)) would give at this position.
            child = np.random.SeedSequence(self.seed, spawn_key=(STREAMS.index(name),))
            self._generators[name] = np.random.default_rng(child)
        return self._generators[name]


@dataclass(frozen=True)
class EffectsRequest:
    """The community effects a run estimates (securecomm.model.stages.effects): their names, and
    whether each study's estimate is drawn from its uncertainty (replications) or taken as published."""

    effects: tuple[str, ...] = ()
    draw: bool = False


@dataclass(frozen=True)
class OffProgram:
    """Counties where Secure Communities does not run from `start` (None: the period's start) until `end`
    (exclusive; None: the period's end), whatever their activation date: a participation reform
    (securecomm.model.simulation.Participation)."""

    counties: frozenset[str]
    start: dt.date | None = None
    end: dt.date | None = None


# CaseSubsets.filled keeps a policy's values over every case once asked for 1/KEPT_FROM_SHARE of them or more.
KEPT_FROM_SHARE = 4


@dataclass
class _Filled:
    values: tuple[np.ndarray, ...]
    done: np.ndarray


class CaseSubsets:
    """Subsets of one set of cases, each made in time proportional to its own size: the long tables
    are put in case order once and sliced, rather than scanned again for every policy in force; and
    what policies found for these cases, kept for the next policy run on them (`filled`)."""

    def __init__(self, cases: CaseTables) -> None:
        self.records = cases.records
        self._filled: dict[Hashable, _Filled] = {}
        self.long_tables: dict[str, tuple[pl.DataFrame, np.ndarray]] = {}
        for name in ("current_charges", "convictions"):
            table: pl.DataFrame = getattr(cases, name)
            rows = table.get_column("row").to_numpy()
            if rows.size and (rows[1:] < rows[:-1]).any():  # drawn tables come in case order already
                order = np.argsort(rows, kind="stable")
                table, rows = table[order], rows[order]
            self.long_tables[name] = (table, np.searchsorted(rows, np.arange(cases.height + 1)))

    def subset(self, indexes: np.ndarray) -> CaseTables:
        """The cases at `indexes` (ascending), renumbered 0..k-1, with their charges and convictions."""
        if indexes.size == self.records.height:  # every case: nothing to cut
            return CaseTables(self.records, *(table for table, _ in self.long_tables.values()))

        def rows_of(name: str) -> pl.DataFrame:
            table, starts = self.long_tables[name]
            first, lengths = starts[indexes], starts[indexes + 1] - starts[indexes]
            within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            renumbered = np.repeat(np.arange(indexes.size, dtype=np.uint32), lengths)
            return table[np.repeat(first, lengths) + within].with_columns(row=pl.Series(renumbered))

        records = self.records[indexes].with_columns(row=pl.int_range(0, indexes.size, dtype=pl.UInt32))
        return CaseTables(records, rows_of("current_charges"), rows_of("convictions"))

    def filled(
        self, key: Hashable, rows: np.ndarray, compute: Callable[[np.ndarray], tuple[np.ndarray, ...]]
    ) -> tuple[np.ndarray, ...]:
        """Values of the cases at `rows` (a policy's decisions, a hold's deadlines: `key` names them), one
        array per value: `compute(rows)` gives them for rows not computed before. A comparison runs several
        policies on one population, and what a policy answers for a case does not depend on the other
        policies in force. Values are kept over every case once asked for a large share of them (a policy
        in force in a few counties is recomputed: keeping it would cost more memory than time)."""
        filled = self._filled.get(key)
        if filled is None and rows.size * KEPT_FROM_SHARE < self.records.height:
            return compute(rows)
        missing = rows if filled is None else rows[~filled.done[rows]]
        if filled is None or missing.size:
            values = compute(missing)
            if filled is None:
                size = self.records.height
                empty = tuple(np.zeros(size, dtype=value.dtype) for value in values)
                filled = self._filled[key] = _Filled(empty, np.zeros(size, dtype=bool))
            for array, value in zip(filled.values, values, strict=True):
                array[missing] = value
            filled.done[missing] = True
        return tuple(array[rows] for array in filled.values)


@dataclass(frozen=True)
class State:
    """What the pipeline knows so far about a place and period.

    - `segments`: one row per county and month (split at the county's activation date), with the
      counts of the many who never branch (bookings, fingerprints checked, matches, field hits).
    - `records`: one row per person the pipeline branches on (an IDENT match, a detainer by another
      route); each stage adds its columns.
    - `charges`, `convictions`: long tables of current charges and true prior convictions, by `row`
      (the record); `known` marks a conviction the FBI record shows.
    - `cases`: the facts the jail's policies and ICE's criteria read (securecomm.core.cases), and
      `detainer_cases` those of the detainers issued, ready to be cut by the policies in force.
    - the policy timelines in force, which the policy stages apply.
    - the community effects asked for, and once estimated, one row per effect (stages/effects.py).
    """

    counties: tuple[str, ...]
    start: dt.date
    end: dt.date
    off_program: tuple[OffProgram, ...] = ()  # participation reforms: where the program does not run
    segments: pl.DataFrame = field(default_factory=pl.DataFrame)
    records: pl.DataFrame = field(default_factory=pl.DataFrame)
    charges: pl.DataFrame = field(default_factory=pl.DataFrame)
    convictions: pl.DataFrame = field(default_factory=pl.DataFrame)
    cases: CaseTables | None = None
    # The cases of the detainers issued, which every policy run on the population decides: made once.
    detainer_cases: CaseSubsets | None = None
    detainer_timeline: PolicyTimeline | None = None
    field_timeline: PolicyTimeline | None = None
    effects_request: EffectsRequest = EffectsRequest()
    effects: pl.DataFrame = field(default_factory=pl.DataFrame)  # one row per effect estimated

    def column(self, name: str) -> np.ndarray:
        """A record column as a NumPy array (Enum columns as their codes)."""
        column = self.records.get_column(name)
        return (column.to_physical() if isinstance(column.dtype, pl.Enum) else column).to_numpy()


Stage = Callable[[State, Parameters, Streams], State]


class NamedStage(NamedTuple):
    """A stage and what a progress display calls it."""

    label: str
    run: Stage


T = TypeVar("T")


def drawn_before(value: T | None, what: str) -> T:
    """`value`, which an earlier stage of the pipeline provides."""
    if value is None:
        raise ValueError(f"{what} come from an earlier stage: the pipeline's stages are out of order")
    return value
