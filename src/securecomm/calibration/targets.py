"""Published figures as targets, and the model's value of each.

`calibration/targets.csv` holds one published figure per row (`place_targets.csv`, in the same
columns, the published figures of states, counties and cities): its value, the place and period it
covers, the metric it is compared with, the channel (Secure Communities alone, or every ICE
route), the source, a tolerance, and whether calibration may fit it (`fit`) or it is held out
for validation (`holdout`). `calibration/settings.yaml` holds the settings of calibration and
validation (docs/validation.md).

A target's model value is computed from one simulation's segments and records over the
target's own window, by the metric's one definition in the registry (securecomm.model.metrics):
the records it selects whose event date (`dated_by`) falls inside the window, a segment count in
proportion to each segment's days inside, a share as one count over another, and counties
activated as of the window's end. A record count's `stage` (match, issue, pickup, removal) is what
lets calibration reweight the same selections (calibration/surrogate.py).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from securecomm.core.places import NATION, resolve_place
from securecomm.model.metrics import METRICS, REPORTED, SECURE_COMMUNITIES_ONLY, SHARES, Metric, counties_activated

USES = ("fit", "holdout")
COMPARISONS = ("approx", "at_least")
# How a target's tolerance is read: `relative` (|model − published| ≤ tolerance × published),
# `factor` (published ÷ tolerance ≤ model ≤ published × tolerance) or `points` (a share:
# |model − published| ≤ tolerance).
TOLERANCE_UNITS = ("relative", "factor", "points")
TARGET_CHANNELS = ("secure_communities", "all")
TARGET_COLUMNS = (
    "id",
    "use",
    "metric",
    "channel",
    "place",
    "place_name",
    "start",
    "end",
    "published",
    "comparison",
    "tolerance",
    "tolerance_unit",
    "series",
    "source",
    "url",
    "note",
)


class TargetError(ValueError):
    """The targets table or the settings file is malformed; the message names the row or key."""


# Record counts (what calibration reweights) and every metric a published figure can name.
COUNTS: dict[str, Metric] = {
    name: metric for name, metric in METRICS.items() if metric.source == "records" and metric.targetable
}
TARGET_METRICS = (*(name for name, metric in METRICS.items() if metric.targetable), *SHARES)


def secure_communities_only(metric: str) -> bool:
    """Whether a target's metric exists only for the Secure Communities channel."""
    return metric in METRICS and METRICS[metric].channels == SECURE_COMMUNITIES_ONLY


@dataclass(frozen=True)
class Target:
    id: str
    use: str
    metric: str
    channel: str
    place: str
    place_name: str
    start: dt.date
    end: dt.date
    published: float
    comparison: str
    tolerance: float
    tolerance_unit: str
    series: str
    source: str
    url: str
    note: str

    @property
    def fitted(self) -> bool:
        return self.use == "fit"

    def identity(self) -> dict[str, str]:
        """The keys that name the figure in every JSON row about it."""
        return {"id": self.id, "metric": self.metric, "place": self.place, "place_name": self.place_name}

    def counties(self) -> list[str]:
        return resolve_place(self.place)

    def misfit(self, value: float) -> float:
        """The model's error in units of the tolerance, signed: within it when |misfit| ≤ 1. A lower
        bound (`at_least`) has none when the model is above it."""
        if self.tolerance_unit == "points":
            error = (value - self.published) / self.tolerance
        elif self.tolerance_unit == "factor":
            error = math.log(value / self.published) / math.log(self.tolerance) if value > 0 else -math.inf
        else:
            error = (value - self.published) / self.published / self.tolerance
        return min(error, 0.0) if self.comparison == "at_least" else error

    def within(self, value: float) -> bool:
        """Whether a model value is within the target's tolerance (at its edge included)."""
        return abs(self.misfit(value)) <= 1 + 1e-9


@dataclass(frozen=True)
class SeriesCheck:
    id: str
    description: str
    statistic: str
    at_least: float


@dataclass(frozen=True)
class Settings:
    program_start: dt.date
    program_end: dt.date
    series: tuple[SeriesCheck, ...]
    validate_seed: int
    validate_replications: int
    validate_workers: int
    national_share_points: float  # issue 16: the nation's share of removals without a conviction, within
    calibrate: Mapping[str, Any]


def data_path(name: str) -> Path:
    return Path(str(files("securecomm.calibration").joinpath(name)))


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TargetError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise TargetError(f"{where}: {text!r} is not a finite number")
    return value


def _date(text: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise TargetError(f"{where}: {text!r} is not a date (YYYY-MM-DD)") from None


def parse_targets(text: str, name: str = "targets.csv") -> list[Target]:
    """Read and check a targets table (CSV with the columns of TARGET_COLUMNS)."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != TARGET_COLUMNS:
        raise TargetError(f"{name}: the columns must be {', '.join(TARGET_COLUMNS)}; got {reader.fieldnames}")
    targets, seen = [], set()
    for line, row in enumerate(reader, start=2):
        where = f"{name}, line {line} ({row.get('id') or 'no id'})"
        if None in row or any(value is None for value in row.values()):
            raise TargetError(f"{where}: wrong number of fields")
        for column, allowed in (
            ("use", USES),
            ("metric", TARGET_METRICS),
            ("channel", TARGET_CHANNELS),
            ("comparison", COMPARISONS),
            ("tolerance_unit", TOLERANCE_UNITS),
        ):
            if row[column] not in allowed:
                raise TargetError(f"{where}: {column} {row[column]!r} is not one of {', '.join(allowed)}")
        if not row["id"] or row["id"] in seen:
            raise TargetError(f"{where}: the id must be present and unique")
        seen.add(row["id"])
        if secure_communities_only(row["metric"]) and row["channel"] != "secure_communities":
            raise TargetError(f"{where}: {row['metric']} exists only for the secure_communities channel")
        if not row["source"] or not row["url"]:
            raise TargetError(f"{where}: a target needs a source and a url")
        try:
            resolve_place(row["place"])
        except ValueError as error:
            raise TargetError(f"{where}: {error}") from None
        start, end = _date(row["start"], f"{where} start"), _date(row["end"], f"{where} end")
        if end < start:
            raise TargetError(f"{where}: the end is before the start")
        published = _number(row["published"], f"{where} published")
        tolerance = _number(row["tolerance"], f"{where} tolerance")
        if published <= 0 or tolerance <= 0:
            raise TargetError(f"{where}: published value and tolerance must be positive")
        if row["tolerance_unit"] == "factor" and tolerance <= 1:
            raise TargetError(f"{where}: a tolerance factor must be above 1")
        targets.append(
            Target(
                id=row["id"],
                use=row["use"],
                metric=row["metric"],
                channel=row["channel"],
                place=row["place"].strip().upper(),
                place_name=row["place_name"],
                start=start,
                end=end,
                published=published,
                comparison=row["comparison"],
                tolerance=tolerance,
                tolerance_unit=row["tolerance_unit"],
                series=row["series"],
                source=row["source"],
                url=row["url"],
                note=row["note"],
            )
        )
    if not targets:
        raise TargetError(f"{name}: no targets")
    return targets


def load_targets(path: Path | None = None) -> list[Target]:
    """The shipped targets table (calibration/targets.csv), or another file of the same columns."""
    chosen = path or data_path("targets.csv")
    return parse_targets(chosen.read_text(encoding="utf-8"), chosen.name)


def load_place_targets() -> list[Target]:
    """The shipped place targets (calibration/place_targets.csv, built by scripts/build_place_targets.py
    from published place figures; its provenance and the rows skipped are in place_targets.yaml)."""
    return load_targets(data_path("place_targets.csv"))


def load_all_targets(path: Path | None = None) -> list[Target]:
    """What calibration fits and holds out: the national targets and the place targets, or only the
    table `path` if given."""
    return load_targets(path) if path is not None else [*load_targets(), *load_place_targets()]


@cache
def load_settings() -> Settings:
    """calibration/settings.yaml: the program period, series checks, validation and calibration settings."""
    document = yaml.safe_load(data_path("settings.yaml").read_text(encoding="utf-8"))
    try:
        program, validate = document["program"], document["validate"]
        series = tuple(
            SeriesCheck(item["id"], item["description"], item["statistic"], float(item["at_least"]))
            for item in document["series"]
        )
        settings = Settings(
            program_start=program["start"],
            program_end=program["end"],
            series=series,
            validate_seed=int(validate["seed"]),
            validate_replications=int(validate["replications"]),
            validate_workers=int(validate["workers"]),
            national_share_points=float(validate["national_share_points"]),
            calibrate=document["calibrate"],
        )
    except (KeyError, TypeError) as error:
        raise TargetError(f"calibration/settings.yaml: missing or malformed setting {error}") from None
    for check in settings.series:
        if check.statistic != "pearson":
            raise TargetError(f"calibration/settings.yaml: series {check.id}: unknown statistic {check.statistic!r}")
    return settings


def simulation_place(targets: Sequence[Target]) -> str:
    """One place spec covering every target's place."""
    places = sorted({target.place for target in targets})
    return NATION if NATION in places else ",".join(places)


def simulation_period(targets: Sequence[Target], *extra: dt.date) -> tuple[dt.date, dt.date]:
    """Whole calendar months covering every target's window (and any extra dates)."""
    first = min([target.start for target in targets] + list(extra))
    last = max([target.end for target in targets] + list(extra))
    month_end = (last.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    return first.replace(day=1), month_end


# --- the model's value of a target ---------------------------------------------------------


def _window(column: str, start: dt.date, end: dt.date) -> pl.Expr:
    first = dt.datetime.combine(start, dt.time())
    after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
    return pl.col(column).is_not_null() & (pl.col(column) >= first) & (pl.col(column) < after)


def _selected(count: Metric, channel: str, county_codes: Sequence[str] | None, start: dt.date, end: dt.date) -> pl.Expr:
    """Which records a count selects: channel, place (None: every county simulated), window, condition."""
    condition = _window(count.dated_by, start, end)
    if channel != "all":
        condition &= pl.col("channel") == channel
    if county_codes is not None:
        # Against the codes as they are (an Enum's codes compare as such): a cast of every record's code
        # to text cost more than the rest of a target's count.
        condition &= pl.col("fips").is_in(list(county_codes))
    if count.selects is not None:
        condition &= count.selects
    return condition.fill_null(False)


def count_mask(
    records: pl.DataFrame, count: Metric, channel: str, county_codes: Sequence[str] | None, start: dt.date, end: dt.date
) -> np.ndarray:
    """Which records a count selects (`_selected`), as a mask."""
    return records.select(_selected(count, channel, county_codes, start, end).alias("selected")).to_series().to_numpy()


def segment_count(
    segments: pl.DataFrame, metric: str, county_codes: Sequence[str] | None, start: dt.date, end: dt.date
) -> float:
    """A segment metric over a window: each county-month segment counted in proportion to its days inside."""
    first, after = start, end + dt.timedelta(days=1)
    frame = segments if county_codes is None else segments.filter(pl.col("fips").is_in(list(county_codes)))
    inside = (
        pl.min_horizontal(pl.col("segment_end"), pl.lit(after))
        - pl.max_horizontal(pl.col("segment_start"), pl.lit(first))
    ).dt.total_days()
    share = (inside.clip(0, None) / pl.col("days")).fill_nan(0.0)
    return float(frame.select((pl.col(metric) * share).sum()).item())


def _codes(target: Target, simulated: Sequence[str]) -> list[str] | None:
    codes = target.counties()
    missing = set(codes) - set(simulated)
    if missing:
        raise ValueError(f"target {target.id}: the simulation does not cover {target.place}")
    return None if len(codes) == len(simulated) else codes


def evaluate_targets(
    targets: Sequence[Target], segments: pl.DataFrame, records: pl.DataFrame, simulated: Sequence[str]
) -> dict[str, float]:
    """The model's value of every target, from one simulation of the counties `simulated`. The counts of
    records are summed place by place, in one pass over the place's records (a pass over every record per
    target cost seconds with the 176 targets of the nation and the places)."""
    values: dict[str, float] = {}
    # The record counts by place (None: every county simulated), each by target id, or "top"/"bottom" of a share.
    record_counts: dict[tuple[str, ...] | None, dict[str, pl.Expr]] = {}
    for target in targets:
        codes = _codes(target, simulated)
        counts = record_counts.setdefault(None if codes is None else tuple(codes), {})
        window = (target.channel, None, target.start, target.end)
        if target.metric in SHARES:
            share = SHARES[target.metric]
            counts[f"top {target.id}"] = _selected(share.numerator, *window).sum()
            counts[f"bottom {target.id}"] = _selected(share.denominator, *window).sum()
            continue
        metric = METRICS[target.metric]
        if metric.source == "places":
            values[target.id] = float(counties_activated(codes or simulated, target.end))
        elif metric.source == "segments":
            values[target.id] = segment_count(segments, target.metric, codes, target.start, target.end)
        else:
            counts[target.id] = _selected(metric, *window).sum()
    counted: dict[str, int] = {}
    for codes, counts in record_counts.items():
        place_records = records if codes is None else records.filter(pl.col("fips").is_in(list(codes)))
        if counts:
            counted.update(place_records.select(**counts).row(0, named=True))
    for target in targets:
        if target.metric in SHARES:
            top, bottom = counted[f"top {target.id}"], counted[f"bottom {target.id}"]
            values[target.id] = float(top / bottom) if bottom else float("nan")
        elif target.id in counted:
            values[target.id] = float(counted[target.id])
    return {target.id: values[target.id] for target in targets}


def place_figure_targets(place: str, start: dt.date, end: dt.date) -> list[Target]:
    """The model's own figures for a place over a period, as targets without a published value:
    every metric for Secure Communities and, where another route exists, for all routes."""
    figures = []
    for metric in (name for name in REPORTED if METRICS[name].targetable):
        for channel in TARGET_CHANNELS:
            if (channel == "all" and secure_communities_only(metric)) or (
                channel != "all" and not METRICS[metric].channels
            ):
                continue  # fingerprints and matches exist only for SC; bookings come before the channels split
            figures.append(
                Target(
                    id=f"{metric}:{channel}",
                    use="holdout",
                    metric=metric,
                    channel=channel,
                    place=place,
                    place_name="",
                    start=start,
                    end=end,
                    published=math.nan,
                    comparison="approx",
                    tolerance=math.nan,
                    tolerance_unit="relative",
                    series="",
                    source="",
                    url="",
                    note="",
                )
            )
    return figures
