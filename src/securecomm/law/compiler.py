"""The vectorised evaluator: a policy compiled to Polars expressions over case tables.

Offense conditions become per-case counts (one pass over the long tables, `np.bincount`
by row), every other fact is a column, and the rules become one `when` chain that yields
an outcome index (see outcomes.py). A million cases cost a handful of column operations.
"""

from __future__ import annotations

import functools
import itertools
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from securecomm.core.cases import CaseTables
from securecomm.core.places import single_time_zone
from securecomm.law.holdclock import hold_until_many, hold_until_many_in_zone, wall_in_zone
from securecomm.law.loader import load_forms
from securecomm.law.model import (
    AgeUnder,
    AllOf,
    AnyOf,
    ChargeMatch,
    Condition,
    ConvictionCount,
    Fact,
    Not,
    OffenseFilter,
    Policy,
    Question,
    ValueIn,
)
from securecomm.law.outcomes import (
    decision_vocabulary,
    field_explanation,
    output_columns,
    question_outcomes,
)

# A count column is keyed by what it counts; `at_least` is applied afterwards.
CountKey = tuple[str, OffenseFilter, float | None, float | None, bool]
# The case columns a hold's deadline reads (`CompiledPolicy.hold_deadlines`): those a table carries.
HOLD_COLUMNS = ("release_eligible_at", "release_eligible_offset", "time_zone", "detainer_form")


def _offense_mask(offenses: OffenseFilter) -> pl.Expr:
    mask = pl.lit(True)
    if offenses.categories is not None:
        mask &= pl.col("category").is_in(sorted(offenses.categories))
    if offenses.excluded_categories:
        mask &= ~pl.col("category").is_in(sorted(offenses.excluded_categories))
    if offenses.levels is not None:
        mask &= pl.col("level").is_in(sorted(offenses.levels))
    if offenses.felony_classes is not None:
        mask &= pl.col("felony_class").is_in(sorted(offenses.felony_classes)).fill_null(False)
    return mask


def _recency_mask(within_conviction: float | None, within_release: float | None, in_custody: bool) -> pl.Expr:
    if in_custody:
        return pl.col("currently_in_custody").fill_null(False) & _recency_mask(within_conviction, within_release, False)
    windows = []
    if within_conviction is not None:
        windows.append(pl.col("years_ago") <= within_conviction)
    if within_release is not None:
        windows.append((pl.col("years_since_release") <= within_release).fill_null(False))
    return functools.reduce(operator.or_, windows) if windows else pl.lit(True)


def _count_key(condition: ChargeMatch | ConvictionCount) -> CountKey:
    if isinstance(condition, ChargeMatch):
        return ("current_charges", condition.offenses, None, None, False)
    return (
        "convictions",
        condition.offenses,
        condition.within_years_of_conviction,
        condition.within_years_of_release,
        condition.currently_in_custody,
    )


def _count_keys(condition: Condition) -> list[CountKey]:
    match condition:
        case ChargeMatch() | ConvictionCount():
            return [_count_key(condition)]
        case Not(item):
            return _count_keys(item)
        case AllOf(items) | AnyOf(items):
            return [key for item in items for key in _count_keys(item)]
    return []


@dataclass(frozen=True)
class HoldDeadlines:
    """A hold's deadline per case, as a simulation reads it: no text built per case."""

    local: np.ndarray  # datetime64[us], the wall clock of the case's zone; NaT where no hold is allowed
    utc: np.ndarray  # datetime64[us], UTC; NaT where no hold is allowed or the zone is unknown
    citation: np.ndarray  # codes into `citations` of the limit that set the deadline (-1: none)
    citations: list[str]


@dataclass
class CompiledPolicy:
    policy: Policy

    def __post_init__(self) -> None:
        keys = [
            key for question in self.policy.questions for rule in question.rules for key in _count_keys(rule.condition)
        ]
        self.count_columns: dict[CountKey, str] = {key: f"__count_{i}" for i, key in enumerate(dict.fromkeys(keys))}
        self.outcomes = {question.name: question_outcomes(self.policy, question) for question in self.policy.questions}
        detainer = self.policy.kind == "detainer"
        self.time_zone = single_time_zone(self.policy.jurisdiction.places) if detainer else None

    # -- conditions -----------------------------------------------------------------------

    def _expr(self, condition: Condition) -> pl.Expr:
        match condition:
            case Fact(name):
                return pl.col(name)
            case ValueIn(field, values):
                return pl.col(field).is_in(sorted(values)).fill_null(False)
            case AgeUnder(years):
                return (pl.col("age") < years).fill_null(False)
            case ChargeMatch():
                return pl.col(self.count_columns[_count_key(condition)]) >= 1
            case ConvictionCount(at_least=at_least):
                return pl.col(self.count_columns[_count_key(condition)]) >= at_least
            case Not(item):
                return ~self._expr(item)
            case AllOf(items):
                return functools.reduce(operator.and_, (self._expr(item) for item in items))
            case AnyOf(items):
                return functools.reduce(operator.or_, (self._expr(item) for item in items))
        raise TypeError(f"unknown condition {condition!r}")

    def _counts(self, tables: CaseTables) -> list[pl.Series]:
        """Per-case counts of matching charges and convictions."""
        series = []
        for table_name in ("current_charges", "convictions"):
            keys = [key for key in self.count_columns if key[0] == table_name]
            if not keys:
                continue
            table: pl.DataFrame = getattr(tables, table_name)
            if table_name == "convictions" and "currently_in_custody" not in table.columns:
                table = table.with_columns(currently_in_custody=pl.lit(False))
            masks = table.select(
                (_offense_mask(key[1]) & _recency_mask(key[2], key[3], key[4])).alias(self.count_columns[key])
                for key in keys
            )
            rows = table.get_column("row").to_numpy()
            for key in keys:
                mask = masks.get_column(self.count_columns[key]).to_numpy()
                counts = np.bincount(rows[mask], minlength=tables.height).astype(np.uint32)
                series.append(pl.Series(self.count_columns[key], counts))
        return series

    def _outcome_index(self, question: Question) -> pl.Expr:
        rules = [self._expr(rule.condition) for rule in question.rules]
        count = len(rules)
        if not rules:
            return pl.repeat(0, pl.len(), dtype=pl.UInt16)
        chain = pl.when(rules[0]).then(0)
        for index, rule in enumerate(rules[1:], start=1):
            chain = chain.when(rule).then(index)
        for index, rule in enumerate(rules):
            chain = chain.when(rule.is_null()).then(count + index)
        return chain.otherwise(2 * count).cast(pl.UInt16)

    # -- evaluation -----------------------------------------------------------------------

    def _indexes(self, tables: CaseTables) -> pl.DataFrame:
        frame = tables.records.with_columns(self._counts(tables))
        return frame.select(
            *(self._outcome_index(question).alias(f"__index_{question.name}") for question in self.policy.questions),
        )

    def outcome_indexes(self, tables: CaseTables) -> np.ndarray:
        """Each case's outcome of the first question, as an index into its `outcomes`: what a simulation
        needs, no text."""
        frame = tables.records.with_columns(self._counts(tables))
        return frame.select(self._outcome_index(self.policy.questions[0])).to_series().to_numpy()

    def decisions(self, tables: CaseTables) -> pl.DataFrame:
        """Only each case's decision (or label) and rule, as Enum columns: nothing to read."""
        question = self.policy.questions[0]
        outcomes = self.outcomes[question.name]
        index = self.outcome_indexes(tables)
        return pl.DataFrame(
            [
                _outcome_column(index, [o.decision for o in outcomes], decision_vocabulary(question)).alias("decision"),
                _outcome_column(index, [o.rule for o in outcomes]).alias("rule"),
            ]
        )

    def evaluate(self, tables: CaseTables) -> pl.DataFrame:
        """Decide every case: one row per case with the columns of `output_columns`."""
        indexes = self._indexes(tables).with_columns(tables.records.get_column("case_id"))
        columns: list[pl.Expr] = [pl.col("case_id"), pl.lit(self.policy.id).alias("policy_id")]
        if self.policy.kind == "field":
            return self._field_output(indexes, columns)
        question = self.policy.questions[0]
        outcomes = self.outcomes[question.name]
        index = pl.col(f"__index_{question.name}")
        columns += [
            _lookup(index, [o.decision for o in outcomes], decision_vocabulary(question)).alias("decision"),
            _lookup(index, [o.rule for o in outcomes]).alias("rule"),
            _lookup(index, [o.citation for o in outcomes]).alias("citation"),
            _lookup(index, [o.explanation for o in outcomes]).alias("explanation"),
        ]
        result = indexes.select(columns)
        honored = (result.get_column("decision") == "honor").to_numpy()
        return result.with_columns(self.holds(tables, honored)).select(output_columns(self.policy))

    def hold_deadlines(self, tables: CaseTables, honored: np.ndarray) -> HoldDeadlines:
        """The deadline (local and UTC) of the hold of each case the jail honors, and the limit that set it.

        The deadline is the earlier of the policy's and the detainer form's; a form that asks for
        no detention leaves none. Times are read in the case's `time_zone`, else the policy's zone
        (when its places keep one), else as given (a UTC offset, or a plain wall clock).
        """
        records = tables.records
        size = records.height
        wall = records.get_column("release_eligible_at").to_numpy().astype("datetime64[us]")
        local = np.full(size, np.datetime64("NaT"), dtype="datetime64[us]")
        utc = local.copy()
        # Zones, forms and citations as integer codes: a group is a few integer comparisons, not a
        # comparison of strings case by case (a simulation decides millions of cases).
        citations: list[str] = []
        cited = np.full(size, -1, dtype=np.int64)
        hold = self.policy.hold
        if self.policy.kind == "detainer" and hold is not None:
            offset = _column(records, "release_eligible_offset", pl.Int32).fill_null(0).to_numpy().astype(np.int64)
            has_offset = _column(records, "release_eligible_offset", pl.Int32).is_not_null().to_numpy()
            # The zone column above, as codes: the case's own zone, else the policy's.
            zone_codes, zone_names = _text_codes(records, "time_zone")
            if self.time_zone is not None:
                zone_codes = np.where(zone_codes < 0, _code(zone_names, self.time_zone), zone_codes)
            form_codes, form_names = _text_codes(records, "detainer_form")
            active = honored & ~np.isnat(wall)
            limits = {form: limit for form, limit in load_forms().items() if form in form_names}
            for form, limit in limits.items():
                if not limit.detention:
                    notice_only = active & (form_codes == form_names.index(form))
                    cited[notice_only] = _code(citations, limit.citation)
                    active &= ~notice_only
            starts = wall - (offset * 60_000_000).astype("timedelta64[us]")  # UTC where an offset was given
            # The zones present (-1: none), in order: a count per code rather than a sort of every case.
            for zone_code in np.flatnonzero(np.bincount(zone_codes[active] + 1)) - 1:
                rows = np.flatnonzero(active & (zone_codes == zone_code))
                group_zone = zone_names[zone_code] if zone_code >= 0 else None
                start = wall[rows]
                # the UTC instant of a start given with its offset (NaT: a plain wall clock)
                instants = np.where(has_offset[rows], starts[rows], np.datetime64("NaT"))
                if group_zone is not None:  # an offset time becomes the wall clock of the zone
                    with_offset = np.flatnonzero(has_offset[rows])
                    start[with_offset] = wall_in_zone(starts[rows[with_offset]], group_zone)

                def deadlines(
                    hours: int,
                    counting: Any,
                    start: np.ndarray = start,
                    instants: np.ndarray = instants,
                    rows: np.ndarray = rows,
                    group_zone: str | None = group_zone,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                    if group_zone is not None:
                        ends, ends_utc = hold_until_many_in_zone(start, group_zone, hours, counting, instants)
                        return ends, ends_utc, ends_utc
                    ends = hold_until_many(start, hours, counting)
                    shift = (offset[rows] * 60_000_000).astype("timedelta64[us]")
                    ends_utc = np.where(has_offset[rows], ends - shift, np.datetime64("NaT"))
                    return ends, ends_utc, ends

                ends, ends_utc, key = deadlines(hold.hours, hold.counting)
                citation = np.full(rows.size, _code(citations, hold.citation), dtype=np.int64)
                for form, limit in limits.items():
                    # A form asking for the policy's own limit ends the hold at the same moment: the policy's stands.
                    if not limit.detention or (limit.hours, limit.counting) == (hold.hours, hold.counting):
                        continue
                    mine = form_codes[rows] == form_names.index(form)
                    if not mine.any():
                        continue
                    form_ends, form_utc, form_key = deadlines(limit.hours, limit.counting)
                    earlier = mine & (form_key < key)
                    ends = np.where(earlier, form_ends, ends)
                    ends_utc = np.where(earlier, form_utc, ends_utc)
                    key = np.where(earlier, form_key, key)
                    citation[earlier] = _code(citations, limit.citation)
                local[rows], utc[rows], cited[rows] = ends, ends_utc, citation
        return HoldDeadlines(local, utc, cited, citations)

    def holds(self, tables: CaseTables, honored: np.ndarray) -> list[pl.Series]:
        """The hold of each case the jail honors as columns: deadline (local and UTC), zone and the limit
        that set it (`hold_deadlines`)."""
        deadlines = self.hold_deadlines(tables, honored)
        if self.policy.kind == "detainer":
            zone, source = self._zones(tables.records)
        else:
            zone = source = pl.repeat(None, tables.height, dtype=pl.String, eager=True)
        return [
            pl.Series("hold_until", deadlines.local, dtype=pl.Datetime("us")),
            pl.Series("hold_until_utc", deadlines.utc, dtype=pl.Datetime("us")).dt.replace_time_zone("UTC"),
            zone.alias("time_zone"),
            source.alias("time_zone_source"),
            pl.Series("hold_citation", deadlines.citation).replace_strict(
                list(range(len(deadlines.citations))), deadlines.citations, default=None, return_dtype=pl.String
            ),
        ]

    def _zones(self, records: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
        own = _column(records, "time_zone", pl.String)
        offset = _column(records, "release_eligible_offset", pl.Int32)
        frame = pl.DataFrame({"own": own, "offset": offset})
        chosen = frame.select(
            zone=pl.col("own").fill_null(pl.lit(self.time_zone, dtype=pl.String)),
            source=pl.when(pl.col("own").is_not_null())
            .then(pl.lit("record"))
            .when(pl.lit(self.time_zone is not None))
            .then(pl.lit("jurisdiction"))
            .when(pl.col("offset").is_not_null())
            .then(pl.lit("offset")),
        )
        return chosen.get_column("zone"), chosen.get_column("source")

    def _field_output(self, indexes: pl.DataFrame, columns: list[pl.Expr]) -> pl.DataFrame:
        for question in self.policy.questions:
            outcomes = self.outcomes[question.name]
            index = pl.col(f"__index_{question.name}")
            columns += [
                _lookup(index, [o.decision for o in outcomes], decision_vocabulary(question)).alias(question.name),
                _lookup(index, [o.rule for o in outcomes]).alias(f"{question.name}_rule"),
                _lookup(index, [o.citation for o in outcomes]).alias(f"{question.name}_citation"),
            ]
        # One explanation per combination of the questions' outcomes.
        sizes = [len(self.outcomes[question.name]) for question in self.policy.questions]
        combined = functools.reduce(
            lambda acc, item: acc * item[1] + pl.col(f"__index_{item[0]}").cast(pl.UInt32),
            zip((q.name for q in self.policy.questions), sizes, strict=True),
            pl.lit(0, dtype=pl.UInt32),
        )
        texts = [
            field_explanation(self.policy, list(parts))
            for parts in itertools.product(*(self.outcomes[q.name] for q in self.policy.questions))
        ]
        columns.append(_lookup(combined, texts).alias("explanation"))
        return indexes.select(columns).select(output_columns(self.policy))


def _column(records: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Series:
    """A column of the case table, or all null when the table does not carry it (simulated cases)."""
    if name in records.columns:
        return records.get_column(name).cast(dtype)
    return pl.repeat(None, records.height, dtype=dtype, eager=True).alias(name)


def _codes(column: pl.Series) -> tuple[np.ndarray, list[str]]:
    """A text column as codes into its distinct values, in order of first appearance (-1: null)."""
    names = column.drop_nulls().unique(maintain_order=True).to_list()
    codes = column.replace_strict(names, list(range(len(names))), default=-1, return_dtype=pl.Int64)
    return codes.to_numpy(), names


def _text_codes(records: pl.DataFrame, name: str) -> tuple[np.ndarray, list[str]]:
    """A text column of the case table (all null when absent) as codes into a list of its values (-1: null).
    An Enum column (simulated cases) keeps its own codes and categories: no string is compared."""
    if name in records.columns and isinstance(records.schema[name], pl.Enum):
        column = records.get_column(name)
        return column.to_physical().cast(pl.Int64).fill_null(-1).to_numpy(), column.dtype.categories.to_list()
    return _codes(_column(records, name, pl.String))


def _code(vocabulary: list[str], text: str) -> int:
    """The code of `text` in a vocabulary built on the way."""
    if text not in vocabulary:
        vocabulary.append(text)
    return vocabulary.index(text)


def _lookup(index: pl.Expr | pl.Series, values: list[str], categories: list[str] | None = None) -> pl.Expr | pl.Series:
    """Map outcome indexes to text as an Enum column (cheap, however many rows)."""
    dtype = pl.Enum(categories or list(dict.fromkeys(values)))
    return index.replace_strict(list(range(len(values))), values, return_dtype=dtype)


def _outcome_column(index: np.ndarray, values: list[str], categories: list[str] | None = None) -> pl.Series:
    """Outcome indexes as an Enum column of their values (`_lookup` on arrays: one code per outcome)."""
    categories = categories or list(dict.fromkeys(values))
    codes = np.array([categories.index(value) for value in values], dtype=np.uint32)
    return pl.Series(codes[index]).cat.to(pl.Enum(categories))


@functools.cache
def compile_policy(policy: Policy) -> CompiledPolicy:
    return CompiledPolicy(policy)
