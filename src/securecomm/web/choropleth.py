"""A county choropleth of a comparison: one metric under one policy, per 100,000 residents.

The counties of the states the place lies in are drawn (from `geo`); those the run covered are
shaded by the policy's median over replications divided by the county's population in the first
year of the period, the others left grey. Five equal classes from zero to the highest value.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from securecomm.core.places import counties as county_table
from securecomm.core.places import population
from securecomm.model.metrics import METRICS, REPORTED
from securecomm.web.geo import county_shapes, view_box

DEFAULT_METRIC = "removals_no_record_or_first_offense"
# ColorBrewer's 5-class Blues, light to dark (colour-blind safe, prints in grey).
PALETTE = ("#eff3ff", "#bdd7e7", "#6baed6", "#3182bd", "#08519c")
NOT_IN_RUN = "#d9d9d9"
PER = 100_000


@dataclass(frozen=True)
class CountyCell:
    fips: str
    label: str
    path: str
    fill: str
    value: float | None  # per 100,000 residents; None: not in the run
    count: float | None  # the median count


@dataclass(frozen=True)
class Choropleth:
    metric: str
    metric_label: str
    policy: str
    view_box: str
    cells: list[CountyCell]
    legend: list[tuple[str, str]]  # (fill, range in words)
    year: int

    def table(self) -> pl.DataFrame:
        """The values drawn, one row per county of the run: the map's CSV."""
        return pl.DataFrame(
            [
                {
                    "fips": cell.fips,
                    "county": cell.label,
                    "policy": self.policy,
                    "metric": self.metric,
                    "median": cell.count,
                    "per_100k_residents": cell.value,
                    "population_year": self.year,
                }
                for cell in self.cells
                if cell.value is not None
            ]
        )


def metric_choices() -> list[tuple[str, str]]:
    """(name, label) of the metrics a map can show."""
    return [(name, METRICS[name].label) for name in REPORTED]


def build(counties: pl.DataFrame, policy: str, metric: str, year: int) -> Choropleth:
    """The map of `metric` under `policy` from the per-(policy, county) medians of a comparison."""
    if metric not in REPORTED:
        raise ValueError(f"unknown metric {metric!r}")
    run = counties.filter(pl.col("policy") == policy).select("fips", metric)
    if run.is_empty():
        raise ValueError(f"no policy {policy!r} in this comparison")
    fips = run.get_column("fips").to_list()
    people = population(fips, year, clamp_year=True).select("fips", "population")
    values = run.join(people, on="fips").with_columns((pl.col(metric) / pl.col("population") * PER).alias("rate"))
    by_fips = {row["fips"]: row for row in values.to_dicts()}
    table = county_table()
    labels = dict(table.select("fips", pl.concat_str("name", pl.lit(", "), "state")).iter_rows())
    states = set(table.filter(pl.col("fips").is_in(fips)).get_column("state_fips").to_list())
    shapes = county_shapes()
    drawn = [shape for code, shape in shapes.items() if code[:2] in states]
    highest = max((row["rate"] for row in by_fips.values()), default=0.0) or 1.0
    step = highest / len(PALETTE)
    cells = []
    for shape in sorted(drawn, key=lambda shape: shape.id):
        row = by_fips.get(shape.id)
        if row is None:
            cells.append(CountyCell(shape.id, labels.get(shape.id, shape.name), shape.path, NOT_IN_RUN, None, None))
            continue
        klass = min(int(row["rate"] / step), len(PALETTE) - 1)
        cells.append(CountyCell(shape.id, labels[shape.id], shape.path, PALETTE[klass], row["rate"], row[metric]))
    legend = [(fill, f"{index * step:,.1f} to {(index + 1) * step:,.1f}") for index, fill in enumerate(PALETTE)]
    if any(cell.value is None for cell in cells):
        legend.append((NOT_IN_RUN, "not in this run"))
    return Choropleth(metric, METRICS[metric].label, policy, view_box(drawn), cells, legend, year)
