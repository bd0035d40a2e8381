"""Published place figures (the workspace's `shared/data/place_figures/figures.csv`) as targets.

`read_place_figures` turns each row of that file into a row of the targets table (the columns of
calibration/targets.csv) or into a skipped row with its reason, so that every row is accounted for:

- the metric is read into the model's metric registry (`FIGURE_METRICS`), or the row is skipped
  because its metric is ambiguous, covers every ICE route rather than Secure Communities, or has no
  count in the model (`UNMODELLED`); rows the file's own notes mark as ambiguous or all-ICE are in `READINGS`;
- the period is read from the file's text: an exact date, a month (its first day for a start, its
  last for an end), a year or `activation` for a start (the place's first activation in the shipped
  activation table), `~` ignored, `YYYY-MM/MM` read as its later month for an end;
- the place is its FIPS codes (a city is its county);
- a value the quote marks as a lower bound ("[lower bound") is compared `at_least`;
- tolerance: counts within a factor 1.5 (2 under 500), shares within ±12 points (issue 16);
- two rows of the same place and metric whose windows overlap (shares ending within half a year of
  each other, counts over the same window) and whose values differ by more than the tolerance are
  both skipped (overlapping conflict).

scripts/build_place_targets.py runs this on the workspace's file and writes calibration/place_targets.csv
and its provenance (place_targets.yaml); the package reads only those.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import polars as pl

from securecomm.core.places import NATION, activation_date, counties, resolve_place
from securecomm.model.metrics import SHARES

FIGURE_COLUMNS = ("place_name", "fips", "start", "end", "metric", "value", "unit", "source", "quote")
COUNT_FACTOR = 1.5
SMALL_COUNT_FACTOR = 2.0
SMALL_COUNT = 500
SHARE_POINTS = 0.12
# Conflicts: shares whose windows overlap and end within half a year of each other; counts over the
# same window (start and end within a week, or a tenth of the window).
SHARE_CONFLICT_DAYS = 183
COUNT_CONFLICT_DAYS = 7

# The file's metric → the model's metric (registry name).
FIGURE_METRICS = {
    "submissions": "fingerprints_checked",
    "matches": "ident_matches",
    "ice_arrests_booked_in": "transfers_to_ice",
    "ice_arrests_transferred": "transfers_to_ice",
    "ice_arrests_convicted": "transfers_convicted",
    "ice_arrests_level1": "transfers_level1",
    "ice_arrests_level2": "transfers_level2",
    "ice_arrests_level3": "transfers_level3",
    "detainers": "detainers_issued",
    "removals": "removals",
    "removals_level1": "removals_level1",
    "removals_level2": "removals_level2",
    "removals_level3": "removals_level3",
    "removals_noncriminal": "removals_noncriminal",
    "share_removals_noncriminal": "removals_noncriminal_share",
    "share_removals_level1": "removals_level1_share",
    "share_removals_noncriminal_or_level3": "removals_noncriminal_or_level3_share",
    "share_ice_arrests_no_conviction": "transfers_noncriminal_share",
}
# The file's metrics the model has no count of, and why.
UNMODELLED = {
    "matches_level1": "ambiguous metric: ICE's level at identification counts people charged as well as convicted; "
    "the model's levels are by conviction",
    "matches_convicted": "no model count: IDENT matches are not counted by conviction",
    "matches_charged_or_convicted": "ambiguous metric: matches of people charged or convicted, a subset of matches",
    "share_matches_felony": "ambiguous metric: matches of people accused of felonies (charges, not ICE levels)",
    "share_of_national_detainers": "all ICE, not SC: a share of every detainer nationally",
    "removals_per_submission": "restates two other rows (removals ÷ submissions of the same place and period)",
    "share_ordered_removed_lowlevel_or_not_guilty": "not ICE's statistics: a report's own analysis of court cases",
    "share_noncriminal": "ambiguous metric: 'detained' and 'deported' mixed in the text",
    "share_level1": "ambiguous metric: 'detained' and 'deported' mixed in the text",
    "share_ice_arrests_level3": "ambiguous metric: a share of crimes (punishable by under a year), not of people",
    "share_removals_level1_max": "ambiguous metric: an upper bound whose place (Illinois or the nation) is unclear",
}
# Rows (by FIPS, metric and value as the file gives them) read against the file's own notes.
READINGS = {
    ("06037", "ice_arrests_transferred", "30093"): "ambiguous metric: 'turned over ... for deportation' "
    "(the file: likely removals)",
    ("04013", "ice_arrests_transferred", "22000"): "ambiguous metric and period: 'relinquished to ICE', "
    "activation not stated (the file: approx., ambiguous)",
    ("06085", "ice_arrests_transferred", "500"): "ambiguous metric: 'arrests' (the file: likely ICE arrests, approx.)",
    ("37183", "share_removals_noncriminal", "0.64"): "ambiguous period: a secondary, unsourced blog; period unclear "
    "(the file's note)",
    ("06037", "detainers", "14771"): "all ICE, not SC: every ICE detainer, from before the county's activation "
    "(the file's note)",
    (
        "06037",
        "ice_arrests_transferred",
        "5184",
    ): "all ICE, not SC: every transfer to ICE in LASD data (the file's note)",
}

_DATE = re.compile(r"~?\s*(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?(?:/(\d{2}))?")
_DAY = re.compile(r"\(~(\d{2})\)")
_CODE = re.compile(r"^(US|\d{5}|\d{2})$")
_URL = re.compile(r"https?://\S+")


class PlaceFigureError(ValueError):
    """The place figures file is malformed; the message names the line."""


@dataclass(frozen=True)
class Skipped:
    line: int
    place_name: str
    metric: str
    value: str
    reason: str


@cache
def _state_codes() -> dict[str, str]:
    """Two-digit state FIPS → the state's USPS code (the place syntax of targets)."""
    return dict(counties().select(pl.col("fips").str.slice(0, 2), "state").unique().iter_rows())


def _codes(text: str, where: str) -> list[str]:
    """A place's codes in the targets' place syntax: US, USPS state codes, county FIPS."""
    codes = [code.strip() for code in text.split("(")[0].split("/")]
    if not codes or not all(_CODE.match(code) for code in codes):
        raise PlaceFigureError(f"{where}: FIPS {text!r} is not a list of codes")
    try:
        return [_state_codes()[code] if code.isdigit() and len(code) == 2 else code for code in codes]
    except KeyError as error:
        raise PlaceFigureError(f"{where}: unknown state FIPS {error}") from None


def first_activation(codes: Sequence[str]) -> dt.date:
    """The first activation in the shipped activation table among the counties of a place."""
    dates = []
    for county in resolve_place(",".join(codes)):
        try:
            dates.append(activation_date(county))
        except ValueError:
            continue  # a county without an activation date (the shipped table says why)
    return min(dates)


def _when(text: str, *, end: bool, activation: Callable[[], dt.date], where: str) -> dt.date:
    """A start or end date read from the file's text (see the module's docstring)."""
    text = text.strip()
    if text.startswith("activation"):
        if end:
            raise PlaceFigureError(f"{where}: an end cannot be the activation")
        return activation()
    match = _DATE.match(text)
    if match is None:
        raise PlaceFigureError(f"{where}: {text!r} is not a date")
    year, month, day, later_month = match.groups()
    if month is None:
        return dt.date(int(year), 12, 31) if end else activation()
    month_number = int(later_month) if end and later_month else int(month)
    if day is not None:
        return dt.date(int(year), month_number, int(day))
    if (pinned := _DAY.search(text)) is not None:
        return dt.date(int(year), month_number, int(pinned.group(1)))
    if "(~mid)" in text:
        return dt.date(int(year), month_number, 15)
    last = calendar.monthrange(int(year), month_number)[1]
    return dt.date(int(year), month_number, last if end else 1)


def _value(text: str, unit: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PlaceFigureError(f"{where}: value {text!r} is not a number") from None
    if unit == "share" and not 0 < value < 1:
        raise PlaceFigureError(f"{where}: a share must lie in (0, 1), got {value}")
    return value


def tolerance(metric: str, published: float) -> tuple[float, str]:
    """The issue's tolerance of a place figure: ±12 points for a share, a factor 1.5 for a count (2 under 500)."""
    if metric in SHARES:
        return SHARE_POINTS, "points"
    return (SMALL_COUNT_FACTOR if published < SMALL_COUNT else COUNT_FACTOR), "factor"


def _conflicting(a: dict[str, str], b: dict[str, str]) -> bool:
    if a["place"] != b["place"] or a["metric"] != b["metric"]:
        return False
    a_start, a_end = dt.date.fromisoformat(a["start"]), dt.date.fromisoformat(a["end"])
    b_start, b_end = dt.date.fromisoformat(b["start"]), dt.date.fromisoformat(b["end"])
    if a_start > b_end or b_start > a_end:
        return False
    if a["tolerance_unit"] == "points":
        if abs((a_end - b_end).days) > SHARE_CONFLICT_DAYS:
            return False
    else:
        slack = max(COUNT_CONFLICT_DAYS, (max(a_end, b_end) - min(a_start, b_start)).days // 10)
        if abs((a_start - b_start).days) > slack or abs((a_end - b_end).days) > slack:
            return False
    low, high = sorted((float(a["published"]), float(b["published"])))
    limit, unit = float(a["tolerance"]), a["tolerance_unit"]
    return high - low > limit if unit == "points" else high / low > limit


def read_place_figures(text: str, name: str = "figures.csv") -> tuple[list[dict[str, str]], list[Skipped]]:
    """Rows of the targets table (calibration/targets.TARGET_COLUMNS) and the rows skipped with their
    reason. A place's figure is `fit` (calibration fits the field offices to it); a national one is
    `holdout` (calibration/targets.csv holds the nation's)."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != FIGURE_COLUMNS:
        raise PlaceFigureError(f"{name}: the columns must be {', '.join(FIGURE_COLUMNS)}; got {reader.fieldnames}")
    used: list[tuple[int, dict[str, str]]] = []
    skipped: list[Skipped] = []
    for line, row in enumerate(reader, start=2):
        where = f"{name}, line {line}"
        if None in row or any(value is None for value in row.values()):
            raise PlaceFigureError(f"{where}: wrong number of fields")
        reason = READINGS.get((row["fips"], row["metric"], row["value"])) or UNMODELLED.get(row["metric"])
        if reason is None and row["metric"] not in FIGURE_METRICS:
            reason = f"no model count: metric {row['metric']!r} is not read by the importer"
        if reason is not None:
            skipped.append(Skipped(line, row["place_name"], row["metric"], row["value"], reason))
            continue
        codes = _codes(row["fips"], where)
        metric = FIGURE_METRICS[row["metric"]]
        published = _value(row["value"], row["unit"], where)
        if (row["unit"] == "share") != (metric in SHARES):
            raise PlaceFigureError(f"{where}: unit {row['unit']!r} does not fit metric {row['metric']!r}")
        first = _when(row["start"], end=False, activation=lambda codes=codes: first_activation(codes), where=where)
        last = _when(row["end"], end=True, activation=lambda codes=codes: first_activation(codes), where=where)
        if last < first:
            raise PlaceFigureError(f"{where}: the end {last} is before the start {first}")
        limit, unit = tolerance(metric, published)
        url = _URL.search(row["source"])
        used.append(
            (
                line,
                {
                    "id": f"line{line:03d}_{row['metric']}",
                    "use": "holdout" if codes == [NATION] else "fit",
                    "metric": metric,
                    "channel": "secure_communities",
                    "place": ",".join(codes),
                    "place_name": row["place_name"],
                    "start": first.isoformat(),
                    "end": last.isoformat(),
                    "published": f"{published:g}",
                    "comparison": "at_least" if "lower bound" in row["quote"] else "approx",
                    "tolerance": f"{limit:g}",
                    "tolerance_unit": unit,
                    "series": "",
                    "source": _URL.sub("", row["source"]).strip(),
                    "url": url.group(0) if url else "",
                    "note": f"place_figures line {line}: start {row['start']!r}, end {row['end']!r}. {row['quote']}",
                },
            )
        )
    conflicts: dict[int, int] = {}
    for index, (line, row) in enumerate(used):
        for other_line, other in used[index + 1 :]:
            if _conflicting(row, other):
                conflicts.setdefault(line, other_line)
                conflicts.setdefault(other_line, line)
    for line, row in used:
        if line in conflicts:
            skipped.append(
                Skipped(
                    line,
                    row["place_name"],
                    row["id"].split("_", 1)[1],
                    row["published"],
                    f"overlapping conflict with line {conflicts[line]} (same place and metric, values beyond tolerance)",
                )
            )
    rows = [row for line, row in used if line not in conflicts]
    missing = [row for row in rows if not row["url"]]
    if missing:
        raise PlaceFigureError(f"{name}: {missing[0]['id']} has no URL in its source")
    return rows, sorted(skipped, key=lambda s: s.line)
