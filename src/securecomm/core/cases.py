"""Reading detainer cases and field records: strict validation, then columnar tables.

Input arrives as JSON Lines, Parquet, CSV (list fields as JSON text) or Python records.
Every record is checked against the case schema (docs/design.md §2) before anything is decided;
the first problem stops the run with a message naming the record and the field.
The engine then works on three tables: one row per case, and long tables of current
charges and prior convictions keyed by the case's row number.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from securecomm.core import schema

RecordKind = Literal["case", "field"]


class InputError(ValueError):
    """A record does not fit the schema; the message names the record and the field.

    `field` is the field's path within the record (`convictions[0].category`), when one is at fault.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class CaseTables:
    """Cases as columns: `records` (one row per case, column `row` = 0..n-1) and, for
    detainer cases, the long tables `current_charges` and `convictions` keyed by `row`."""

    records: pl.DataFrame
    current_charges: pl.DataFrame
    convictions: pl.DataFrame

    @property
    def height(self) -> int:
        return self.records.height

    def subset(self, mask: np.ndarray) -> CaseTables:
        """The cases where `mask` is true, renumbered 0..k-1, with their charges and convictions."""
        new_row = (np.cumsum(mask, dtype=np.int64) - 1).astype(np.uint32)  # wraps where not kept: filtered out

        def keep(table: pl.DataFrame) -> pl.DataFrame:
            # Renumber every row, then filter once: one look-up per row rather than two.
            rows = table.get_column("row").to_numpy()
            return table.with_columns(row=pl.Series(new_row[rows])).filter(pl.Series(mask[rows]))

        records = self.records.filter(pl.Series(mask)).with_columns(
            row=pl.int_range(0, int(mask.sum()), dtype=pl.UInt32)
        )
        return CaseTables(records, keep(self.current_charges), keep(self.convictions))


OFFENSE_SCHEMA = {
    "row": pl.UInt32,
    "category": pl.Enum(schema.CATEGORIES),
    "level": pl.Enum(schema.LEVELS),
    "felony_class": pl.Enum(schema.FELONY_CLASSES),
}
CHARGE_SCHEMA = OFFENSE_SCHEMA
CONVICTION_SCHEMA = {
    **OFFENSE_SCHEMA,
    "years_ago": pl.Float64,
    "years_since_release": pl.Float64,
    "currently_in_custody": pl.Boolean,
}
CASE_SCHEMA: dict[str, pl.DataType] = {
    "row": pl.UInt32(),
    "case_id": pl.String(),
    "release_eligible_at": pl.Datetime("us"),
    "age": pl.Int16(),
    "detainer_form": pl.Enum(schema.DETAINER_FORMS),
    schema.THREE_VALUED_FLAG: pl.Boolean(),
    **{flag: pl.Boolean() for flag in schema.CASE_FLAGS},
}
# The clock of a case, beside CASE_SCHEMA (which simulations build on): the zone the record names and
# the UTC offset its release time carried, in minutes (null: a wall-clock time with no offset).
# Tables without these columns read as all null: times in the jurisdiction's zone.
CLOCK_SCHEMA: dict[str, pl.DataType] = {
    "time_zone": pl.Enum(schema.TIME_ZONES),
    "release_eligible_offset": pl.Int32(),
}
FIELD_SCHEMA: dict[str, pl.DataType] = {
    "row": pl.UInt32(),
    "case_id": pl.String(),
    **{flag: pl.Boolean() for flag in schema.FIELD_FLAGS},
    "ncic_hit": pl.Enum(schema.NCIC_HITS),
}


# --- one record --------------------------------------------------------------------------


class _FieldProblem(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _boolean(value: Any, field: str, *, nullable: bool = False) -> bool | None:
    if value is None:
        return None if nullable else False
    if isinstance(value, bool):
        return value
    raise _FieldProblem(field, f"must be true or false{' or null' if nullable else ''}, not {value!r}")


def _choice(value: Any, field: str, allowed: tuple[str, ...], what: str, *, nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    if value not in allowed:
        raise _FieldProblem(field, f"unknown {what} {value!r}; expected one of: {', '.join(allowed)}")
    return value


def _years(value: Any, field: str, *, nullable: bool) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise _FieldProblem(field, f"must be a number of years ≥ 0, not {value!r}")
    return float(value)


def _datetime(value: Any, field: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _FieldProblem(field, f"must be an ISO date-time like 2014-03-06T17:00:00, not {value!r}") from None
    else:
        raise _FieldProblem(field, f"must be an ISO date-time like 2014-03-06T17:00:00, not {value!r}")
    if parsed.tzinfo is not None and parsed.utcoffset() is None:
        raise _FieldProblem(field, "must carry a fixed UTC offset (2013-11-02T12:00:00-07:00) or none")
    return parsed


def _offenses(value: Any, field: str, *, convictions: bool) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _FieldProblem(field, "must be a list")
    allowed_keys = schema.CONVICTION_FIELDS if convictions else schema.CHARGE_FIELDS
    offenses = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(item, Mapping):
            raise _FieldProblem(where, "must be an object")
        for key in item:
            if key not in allowed_keys:
                raise _FieldProblem(f"{where}.{key}", f"unknown field; expected one of: {', '.join(allowed_keys)}")
        for key in ("category", "level", *(("years_ago",) if convictions else ())):
            if item.get(key) is None:
                raise _FieldProblem(f"{where}.{key}", "is required")
        level = _choice(item["level"], f"{where}.level", schema.LEVELS, "level", nullable=False)
        felony_class = _choice(
            item.get("felony_class"), f"{where}.felony_class", schema.FELONY_CLASSES, "felony class", nullable=True
        )
        if felony_class is not None and level != "felony":
            raise _FieldProblem(f"{where}.felony_class", f"only a felony has a felony class (level is {level!r})")
        offense: dict[str, Any] = {
            "category": _choice(item["category"], f"{where}.category", schema.CATEGORIES, "category", nullable=False),
            "level": level,
            "felony_class": felony_class,
        }
        if convictions:
            years_ago = _years(item["years_ago"], f"{where}.years_ago", nullable=False)
            since_release = _years(item.get("years_since_release"), f"{where}.years_since_release", nullable=True)
            if since_release is not None and years_ago is not None and since_release > years_ago:
                raise _FieldProblem(
                    f"{where}.years_since_release", "cannot be more than years_ago (release follows conviction)"
                )
            offense["years_ago"] = years_ago
            offense["years_since_release"] = since_release
            offense["currently_in_custody"] = _boolean(
                item.get("currently_in_custody"), f"{where}.currently_in_custody"
            )
        offenses.append(offense)
    return offenses


def _case_id(record: Mapping[str, Any]) -> str:
    case_id = record.get("case_id")
    if not isinstance(case_id, str) or not case_id.strip():
        raise _FieldProblem("case_id", "is required and must be non-empty text")
    return case_id


def normalize_case(record: Mapping[str, Any]) -> dict[str, Any]:
    """Check one detainer case and fill the defaults (missing booleans false, lists empty)."""
    for key in record:
        if key not in schema.CASE_FIELDS:
            raise _FieldProblem(key, "unknown field")
    age = record.get("age")
    if age is not None and (isinstance(age, bool) or not isinstance(age, int) or not 0 <= age <= 130):
        raise _FieldProblem("age", f"must be a whole number of years (0–130) or null, not {age!r}")
    case = {
        "case_id": _case_id(record),
        "release_eligible_at": _datetime(record.get("release_eligible_at"), "release_eligible_at"),
        "age": age,
        "detainer_form": _choice(
            record.get("detainer_form"), "detainer_form", schema.DETAINER_FORMS, "detainer form", nullable=True
        ),
        "time_zone": _choice(record.get("time_zone"), "time_zone", schema.TIME_ZONES, "time zone", nullable=True),
        schema.THREE_VALUED_FLAG: _boolean(
            record.get(schema.THREE_VALUED_FLAG), schema.THREE_VALUED_FLAG, nullable=True
        ),
        "current_charges": _offenses(record.get("current_charges"), "current_charges", convictions=False),
        "convictions": _offenses(record.get("convictions"), "convictions", convictions=True),
    }
    for flag in schema.CASE_FLAGS:
        case[flag] = _boolean(record.get(flag), flag)
    return case


def normalize_field_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Check one field-encounter record (New Haven General Order 06-2)."""
    for key in record:
        if key not in schema.FIELD_RECORD_FIELDS:
            raise _FieldProblem(key, "unknown field")
    normalized = {
        "case_id": _case_id(record),
        "ncic_hit": _choice(record.get("ncic_hit", "none"), "ncic_hit", schema.NCIC_HITS, "NCIC hit", nullable=False),
    }
    for flag in schema.FIELD_FLAGS:
        normalized[flag] = _boolean(record.get(flag), flag)
    return normalized


# --- many records ------------------------------------------------------------------------


def normalize_records(
    records: Iterable[tuple[str, Mapping[str, Any]]], kind: RecordKind = "case"
) -> list[dict[str, Any]]:
    """Check every (location, record) pair; raise InputError at the first problem."""
    normalize = normalize_case if kind == "case" else normalize_field_record
    normalized = []
    first_seen: dict[str, str] = {}
    for where, record in records:
        if not isinstance(record, Mapping):
            raise InputError(f"{where}: a record must be a JSON object")
        try:
            normalized.append(normalize(record))
        except _FieldProblem as problem:
            case_id = record.get("case_id")
            named = f" (case_id {case_id!r})" if isinstance(case_id, str) and problem.field != "case_id" else ""
            raise InputError(f"{where}{named}: field '{problem.field}': {problem.message}", problem.field) from None
        case_id = normalized[-1]["case_id"]
        if case_id in first_seen:
            raise InputError(
                f"{where}: field 'case_id': {case_id!r} was already used at {first_seen[case_id]}", "case_id"
            )
        first_seen[case_id] = where
    return normalized


def tables_from_records(records: list[dict[str, Any]], kind: RecordKind = "case") -> CaseTables:
    """Columnar tables from normalized records."""
    if kind == "field":
        columns = {name: [record[name] for record in records] for name in FIELD_SCHEMA if name != "row"}
        frame = pl.DataFrame({"row": range(len(records)), **columns}, schema=FIELD_SCHEMA)
        return CaseTables(frame, pl.DataFrame(schema=CHARGE_SCHEMA), pl.DataFrame(schema=CONVICTION_SCHEMA))
    columns = {name: [record[name] for record in records] for name in CASE_SCHEMA if name != "row"}
    starts = columns["release_eligible_at"]
    columns["release_eligible_at"] = [None if start is None else start.replace(tzinfo=None) for start in starts]
    columns["time_zone"] = [record["time_zone"] for record in records]
    columns["release_eligible_offset"] = [_offset_minutes(start) for start in starts]
    frame = pl.DataFrame({"row": range(len(records)), **columns}, schema={**CASE_SCHEMA, **CLOCK_SCHEMA})

    def long(field: str, table_schema: dict[str, Any]) -> pl.DataFrame:
        rows = [{"row": row, **offense} for row, record in enumerate(records) for offense in record[field]]
        return pl.DataFrame(rows, schema=table_schema) if rows else pl.DataFrame(schema=table_schema)

    return CaseTables(frame, long("current_charges", CHARGE_SCHEMA), long("convictions", CONVICTION_SCHEMA))


def _offset_minutes(moment: dt.datetime | None) -> int | None:
    if moment is None or moment.tzinfo is None:
        return None
    offset = moment.utcoffset()
    assert offset is not None  # checked by _datetime
    return int(offset.total_seconds() // 60)


def _jsonl_records(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield f"{path.name} line {number}", json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"{path.name} line {number}: not valid JSON ({error.msg})") from None


_CSV_BOOLEANS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def _csv_value(field: str, text: str, where: str) -> Any:
    if text == "":
        return None
    if field in ("current_charges", "convictions"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise InputError(f"{where}: field '{field}': must be a JSON list") from None
    if field in (*schema.CASE_FLAGS, schema.THREE_VALUED_FLAG, *schema.FIELD_FLAGS):
        if text.lower() not in _CSV_BOOLEANS:
            raise InputError(f"{where}: field '{field}': must be true or false, not {text!r}")
        return _CSV_BOOLEANS[text.lower()]
    if field == "age":
        try:
            return int(text)
        except ValueError:
            raise InputError(f"{where}: field 'age': must be a whole number, not {text!r}") from None
    return text


def _csv_records(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for number, row in enumerate(reader, start=2):
            where = f"{path.name} line {number}"
            yield where, {field: _csv_value(field, text or "", where) for field, text in row.items()}


def _parquet_records(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        frame = pl.read_parquet(path)
    except Exception as error:  # polars raises several types for unreadable files
        raise InputError(f"{path.name}: not a readable Parquet file ({error})") from None
    for number, record in enumerate(frame.iter_rows(named=True), start=1):
        yield f"{path.name} row {number}", record


def read_records(path: Path, kind: RecordKind = "case") -> list[dict[str, Any]]:
    """Read and check a file of cases: .jsonl/.ndjson, .parquet or .csv."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    readers = {".jsonl": _jsonl_records, ".ndjson": _jsonl_records, ".parquet": _parquet_records, ".csv": _csv_records}
    if suffix not in readers:
        raise InputError(f"{path.name}: unknown file type {suffix!r}; use .jsonl, .parquet or .csv")
    return normalize_records(readers[suffix](path), kind)


def to_tables(cases: Any, kind: RecordKind = "case") -> CaseTables:
    """Accept a path, a Polars DataFrame, CaseTables or a list of dicts."""
    if isinstance(cases, CaseTables):
        return cases
    if isinstance(cases, str | Path):
        return tables_from_records(read_records(Path(cases), kind), kind)
    if isinstance(cases, pl.DataFrame):
        rows = ((f"row {number}", record) for number, record in enumerate(cases.iter_rows(named=True), start=1))
        return tables_from_records(normalize_records(rows, kind), kind)
    if isinstance(cases, Mapping):
        cases = [cases]
    rows = ((f"record {number}", record) for number, record in enumerate(cases, start=1))
    return tables_from_records(normalize_records(rows, kind), kind)
