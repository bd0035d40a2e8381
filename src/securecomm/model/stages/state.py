"""The contract every stage keeps: `stage(state, parameters, rng) -> state`.

A stage reads what earlier stages put in the `State`, draws from its own named random
streams, and returns the state with its part added. The ordered list of stages is the
pipeline (securecomm.model.simulation.PIPELINE).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import cache
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


class PlaceKeys:
    """The place each draw of a call is for: a state, by its FIPS code, in ascending order (records and
    segments come grouped by county, so by state).

    Each state draws from generators of its own (`PlaceStream`), so what one state's counties draw never
    moves another state's numbers: a reform confined to Illinois leaves Wisconsin draw for draw as it was,
    and a state run alone draws exactly what it draws inside the nation.

    Kept as blocks, one per place (its code and where its draws start): a subset or a repeat of the rows
    moves the blocks' bounds, not a code per row.
    """

    __slots__ = ("bounds", "places")

    def __init__(self, codes: np.ndarray) -> None:
        if codes.size > 1 and (codes[1:] < codes[:-1]).any():
            raise ValueError("draws must come grouped by place in ascending order (records and segments by county)")
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if codes.size else np.zeros(0, np.int64)
        self.places = codes[starts]
        self.bounds = np.r_[starts, codes.size].astype(np.int64)

    @classmethod
    def one_place(cls, count: int) -> PlaceKeys:
        """`count` draws for a single place (a check of one distribution, say)."""
        return cls(np.zeros(count, dtype=np.uint8))

    @classmethod
    def of_counties(cls, county_codes: np.ndarray, counties: tuple[str, ...]) -> PlaceKeys:
        """The keys of rows given as positions in `counties` (FIPS codes, in ascending order)."""
        states = _state_of_county(counties)
        if county_codes.size == 0:
            return _blocks(states[:0], np.zeros(0, dtype=np.int64))
        if county_codes.size > 1 and (county_codes[1:] < county_codes[:-1]).any():
            return cls(states[county_codes])  # not by county: the states' order is checked row by row
        # Grouped by county in order: each state's block starts at the row of its first county, found by a
        # binary search (in the codes' own type: a search in another copies every code).
        state_starts = np.flatnonzero(np.r_[True, states[1:] != states[:-1]])
        bounds = np.r_[np.searchsorted(county_codes, state_starts.astype(county_codes.dtype)), county_codes.size]
        return _blocks(states[state_starts], np.diff(bounds))

    @property
    def size(self) -> int:
        return int(self.bounds[-1])

    def subset(self, rows: np.ndarray) -> PlaceKeys:
        """The keys of some of the rows (ascending indexes or a mask: the order holds)."""
        if rows.dtype == np.bool_:
            counts = [np.count_nonzero(rows[start:stop]) for start, stop in itertools.pairwise(self.bounds.tolist())]
            return _blocks(self.places, np.array(counts, dtype=np.int64))
        return _blocks(self.places, np.diff(np.searchsorted(rows, self.bounds)))

    def repeat(self, counts: np.ndarray) -> PlaceKeys:
        """Each row's key `counts` times (a long table's rows, grouped by the row they belong to)."""
        totals = [int(counts[start:stop].sum()) for start, stop in itertools.pairwise(self.bounds.tolist())]
        return _blocks(self.places, np.array(totals, dtype=np.int64))

    def runs(self) -> list[tuple[int, int, int]]:
        """(place, start, stop) of each place's block of draws."""
        return list(zip(self.places.tolist(), self.bounds[:-1].tolist(), self.bounds[1:].tolist(), strict=True))


def _blocks(places: np.ndarray, sizes: np.ndarray) -> PlaceKeys:
    """Keys of the places (in order) with these many rows each: the empty blocks left out."""
    kept = sizes > 0
    keys = object.__new__(PlaceKeys)
    keys.places = places[kept]
    keys.bounds = np.r_[0, np.cumsum(sizes[kept])].astype(np.int64)
    return keys


@cache
def _state_of_county(counties: tuple[str, ...]) -> np.ndarray:
    return np.array([int(fips[:2]) for fips in counties], dtype=np.uint8)


def segment_keys(segments: pl.DataFrame) -> PlaceKeys:
    """The place of each segment's draws (segments come sorted by county)."""
    return PlaceKeys(segments.get_column("fips").str.slice(0, 2).cast(pl.UInt8).to_numpy())


Draw = Callable[[np.random.Generator, int, slice], np.ndarray]


class PlaceStream:
    """One named random stream of a run: a generator per place, each seeded by the seed, the stream's
    position and the place, so a place's numbers depend on nothing drawn elsewhere."""

    def __init__(self, seed: int, position: int) -> None:
        self.seed, self.position = seed, position
        self._generators: dict[int, np.random.Generator] = {}

    def _generator(self, place: int) -> np.random.Generator:
        if place not in self._generators:
            key = np.random.SeedSequence(self.seed, spawn_key=(self.position, place))
            self._generators[place] = np.random.default_rng(key)
        return self._generators[place]

    def _draw(self, keys: PlaceKeys, draw: Draw) -> np.ndarray:
        # Each place's block comes from its own generator, in the order of the rows.
        runs = keys.runs()
        if len(runs) == 1:  # one place (a state's or a county's run): its block is the draw, nothing to join
            return draw(self._generator(runs[0][0]), keys.size, slice(0, keys.size))
        parts = [draw(self._generator(place), stop - start, slice(start, stop)) for place, start, stop in runs]
        return np.concatenate(parts) if parts else draw(self._generator(0), 0, slice(0, 0))

    def _fill(self, keys: PlaceKeys, fill: Callable[[np.random.Generator, np.ndarray], None]) -> np.ndarray:
        # `_draw` for the distributions a generator writes in place: no blocks to join.
        out = np.empty(keys.size)
        for place, start, stop in keys.runs():
            fill(self._generator(place), out[start:stop])
        return out

    def random(self, keys: PlaceKeys) -> np.ndarray:
        return self._fill(keys, lambda generator, out: generator.random(out=out))

    def standard_normal(self, keys: PlaceKeys) -> np.ndarray:
        return self._fill(keys, lambda generator, out: generator.standard_normal(out=out))

    def exponential(self, keys: PlaceKeys, scale: float) -> np.ndarray:
        return self._draw(keys, lambda generator, size, _: generator.exponential(scale, size))

    def poisson(self, keys: PlaceKeys, mean: float | np.ndarray) -> np.ndarray:
        """Poisson counts with one mean, or a mean per row."""
        return self._draw(keys, lambda generator, size, rows: generator.poisson(_rows(mean, rows), size))

    def binomial(self, keys: PlaceKeys, trials: np.ndarray, probability: float | np.ndarray) -> np.ndarray:
        """Binomial counts of `trials` per row, with one probability or one per row."""
        return self._draw(
            keys, lambda generator, size, rows: generator.binomial(trials[rows], _rows(probability, rows), size)
        )

    def integers(self, keys: PlaceKeys, high: int, dtype: type[np.unsignedinteger]) -> np.ndarray:
        """Integers uniform on [0, high)."""
        return self._draw(keys, lambda generator, size, _: generator.integers(0, high, size, dtype=dtype))


def _rows(value: float | np.ndarray, rows: slice) -> float | np.ndarray:
    return value[rows] if isinstance(value, np.ndarray) else value


class Streams:
    """The named random streams of one run (`PlaceStream`, each a generator per place, seeded by the
    seed), and the few draws of the run as a whole (`of_run`: a study's estimate, say).

    A run makes its own `Streams`: the policy stages of a baseline and of every reform read fresh
    streams from the same seed, so they see the same numbers (common random numbers).
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._streams: dict[str, PlaceStream] = {}
        self._run_generators: dict[str, np.random.Generator] = {}

    def __getitem__(self, name: str) -> PlaceStream:
        if name not in self._streams:
            self._streams[name] = PlaceStream(self.seed, STREAMS.index(name))
        return self._streams[name]

    def of_run(self, name: str) -> np.random.Generator:
        """The stream `name`'s draws that belong to the run, not to a place."""
        if name not in self._run_generators:
            # The child SeedSequence(seed).spawn(len(STREAMS)) would give at this position.
            child = np.random.SeedSequence(self.seed, spawn_key=(STREAMS.index(name),))
            self._run_generators[name] = np.random.default_rng(child)
        return self._run_generators[name]


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
            # Where each case's rows start: the count of rows of the cases before it.
            starts = np.zeros(cases.height + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=cases.height), out=starts[1:])
            self.long_tables[name] = (table, starts)

    def subset(self, indexes: np.ndarray) -> CaseTables:
        """The cases at `indexes` (ascending), renumbered 0..k-1, with their charges and convictions."""
        if indexes.size == self.records.height:  # every case: nothing to cut
            return CaseTables(self.records, *(table for table, _ in self.long_tables.values()))

        def rows_of(name: str) -> pl.DataFrame:
            table, starts = self.long_tables[name]
            first, lengths = starts[indexes], starts[indexes + 1] - starts[indexes]
            within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            renumbered = np.repeat(np.arange(indexes.size, dtype=np.uint32), lengths)
            return _gather(table, np.repeat(first, lengths) + within).with_columns(row=pl.Series(renumbered))

        records = _gather(self.records, indexes).with_columns(row=pl.int_range(0, indexes.size, dtype=pl.UInt32))
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
        if rows.size == self.records.height:  # every case (rows ascend): the kept arrays themselves, read-only
            return tuple(_read_only(array) for array in filled.values)
        return tuple(array[rows] for array in filled.values)


def _gather(table: pl.DataFrame, indexes: np.ndarray) -> pl.DataFrame:
    # In a query, which lets go of the interpreter's lock (`table[indexes]` holds it: a run in parts waits).
    return table.select(pl.all().gather(indexes))


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


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

    def record_keys(self) -> PlaceKeys:
        """The place of each record's draws."""
        return PlaceKeys.of_counties(self.column("fips"), self.counties)


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
