"""Imported cases: the engine's tables plus, for every case, where it came from and what happened.

Every importer returns an `ImportedCases`: the case tables the rules engine decides, a
provenance table (one row per case: source file and rows, actual outcome, duplicate flag,
completeness), a table accounting for every source row (its role in a case, or why it
could not be mapped), the quality report, and the source's limitations in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from securecomm.core import schema
from securecomm.core.cases import CASE_SCHEMA, CHARGE_SCHEMA, CONVICTION_SCHEMA, CaseTables
from securecomm.replay.qa import QaReport

PROVENANCE_SCHEMA: Final[dict[str, pl.DataType]] = {
    "case_id": pl.String(),
    "source_file": pl.String(),
    "source_rows": pl.List(pl.UInt32()),
    "booked_at": pl.Datetime("us"),
    "released_at": pl.Datetime("us"),
    "release_eligible_at": pl.Datetime("us"),
    "actual_outcome": pl.String(),
    "actual_detail": pl.String(),
    "actual_released_at": pl.Datetime("us"),
    "likely_duplicate": pl.Boolean(),
    "duplicate_of": pl.String(),
    "complete": pl.Boolean(),
}
ROWS_SCHEMA: Final[dict[str, pl.DataType]] = {
    "row": pl.UInt32(),
    "case_id": pl.String(),
    "role": pl.String(),  # what the source row became: charge, detainer, hold or not_mapped
    "detail": pl.String(),
}


@dataclass(frozen=True)
class ImportedCases:
    source: Path
    format: str
    title: str
    tables: CaseTables
    provenance: pl.DataFrame
    rows: pl.DataFrame
    qa: QaReport
    limitations: tuple[str, ...]
    records_outcome: bool
    place: str | None = None  # the county or state the records come from, when the source says so

    @property
    def case_count(self) -> int:
        return self.tables.height


def build_tables(records: pl.DataFrame, charges: pl.DataFrame, convictions: pl.DataFrame) -> CaseTables:
    """Engine tables from case-level and long frames keyed by `case_id` (vectorised).

    `records` holds case_id and any case fields it knows; absent flags are false and
    public_safety_risk is null (docs/design.md §2). Casting to the schema's Enums rejects any value
    outside the vocabularies, so a mapping can never smuggle in an unknown category.
    """
    if records.get_column("case_id").is_duplicated().any():
        duplicated = records.filter(pl.col("case_id").is_duplicated()).get_column("case_id").unique().to_list()
        raise ValueError(f"case_id used by more than one case: {duplicated[:5]}")
    defaults: list[pl.Expr] = []
    for name, dtype in CASE_SCHEMA.items():
        if name == "row" or name in records.columns:
            continue
        fill = False if name in schema.CASE_FLAGS else None
        defaults.append(pl.lit(fill, dtype=dtype).alias(name))
    frame = (
        records.with_row_index("row")
        .with_columns(defaults)
        .with_columns([pl.col(name).fill_null(False) for name in schema.CASE_FLAGS])
        .select([pl.col(name).cast(dtype, strict=True) for name, dtype in CASE_SCHEMA.items()])
    )
    keys = frame.select("case_id", "row")

    def long(table: pl.DataFrame, table_schema: dict[str, pl.DataType]) -> pl.DataFrame:
        if table.is_empty():
            return pl.DataFrame(schema=table_schema)
        joined = table.join(keys, on="case_id", how="inner", maintain_order="left")
        missing = [name for name in table_schema if name not in joined.columns]
        joined = joined.with_columns(pl.lit(None).alias(name) for name in missing)
        return joined.select([pl.col(name).cast(dtype, strict=True) for name, dtype in table_schema.items()])

    return CaseTables(frame, long(charges, CHARGE_SCHEMA), long(convictions, CONVICTION_SCHEMA))


def provenance_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Provenance columns in their standard order and types (missing ones null)."""
    missing = [
        pl.lit(None, dtype=dtype).alias(name) for name, dtype in PROVENANCE_SCHEMA.items() if name not in frame.columns
    ]
    return frame.with_columns(missing).select([pl.col(name).cast(dtype) for name, dtype in PROVENANCE_SCHEMA.items()])
