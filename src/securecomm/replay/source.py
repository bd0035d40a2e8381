"""Reading a source table strictly: every cell as text, every problem named by file, row and column.

Rows are numbered as a spreadsheet numbers them: in a CSV the header is row 1 and the first
record row 2 (the same as the line number when no quoted field spans lines); in a Parquet
file the first record is row 1. Every importer keeps these numbers on the cases it makes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from securecomm.core.units import DAYS_PER_YEAR

ROW = "__row"


class SourceError(ValueError):
    """A source file cannot be read as described; the message names the file, row and column."""


@dataclass(frozen=True)
class SourceTable:
    """A source file read as text: one String column per column read, plus `__row`.

    `header` holds every column name of the file (lower-cased if asked), read or not, so a
    missing column can be reported against what the file really has.
    """

    path: Path
    frame: pl.DataFrame
    first_row: int
    header: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def height(self) -> int:
        return self.frame.height

    def where(self, row: int | None, column: str | None = None) -> str:
        """`file row N, column 'x'` — the place a message points to."""
        place = self.name if row is None else f"{self.name} row {row}"
        return place if column is None else f"{place}, column '{column}'"


def _csv_options(delimiter: str, encoding: str) -> dict[str, object]:
    return {
        "separator": delimiter,
        "encoding": "utf8" if encoding.lower().replace("-", "") == "utf8" else encoding,
        "infer_schema": False,
    }


def read_header(path: Path, *, delimiter: str = ",", encoding: str = "utf-8") -> list[str]:
    """The column names of a CSV or Parquet file, as written."""
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return list(pl.read_parquet_schema(path))
        if suffix in (".csv", ".txt", ".tsv"):
            return pl.read_csv(path, n_rows=0, raise_if_empty=False, **_csv_options(delimiter, encoding)).columns
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as error:
        raise SourceError(f"{path.name}: cannot be read as {suffix.lstrip('.')} ({error})") from None
    raise SourceError(f"{path.name}: unknown file type {suffix!r}; use .csv or .parquet")


def read_source(
    path: Path,
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    null_values: Sequence[str] = ("",),
    lowercase_columns: bool = False,
    columns: Iterable[str] | None = None,
) -> SourceTable:
    """Read a CSV or Parquet file with every column as text (nothing is guessed from the values).

    `columns` (names as the table will call them) limits the reading to those the caller uses;
    the ones the file lacks are simply not read, and `require_columns` reports them.
    """
    written = read_header(path, delimiter=delimiter, encoding=encoding)
    names = [column.lower() for column in written] if lowercase_columns else list(written)
    if len(set(names)) != len(names):
        raise SourceError(f"{path.name}: two columns have the same name (letter case aside)")
    if ROW in names:
        raise SourceError(f"{path.name}: a column may not be called {ROW!r}")
    wanted = None if columns is None else set(columns)
    chosen = [original for original, name in zip(written, names, strict=True) if wanted is None or name in wanted]
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pl.read_parquet(path, columns=chosen).with_columns(pl.all().cast(pl.String))
            first_row = 1
        else:
            frame = pl.read_csv(
                path,
                columns=chosen,
                null_values=[value for value in null_values if value != ""] or None,
                empty_string_is_null="" in null_values,
                raise_if_empty=False,
                **_csv_options(delimiter, encoding),
            )
            first_row = 2
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as error:
        raise SourceError(f"{path.name}: cannot be read as {suffix.lstrip('.')} ({error})") from None
    if lowercase_columns:
        frame = frame.rename({column: column.lower() for column in frame.columns})
    frame = frame.with_row_index(ROW, offset=first_row).with_columns(pl.col(ROW).cast(pl.UInt32))
    return SourceTable(path, frame, first_row, tuple(names))


def require_columns(table: SourceTable, columns: Iterable[str], what: str = "") -> None:
    """Stop at the first column the description needs that the file does not have."""
    present = set(table.header)
    for column in columns:
        if column not in present:
            found = ", ".join(sorted(present)) or "none"
            for_what = f" (needed for {what})" if what else ""
            header = f"{table.name} row 1 (the header)" if table.first_row == 2 else table.name
            raise SourceError(f"{header}: missing column '{column}'{for_what}; the file has: {found}")


def _first_failure(table: SourceTable, column: str, parsed: pl.Series) -> tuple[int, str] | None:
    failed = table.frame.select(ROW, column).filter(pl.col(column).is_not_null() & parsed.is_null())
    if failed.is_empty():
        return None
    row, value = failed.row(0)
    return row, value


def parse_datetime(table: SourceTable, column: str, fmt: str) -> pl.Series:
    """A column of local date-times; a value that does not fit `fmt` is an error."""
    parsed = table.frame.get_column(column).str.strip_chars().str.strptime(pl.Datetime("us"), fmt, strict=False)
    failure = _first_failure(table, column, parsed)
    if failure is not None:
        row, value = failure
        raise SourceError(f"{table.where(row, column)}: cannot read {value!r} as a date-time in the format {fmt!r}")
    return parsed


def parse_date(table: SourceTable, column: str, fmt: str) -> pl.Series:
    """A column of dates; a value that does not fit `fmt` is an error."""
    parsed = table.frame.get_column(column).str.strip_chars().str.strptime(pl.Date, fmt, strict=False)
    failure = _first_failure(table, column, parsed)
    if failure is not None:
        row, value = failure
        raise SourceError(f"{table.where(row, column)}: cannot read {value!r} as a date in the format {fmt!r}")
    return parsed


_INTEGER = re.compile(r"^[+-]?\d+(\.0+)?$")


def parse_integer(table: SourceTable, column: str) -> pl.Series:
    """A column of whole numbers (R and Excel write 74 as "74" or "74.0")."""
    text = table.frame.get_column(column).str.strip_chars()
    well_formed = text.str.contains(_INTEGER.pattern)
    bad = table.frame.select(ROW, column).filter(text.is_not_null() & ~well_formed)
    if not bad.is_empty():
        row, value = bad.row(0)
        raise SourceError(f"{table.where(row, column)}: cannot read {value!r} as a whole number")
    return text.str.replace(r"\.0+$", "").cast(pl.Int64)


def parse_number(table: SourceTable, column: str) -> pl.Series:
    """A column of numbers (decimals allowed)."""
    parsed = table.frame.get_column(column).str.strip_chars().cast(pl.Float64, strict=False)
    failure = _first_failure(table, column, parsed)
    if failure is not None:
        row, value = failure
        raise SourceError(f"{table.where(row, column)}: cannot read {value!r} as a number")
    return parsed


def parse_boolean(
    table: SourceTable, column: str, true_values: Sequence[str], false_values: Sequence[str]
) -> pl.Series:
    """A yes/no column: each value must be one of the listed spellings (compared case-insensitively)."""
    text = table.frame.get_column(column).str.strip_chars().str.to_lowercase()
    truthy = [value.lower() for value in true_values]
    falsy = [value.lower() for value in false_values]
    bad = table.frame.select(ROW, column).filter(text.is_not_null() & ~text.is_in(truthy + falsy))
    if not bad.is_empty():
        row, value = bad.row(0)
        allowed = ", ".join(repr(value) for value in [*true_values, *false_values])
        raise SourceError(f"{table.where(row, column)}: {value!r} is not a yes/no value ({allowed})")
    return pl.when(text.is_in(truthy)).then(True).when(text.is_in(falsy)).then(False).otherwise(None).alias(column)


def redactions(table: SourceTable, columns: Sequence[str], pattern: str) -> pl.DataFrame:
    """Cells holding a redaction code (e.g. FOIA "(b)(6)"): one row per cell (`__row`, column, value)."""
    found = [
        table.frame.select(pl.col(ROW), pl.lit(column).alias("column"), pl.col(column).alias("value")).filter(
            pl.col("value").str.contains(pattern)
        )
        for column in columns
    ]
    schema = {ROW: pl.UInt32, "column": pl.String, "value": pl.String}
    return pl.concat(found) if found else pl.DataFrame(schema=schema)


def blank_redactions(table: SourceTable, columns: Sequence[str], pattern: str) -> SourceTable:
    """The same table with every redaction code turned into no value (null)."""
    frame = table.frame.with_columns(
        pl.when(pl.col(column).str.contains(pattern)).then(None).otherwise(pl.col(column)).alias(column)
        for column in columns
    )
    return SourceTable(table.path, frame, table.first_row, table.header)


def text(template: str, *values: pl.Expr) -> pl.Expr:
    """`template` with each "{}" replaced by a value, as one text column.

    Used instead of `pl.format`, which in Polars 2.1 panics on some filtered text columns
    ("assertion failed: i < self.len()"); concat_str does the same job safely.
    """
    pieces = template.split("{}")
    if len(pieces) != len(values) + 1:
        raise ValueError(f"template {template!r} has {len(pieces) - 1} slots for {len(values)} values")
    parts: list[pl.Expr] = []
    for piece, value in zip(pieces, [*values, None], strict=True):
        if piece:
            parts.append(pl.lit(piece))
        if value is not None:
            parts.append(value.cast(pl.String))
    return pl.concat_str(parts)


def years_between(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    """Elapsed years between two dates (365.25-day years), as the case schema's years_ago wants."""
    return (later.cast(pl.Date) - earlier.cast(pl.Date)).dt.total_days() / DAYS_PER_YEAR
