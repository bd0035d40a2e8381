"""Every metric, declared once: the registry that simulate, compare, validate, calibration,
the report and the CSV/JSON outputs read.

A `Metric` says what it counts and how: its name, label, short label (for charts), unit, the
pipeline stage the people it counts have reached, the event date that dates it, how it rounds,
the channels it exists for, and its computation: the records it selects (`selects`) and, for a
sum rather than a count, the column summed over them (`amount`, priced by a daily cost for the
jail's cost). Its source is
one of
- `segments`: county × month pieces (split at the county's activation), counted, never listed —
  bookings, fingerprints checked, street arrests; the metric's name is the segment column summed;
- `records`: one row per person who reached ICE, by an IDENT match (channel
  `secure_communities`) or another route (`other_routes`);
- `places`: the places table (counties activated, a stock as of a day).
A `Share` is one count over another, both over the same window.

The dating rule: one event date per metric (`dated_by`).
- `booking_at` — IDENT matches, and everything decided at the booking: detainers issued (and on
  minor charges), the jail's decisions, holds, their hours and cost, U.S. citizens held;
- `transfer_at` — transfers to ICE; `removal_at` — removals;
- `segment_start` — segment counts; `sc_activation_date` — counties activated.
That one definition is read two ways, and this is the only place they differ:
- a published figure's window (calibration/targets.py) counts the events dated inside it: a
  record whose `dated_by` falls in the window; a segment in proportion to its days inside;
- a period's totals (simulate, compare, the report) follow the people booked in the period:
  every record counts in the county and month of its booking, and a metric dated by `removal_at`
  counts its event only if it happened by the period's last day (`Metric.counted_to_period_end`):
  removals come months after the booking, and would otherwise count removals the period has not
  reached; a transfer follows the hold within days, so a period counts every transfer of its bookings.

Adding a metric is one entry in the registry below (its computation is its `selects`/`amount`);
everything that reports, compares or validates metrics reads it from here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Literal, TypeVar

import numpy as np
import polars as pl

from securecomm.core.places import counties as county_table
from securecomm.core.schema import Channel, Status
from securecomm.core.units import HOURS_PER_DAY
from securecomm.model.parameters import Parameters

Source = Literal["segments", "records", "places"]
Unit = Literal["bookings", "people", "detainers", "hours", "USD", "counties"]
Stage = Literal["booking", "fingerprint", "match", "issue", "hold", "pickup", "removal", "field", "activation"]
SECURE_COMMUNITIES_ONLY = (Channel.SECURE_COMMUNITIES,)
MONTH = "1mo"
# A sum a metric is made from: an aggregation expression, or sums per group as an array.
Summed = TypeVar("Summed", pl.Expr, np.ndarray)


@dataclass(frozen=True)
class Metric:
    """One metric. `channels` are those it exists for (none: counted before the channels split)."""

    name: str
    label: str
    short_label: str
    unit: Unit
    stage: Stage
    dated_by: str
    source: Source = "records"
    selects: pl.Expr | None = None  # records: those counted (None for segments and places)
    amount: str | None = None  # records: the column summed over those selected (None: count them)
    priced_per_day_by: str | None = None  # a parameter (USD a day) that prices the summed hours
    # Parameters (shares of the people selected, from a published study) the count is multiplied by:
    # an expected number of people, not a count of records (the Warren Institute's shares).
    scaled_by: tuple[str, ...] = ()
    decimals: int = 0
    channels: tuple[Channel, ...] = tuple(Channel)
    reported: bool = True  # in simulate, compare and the report (False: a published figure's metric only)

    @property
    def counted_to_period_end(self) -> bool:
        """Whether a period's totals count its event only if it happened by the period's last day: removals,
        which come months after the booking."""
        return self.dated_by == "removal_at"

    @property
    def targetable(self) -> bool:
        """Whether a published figure can be compared with it: any count of records, segments or
        places, except street arrests (drawn under the field policies, not in a population's segments)."""
        return self.amount is None and self.stage != "field" and not self.scaled_by

    def record_part(self, end: dt.date) -> pl.Expr:
        """Each record's part of a record metric over a period ending on `end`: whether it is counted,
        or the amount it adds (0 where it is not selected)."""
        if self.selects is None:
            raise ValueError(f"{self.name} is not counted from records")
        selected = self.selects
        if self.counted_to_period_end:
            selected = selected & (pl.col(self.dated_by) < pl.lit(end + dt.timedelta(days=1)).cast(pl.Datetime))
        if self.amount is None:
            return selected.alias(self.name)
        return pl.when(selected).then(pl.col(self.amount)).otherwise(0).alias(self.name)

    def from_sum(self, summed: Summed, parameters: Parameters) -> Summed:
        """The metric from the sum of its records' parts (an expression, or sums per group as an array): a
        count times the shares that scale it, hours priced by the day."""
        if self.amount is None:
            for share in self.scaled_by:
                summed = summed * parameters.value(share)
        elif self.priced_per_day_by is not None:
            summed = summed / HOURS_PER_DAY * parameters.value(self.priced_per_day_by)
        return summed

    def period_value(self, end: dt.date, parameters: Parameters) -> pl.Expr:
        """A record metric's value over the records of a period ending on `end` (an aggregation)."""
        return self.from_sum(self.record_part(end).sum(), parameters).alias(self.name)

    def rounded(self, value: float | None) -> float:
        """The value as outputs show it: whole for counts, `decimals` places for hours and dollars."""
        return round(float(value or 0), self.decimals) if self.decimals else int(value or 0)


@dataclass(frozen=True)
class Share:
    """A published share: `numerator` over `denominator`, both counted over the same window."""

    name: str
    label: str
    numerator: Metric
    denominator: Metric


ISSUED = pl.col("detainer_issued")
REMOVED = pl.col("removed")
TRANSFERRED = pl.col("transferred")
THROUGH_SECURE_COMMUNITIES = pl.col("channel") == Channel.SECURE_COMMUNITIES.label
# The most serious current charge (model/stages/bookings.py) is not a felony (a misdemeanor or an
# infraction), or is a traffic offense (category `traffic`; DUI and hit-and-run are not minor).
MINOR_CHARGES = (pl.col("most_serious_charge_level") != "felony") | (
    pl.col("most_serious_charge_category") == "traffic"
)


def _jail_decision(decision: str) -> pl.Expr:
    return ISSUED & (pl.col("jail_decision") == decision)


def _transferred_at_level(level: str) -> pl.Expr:
    """ICE arrests (transfers to ICE) at an offense level of the record ICE saw (model/stages/lesc.py)."""
    return TRANSFERRED & (pl.col("ice_level") == level)


def _removed_at_level(level: str) -> pl.Expr:
    """Removals at an offense level of the record at removal (ICE's counts; model/stages/removal.py)."""
    return REMOVED & (pl.col("removal_level") == level)


_REGISTRY = (
    Metric(
        name="bookings",
        label="Jail bookings",
        short_label="Jail bookings",
        unit="bookings",
        stage="booking",
        dated_by="segment_start",
        source="segments",
        channels=(),
    ),
    Metric(
        name="fingerprints_checked",
        label="Fingerprints checked in IDENT",
        short_label="Fingerprints checked",
        unit="bookings",
        stage="fingerprint",
        dated_by="segment_start",
        source="segments",
        channels=SECURE_COMMUNITIES_ONLY,
    ),
    Metric(
        name="ident_matches",
        label="IDENT matches",
        short_label="IDENT matches",
        unit="people",
        stage="match",
        dated_by="booking_at",
        selects=THROUGH_SECURE_COMMUNITIES,
        channels=SECURE_COMMUNITIES_ONLY,
    ),
    Metric(
        name="detainers_issued",
        label="Detainers issued",
        short_label="Detainers issued",
        unit="detainers",
        stage="issue",
        dated_by="booking_at",
        selects=ISSUED,
    ),
    Metric(
        name="detainers_honored",
        label="Detainers honored",
        short_label="Detainers honored",
        unit="detainers",
        stage="issue",
        dated_by="booking_at",
        selects=_jail_decision("honor"),
    ),
    Metric(
        name="detainers_declined",
        label="Detainers declined",
        short_label="Detainers declined",
        unit="detainers",
        stage="issue",
        dated_by="booking_at",
        selects=_jail_decision("decline"),
    ),
    Metric(
        name="detainers_review",
        label="Detainers sent to review",
        short_label="Sent to review",
        unit="detainers",
        stage="issue",
        dated_by="booking_at",
        selects=_jail_decision("review"),
    ),
    Metric(
        name="detainers_on_minor_charges",
        label="Detainers on minor charges (misdemeanor or traffic)",
        short_label="On minor charges",
        unit="detainers",
        stage="issue",
        dated_by="booking_at",
        selects=ISSUED & MINOR_CHARGES,
    ),
    Metric(
        name="hold_hours",
        label="Hours held on detainers",
        short_label="Hours held",
        unit="hours",
        stage="hold",
        dated_by="booking_at",
        selects=pl.col("held"),
        amount="hold_hours",
        decimals=2,
    ),
    Metric(
        name="transfers_to_ice",
        label="Transfers to ICE",
        short_label="Transfers to ICE",
        unit="people",
        stage="pickup",
        dated_by="transfer_at",
        selects=TRANSFERRED,
    ),
    Metric(
        name="removals",
        label="Removals (by the end date)",
        short_label="Removals",
        unit="people",
        stage="removal",
        dated_by="removal_at",
        selects=REMOVED,
    ),
    Metric(
        name="removals_level1",
        label="Removals: Level 1 (aggravated felony or 2+ felonies)",
        short_label="Level 1",
        unit="people",
        stage="removal",
        dated_by="removal_at",
        selects=_removed_at_level("level_1"),
    ),
    Metric(
        name="removals_level2",
        label="Removals: Level 2 (a felony or 3+ misdemeanors)",
        short_label="Level 2",
        unit="people",
        stage="removal",
        dated_by="removal_at",
        selects=_removed_at_level("level_2"),
    ),
    Metric(
        name="removals_level3",
        label="Removals: Level 3 (misdemeanors)",
        short_label="Level 3",
        unit="people",
        stage="removal",
        dated_by="removal_at",
        selects=_removed_at_level("level_3"),
    ),
    Metric(
        name="removals_noncriminal",
        label="Removals: no conviction on record",
        short_label="No conviction",
        unit="people",
        stage="removal",
        dated_by="removal_at",
        selects=_removed_at_level("non_criminal"),
    ),
    Metric(
        name="removals_no_record_or_first_offense",
        label="Removals: no record or a first offense",
        short_label="No record or first offense",
        unit="people",
        stage="removal",
        dated_by="removal_at",
        selects=REMOVED & (pl.col("known_convictions") <= 1),
    ),
    # Who is caught: indicators a monitor would track (issue 15). The Warren Institute's shares
    # (Kohli, Markowitz & Chavez, Oct 2011; docs/facts.md §5.4) are of people arrested by ICE through
    # Secure Communities, so they apply to the program's channel alone.
    Metric(
        name="removals_on_minor_charges",
        label="Removals on minor charges (misdemeanor or traffic)",
        short_label="Removed on minor charges",
        unit="people",
        stage="removal",
        dated_by="removal_at",
        selects=REMOVED & MINOR_CHARGES,
    ),
    Metric(
        name="detainers_no_conviction",
        label="Detainers on people with no conviction on record",
        short_label="Detainers, no conviction",
        unit="detainers",
        stage="issue",
        dated_by="booking_at",
        selects=ISSUED & (pl.col("known_convictions") == 0),
    ),
    Metric(
        name="removals_with_us_citizen_family",
        label="Removals of people with a U.S.-citizen spouse or child (Warren Institute share)",
        short_label="Removed, U.S.-citizen family",
        unit="people",
        stage="removal",
        dated_by="removal_at",
        selects=REMOVED & THROUGH_SECURE_COMMUNITIES,
        scaled_by=("us_citizen_spouse_or_child_share",),
        decimals=2,
        channels=SECURE_COMMUNITIES_ONLY,
    ),
    Metric(
        name="transfers_with_hearing",
        label="Transfers to ICE slated for a hearing before an immigration judge (Warren Institute share)",
        short_label="With a hearing",
        unit="people",
        stage="pickup",
        dated_by="transfer_at",
        selects=TRANSFERRED & THROUGH_SECURE_COMMUNITIES,
        scaled_by=("immigration_hearing_share",),
        decimals=2,
        channels=SECURE_COMMUNITIES_ONLY,
    ),
    Metric(
        name="transfers_with_counsel",
        label="Transfers to ICE with a hearing and a lawyer (Warren Institute shares)",
        short_label="With a lawyer",
        unit="people",
        stage="pickup",
        dated_by="transfer_at",
        selects=TRANSFERRED & THROUGH_SECURE_COMMUNITIES,
        scaled_by=("immigration_hearing_share", "counsel_share_of_hearings"),
        decimals=2,
        channels=SECURE_COMMUNITIES_ONLY,
    ),
    Metric(
        name="transfers_granted_relief",
        label="Transfers to ICE granted relief by an immigration judge (Warren Institute share)",
        short_label="Granted relief",
        unit="people",
        stage="pickup",
        dated_by="transfer_at",
        selects=TRANSFERRED & THROUGH_SECURE_COMMUNITIES,
        scaled_by=("relief_granted_share",),
        decimals=2,
        channels=SECURE_COMMUNITIES_ONLY,
    ),
    Metric(
        name="us_citizens_held",
        label="U.S. citizens held",
        short_label="U.S. citizens held",
        unit="people",
        stage="issue",
        dated_by="booking_at",
        selects=pl.col("held") & pl.col("status").is_in([status.label for status in Status if not status.noncitizen]),
    ),
    Metric(
        name="jail_cost_usd",
        label="Jail cost of holds (USD)",
        short_label="Jail cost",
        unit="USD",
        stage="hold",
        dated_by="booking_at",
        selects=pl.col("held"),
        amount="hold_hours",
        priced_per_day_by="jail_daily_cost_usd",
        decimals=2,
    ),
    Metric(
        name="field_arrests",
        label="Street arrests on ICE warrants",
        short_label="Street arrests",
        unit="people",
        stage="field",
        dated_by="segment_start",
        source="segments",
        channels=(),
    ),
    # The metrics of published figures alone (calibration/targets.csv).
    Metric(
        name="removals_convicted",
        label="Removals: a conviction on record",
        short_label="Convicted",
        unit="people",
        stage="removal",
        dated_by="removal_at",
        selects=REMOVED & (pl.col("removal_level") != "non_criminal"),
        reported=False,
    ),
    Metric(
        name="removals_noncriminal_or_level3",
        label="Removals: no conviction on record or Level 3",
        short_label="Non-criminal or Level 3",
        unit="people",
        stage="removal",
        dated_by="removal_at",
        selects=REMOVED & pl.col("removal_level").is_in(["non_criminal", "level_3"]),
        reported=False,
    ),
    Metric(
        name="transfers_noncriminal",
        label="ICE arrests of people without a conviction on record",
        short_label="ICE arrests, non-criminal",
        unit="people",
        stage="pickup",
        dated_by="transfer_at",
        selects=TRANSFERRED & (pl.col("ice_level") == "non_criminal"),
        reported=False,
    ),
    Metric(
        name="transfers_convicted",
        label="ICE arrests of people with a conviction on record",
        short_label="ICE arrests, convicted",
        unit="people",
        stage="pickup",
        dated_by="transfer_at",
        selects=TRANSFERRED & (pl.col("ice_level") != "non_criminal"),
        reported=False,
    ),
    Metric(
        name="transfers_level1",
        label="ICE arrests at Level 1",
        short_label="ICE arrests, Level 1",
        unit="people",
        stage="pickup",
        dated_by="transfer_at",
        selects=_transferred_at_level("level_1"),
        reported=False,
    ),
    Metric(
        name="transfers_level2",
        label="ICE arrests at Level 2",
        short_label="ICE arrests, Level 2",
        unit="people",
        stage="pickup",
        dated_by="transfer_at",
        selects=_transferred_at_level("level_2"),
        reported=False,
    ),
    Metric(
        name="transfers_level3",
        label="ICE arrests at Level 3",
        short_label="ICE arrests, Level 3",
        unit="people",
        stage="pickup",
        dated_by="transfer_at",
        selects=_transferred_at_level("level_3"),
        reported=False,
    ),
    Metric(
        name="detainers_transferred",
        label="Detainers that ended in a transfer to ICE (dated by the booking)",
        short_label="Detainers transferred",
        unit="detainers",
        stage="pickup",
        dated_by="booking_at",
        selects=TRANSFERRED,
        reported=False,
    ),
    Metric(
        name="counties_activated",
        label="Counties where Secure Communities was active",
        short_label="Counties activated",
        unit="counties",
        stage="activation",
        dated_by="sc_activation_date",
        source="places",
        channels=SECURE_COMMUNITIES_ONLY,
        reported=False,
    ),
)
METRICS: dict[str, Metric] = {metric.name: metric for metric in _REGISTRY}
REPORTED: tuple[str, ...] = tuple(name for name, metric in METRICS.items() if metric.reported)
SHARES: dict[str, Share] = {
    share.name: share
    for share in (
        Share(
            "removals_noncriminal_share",
            "Share of removals without a conviction on record",
            METRICS["removals_noncriminal"],
            METRICS["removals"],
        ),
        Share(
            "detainers_no_conviction_share",
            "Share of the detainers issued on people with no conviction on record",
            METRICS["detainers_no_conviction"],
            METRICS["detainers_issued"],
        ),
        Share(
            "removals_level1_share",
            "Share of removals at Level 1",
            METRICS["removals_level1"],
            METRICS["removals"],
        ),
        Share(
            "removals_noncriminal_or_level3_share",
            "Share of removals without a conviction on record or at Level 3 (no record or a minor offense)",
            METRICS["removals_noncriminal_or_level3"],
            METRICS["removals"],
        ),
        Share(
            "transfers_noncriminal_share",
            "Share of ICE arrests of people without a conviction on record",
            METRICS["transfers_noncriminal"],
            METRICS["transfers_to_ice"],
        ),
        Share(
            "detainer_transfer_share",
            "Share of the detainers issued (by booking) that ended in a transfer to ICE",
            METRICS["detainers_transferred"],
            METRICS["detainers_issued"],
        ),
    )
}


def _reported(source: Source) -> list[Metric]:
    return [METRICS[name] for name in REPORTED if METRICS[name].source == source]


def counties_activated(county_codes: Sequence[str], day: dt.date) -> int:
    """Counties among `county_codes` where Secure Communities was active on `day`."""
    table = county_table().filter(pl.col("fips").is_in(list(county_codes)))
    return int(table.filter(pl.col("sc_activation_date") <= day).height)


@dataclass(frozen=True)
class MonthGroups:
    """The county-month groups of a place's segments and records: a group is an integer (county × months
    spanned + month, counties in FIPS order), so that grouping, joining and sorting compare integers rather
    than county codes as strings. A population's groups serve every policy applied to it."""

    counties: list[str]
    first_month: int  # months since 1970
    span: int  # months spanned
    segment_groups: np.ndarray
    record_groups: np.ndarray

    @classmethod
    def of(cls, segments: pl.DataFrame, records: pl.DataFrame) -> MonthGroups:
        """Segments by their start, records by their booking."""
        segment_fips = segments.get_column("fips").cast(pl.String)
        record_fips = records.get_column("fips")
        record_counties = (
            record_fips.dtype.categories.to_list()
            if isinstance(record_fips.dtype, pl.Enum)
            else record_fips.cast(pl.String).unique().to_list()
        )
        counties = sorted(set(segment_fips.unique().to_list()) | set(record_counties))
        segment_months = segments.get_column("segment_start").to_numpy().astype("datetime64[M]").astype(np.int64)
        record_months = records.get_column("booking_at").to_numpy().astype("datetime64[M]").astype(np.int64)
        months = np.concatenate([segment_months, record_months])
        first = int(months.min()) if months.size else 0
        span = int(months.max()) - first + 1 if months.size else 1
        return cls(
            counties,
            first,
            span,
            _county_codes(segment_fips, counties) * span + (segment_months - first),
            _county_codes(record_fips, counties) * span + (record_months - first),
        )

    @property
    def size(self) -> int:
        return len(self.counties) * self.span

    @cached_property
    def with_records(self) -> np.ndarray:
        """Whether each group has records."""
        return np.bincount(self.record_groups, minlength=self.size) > 0

    @cached_property
    def present(self) -> np.ndarray:
        """The groups that have segments or records: the rows of a table."""
        return np.flatnonzero(self.with_records | (np.bincount(self.segment_groups, minlength=self.size) > 0))

    @cached_property
    def keys(self) -> tuple[pl.Series, pl.Series]:
        """The county and month of each row of a table: the same for every policy applied to a population."""
        month = (self.first_month + self.present % self.span).astype("datetime64[M]").astype("datetime64[D]")
        # In FIPS order by construction, and flagged so as a sort would flag it: summing per county then takes
        # Polars' sorted path, and adds the same floats in the same order as before.
        fips = pl.Series("fips", self.counties, dtype=pl.String).gather(self.present // self.span).set_sorted()
        return fips, pl.Series("month", month)

    def segment_columns(self, segments: pl.DataFrame) -> dict[str, pl.Series]:
        """The reported segment metrics per county and calendar month: the rows of a table (`table`), the same for
        every policy applied to a population (the policy stages count records, not segments)."""
        present = self.present
        return {
            metric.name: pl.Series(
                metric.name,
                np.bincount(
                    self.segment_groups, weights=segments.get_column(metric.name).to_numpy(), minlength=self.size
                )[present],
                dtype=segments.schema[metric.name],
            )
            for metric in _reported("segments")
        }

    def table(
        self, segment_columns: Mapping[str, pl.Series], sums: Mapping[str, np.ndarray], parameters: Parameters
    ) -> pl.DataFrame:
        """Every reported metric per county and calendar month that has segments or records: the segments'
        counts (`segment_columns`), the records' from their sums per group and channel (`record_sums`)."""
        present = self.present
        columns = [
            segment_columns[name]
            if name in segment_columns
            # Channels summed before the groups are picked: the same additions, on contiguous arrays.
            else _metric_series(METRICS[name], sums[name].sum(axis=0)[present], parameters)
            for name in REPORTED
        ]
        return pl.DataFrame([*self.keys, *columns])


def county_months(segments: pl.DataFrame, records: pl.DataFrame, end: dt.date, parameters: Parameters) -> pl.DataFrame:
    """Every reported metric per county and calendar month of a period ending on `end`
    (segments by their start, records by their booking)."""
    groups = MonthGroups.of(segments, records)
    sums = record_sums(records, end, groups.record_groups, groups.size)
    return groups.table(groups.segment_columns(segments), sums, parameters)


def _county_codes(fips: pl.Series, counties: list[str]) -> np.ndarray:
    """Each row's position in `counties`; an Enum column is recoded through its categories, not row by row."""
    if isinstance(fips.dtype, pl.Enum):
        position = {name: index for index, name in enumerate(counties)}
        recode = np.array([position[name] for name in fips.dtype.categories.to_list()], dtype=np.int64)
        return recode[fips.to_physical().to_numpy()]
    return fips.cast(pl.Enum(counties)).to_physical().to_numpy().astype(np.int64)


def county_sums(table: pl.DataFrame) -> pl.DataFrame:
    """Every metric of a county-month table (sorted by county) summed per county, in FIPS order: the sums of
    Polars' `group_by("fips").agg(sum)`, float for float (each county's months added one after another, in the
    table's order, as its sum per group adds them), without its cost per group and metric (three thousand
    counties times twenty-odd metrics for each policy run of a national comparison)."""
    fips = table.get_column("fips")
    if not fips.is_sorted():
        raise ValueError("a county-month table comes sorted by county")
    county = fips.rle_id().to_numpy().astype(np.int64)
    first = np.flatnonzero(np.r_[True, county[1:] != county[:-1]]) if table.height else np.zeros(0, np.int64)
    within = np.arange(table.height) - first[county]  # each row's place among its county's rows
    columns = []
    for name in table.columns:
        if name in ("fips", "month"):
            continue
        column = table.get_column(name)
        values = column.to_numpy()
        if column.dtype.is_float():
            by_place = np.zeros((int(within.max(initial=0)) + 1, first.size))
            by_place[within, county] = values
            summed = by_place[0].copy()
            for rows in by_place[1:]:
                summed += rows
        else:  # integers add up exactly in any order
            summed = np.add.reduceat(values.astype(np.int64), first) if first.size else np.zeros(0, np.int64)
        columns.append(pl.Series(name, summed).cast(column.dtype))
    return pl.DataFrame([fips.gather(first), *columns])


# A count of records selected by fewer than one in SPARSE_FROM is made from the cells of those selected alone.
SPARSE_FROM = 8


def record_sums(
    records: pl.DataFrame,
    end: dt.date,
    groups: np.ndarray,
    size: int,
    wanted: Callable[[frozenset[str]], bool] | None = None,
) -> dict[str, np.ndarray]:
    """Each reported record metric's parts summed per group (`groups`: each record's group, 0..size-1) and
    channel: arrays of shape (channels, size), the channels in `Channel` order. Given `wanted` (whether a
    part that reads these columns is wanted), only the metrics of the parts it wants.

    The parts are evaluated once over all records and summed with bincount: a group_by evaluating
    twenty-odd filtered sums inside every group costs ten times as much, and a threaded group_by adds
    floats in an order that changes from run to run. Metrics with the same part (the jail's cost and the
    hours held; the Warren Institute's shares of one count) share its sums. The sums over two sets of
    records add up (`added`) to the sums over both."""
    channels = len(Channel)
    cells = _channel_codes(records) * size + groups
    parts = _distinct_parts(end)
    evaluated = records.select(
        expression
        for expression in parts.expressions
        if wanted is None or wanted(frozenset(expression.meta.root_names()))
    )
    counts = [name for name, dtype in evaluated.schema.items() if dtype == pl.Boolean]
    # How many records each count selects (a null selects none).
    selecting = evaluated.select(pl.col(counts).sum()).row(0, named=True) if counts else {}
    summed: dict[str, np.ndarray] = {}
    many = []  # the counts selecting many records, made together
    for name in evaluated.columns:
        if name in selecting and selecting[name] * SPARSE_FROM >= evaluated.height:
            many.append(name)
            continue
        part = evaluated.get_column(name)
        if part.null_count():  # filling costs a query of its own: only where there is something to fill
            part = part.fill_null(False if part.dtype == pl.Boolean else 0)
        if part.dtype == pl.Boolean:  # the cells of the few selected
            summed[name] = np.bincount(cells[part.to_numpy()], minlength=size * channels).reshape(channels, size)
        else:
            values = part.to_numpy()
            adding = values != 0
            amounts = np.bincount(cells[adding], weights=values[adding], minlength=size * channels)
            summed[name] = amounts.reshape(channels, size)
    for name, made in _counts_together(cells, evaluated.select(many), size * channels).items():
        summed[name] = made.reshape(channels, size)
    return {metric: summed[part] for metric, part in parts.part_of.items() if part in summed}


# The integers a float64 holds exactly: those below 2**53.
EXACT_FLOAT_BITS = 53


def _counts_together(cells: np.ndarray, selections: pl.DataFrame, length: int) -> dict[str, np.ndarray]:
    """The count per cell of each selection of records (a Boolean column each; a null selects none), several
    in one weighted bincount: each selection is a field of bits of the weight, wide enough for the most records
    of any cell, so that no sum carries from one field into the next, and fields fill at most 53 bits, so that
    every sum is an exact integer. A bincount costs the same with one selection as with four; the weights are
    made in one query, not a pass over the records for each selection."""
    if not selections.width:
        return {}
    bits = max(int(np.bincount(cells, minlength=length).max(initial=0)).bit_length(), 1)
    per_weight = EXACT_FLOAT_BITS // bits
    together = [selections.columns[first : first + per_weight] for first in range(0, selections.width, per_weight)]
    weights = selections.select(
        pl.sum_horizontal(
            pl.col(name).fill_null(False).cast(pl.Float64) * float(1 << bits * field)
            for field, name in enumerate(names)
        ).alias(str(position))
        for position, names in enumerate(together)
    )
    counts = {}
    for position, names in enumerate(together):
        fields = np.bincount(cells, weights=weights.get_column(str(position)).to_numpy(), minlength=length)
        fields = fields.astype(np.int64)
        for field, name in enumerate(names):
            counts[name] = (fields >> bits * field) & ((1 << bits) - 1)
    return counts


@dataclass(frozen=True)
class _Parts:
    """The distinct parts of the reported record metrics (each named by its first metric) and, for every
    such metric, the part it sums."""

    expressions: tuple[pl.Expr, ...]
    part_of: dict[str, str]


@cache
def _distinct_parts(end: dt.date) -> _Parts:
    """The reported record metrics' parts (`Metric.record_part`) over a period ending on `end`, each
    distinct part once."""
    expressions: list[pl.Expr] = []
    part_of: dict[str, str] = {}
    for metric in _reported("records"):
        part = metric.record_part(end)
        same = next((kept for kept in expressions if kept.meta.undo_aliases().meta.eq(part.meta.undo_aliases())), None)
        if same is None:
            expressions.append(part)
            part_of[metric.name] = metric.name
        else:
            part_of[metric.name] = same.meta.output_name()
    return _Parts(tuple(expressions), part_of)


def _channel_codes(records: pl.DataFrame) -> np.ndarray:
    channel = records.get_column("channel")
    if isinstance(channel.dtype, pl.Enum) and channel.dtype.categories.to_list() == list(Channel.labels()):
        return channel.to_physical().to_numpy().astype(np.int64)
    return channel.cast(pl.String).replace_strict(list(Channel.labels()), list(range(len(Channel)))).to_numpy()


def added(first: Mapping[str, np.ndarray], second: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The sums (`record_sums`) over two sets of records, as the sums over both; a metric the second does not
    sum (`record_sums(wanted=...)`) keeps the first's sums."""
    return {name: first[name] + second[name] if name in second else first[name] for name in first}


def _metric_series(metric: Metric, summed: np.ndarray, parameters: Parameters) -> pl.Series:
    """A record metric from its sums per group: a count of records as an integer."""
    counted = metric.amount is None and not metric.scaled_by
    return pl.Series(metric.name, metric.from_sum(summed, parameters), dtype=pl.UInt32 if counted else pl.Float64)


def rounded(values: Mapping[str, float]) -> dict[str, float]:
    """Metric values as outputs show them (each metric's rounding); other keys pass through."""
    return {name: METRICS[name].rounded(value) if name in METRICS else value for name, value in values.items()}


def totals(table: pl.DataFrame) -> dict[str, float]:
    """Every reported metric of a county-month table, summed and rounded."""
    return rounded(table.select(pl.col(name).sum() for name in REPORTED).row(0, named=True))


def channel_values(sums: Mapping[str, np.ndarray], parameters: Parameters) -> dict[str, dict[str, float]]:
    """The reported record metrics per channel from their sums (`record_sums`); zero where a metric does not
    exist for the channel."""
    values = {name: metric_sums.sum(axis=1) for name, metric_sums in sums.items()}
    values = {metric.name: metric.from_sum(values[metric.name], parameters) for metric in _reported("records")}
    return {
        channel.label: rounded({name: float(value[channel]) for name, value in values.items()}) for channel in Channel
    }


def channel_totals(records: pl.DataFrame, end: dt.date, parameters: Parameters) -> dict[str, dict[str, float]]:
    """The reported record metrics per channel (zero where a metric does not exist for the channel)."""
    return channel_values(record_sums(records, end, np.zeros(records.height, dtype=np.int64), 1), parameters)
