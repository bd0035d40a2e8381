"""The mapping file: how a jail's CSV becomes detainer cases, described as data.

A mapping names the columns it reads and their types, the column that groups rows into
cases, how charge text becomes a category and a level, what each release disposition
means, where release eligibility comes from, and any facts it assumes. It is read
strictly: an unknown or duplicate key, a column used but not declared, an unknown
category, level, fact or disposition meaning is an error naming the file and line.
The format is documented in docs/replay.md; the Pierce County importer is such a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

from securecomm.core import schema
from securecomm.core.places import resolve_place
from securecomm.core.yamlfiles import YMap, YSeq, line_of
from securecomm.replay.actual import CHARGE_OUTCOMES, CUSTODY_VALUES
from securecomm.replay.charges import BUILTIN, ChargeMap, MappingFileError, load_charge_map, load_data_yaml
from securecomm.replay.qa import CHECKS

FORMAT_VERSION: Final = 1
ColumnKind = Literal["text", "integer", "datetime", "date", "boolean"]
TOP_KEYS: Final = {
    "required": ("mapping", "title", "case_id", "columns"),
    "optional": (
        "source",
        "place",
        "notes",
        "limitations",
        "csv",
        "booking",
        "charges",
        "dispositions",
        "release_eligible_at",
        "age",
        "detainer_form",
        "facts",
        "duplicates",
        "qa",
    ),
}
LATEST_RELEASE: Final = "latest_release"


@dataclass(frozen=True)
class ColumnType:
    kind: ColumnKind
    format: str | None = None
    true_values: tuple[str, ...] = ()
    false_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Level:
    level: str
    felony_class: str | None = None


@dataclass(frozen=True)
class LevelSpec:
    """A charge's level: from a column of codes, else from its text; a code mapped to None has no level."""

    column: str | None = None
    values: dict[str, Level | None] = field(default_factory=dict)
    text_rules: tuple[tuple[str, Level], ...] = ()


@dataclass(frozen=True)
class ChargeSpec:
    text_columns: tuple[str, ...]
    categories: ChargeMap
    level: LevelSpec


@dataclass(frozen=True)
class Disposition:
    custody: str
    charge: str
    bond_posted: bool = False
    note: str = ""


@dataclass(frozen=True)
class DispositionSpec:
    column: str
    released_at: str | None
    values: dict[str, Disposition]


@dataclass(frozen=True)
class FormSpec:
    column: str | None
    values: dict[str, str | None]
    constant: str | None = None


@dataclass(frozen=True)
class JailExtractMapping:
    """A jail extract's mapping file, read and checked: how its CSV rows become detainer cases."""

    path: Path
    display_name: str
    title: str
    source: str
    place: str | None  # the county (FIPS) or state the jail serves: replay's default activation date is its
    notes: str
    limitations: tuple[str, ...]
    delimiter: str
    encoding: str
    null_values: tuple[str, ...]
    redaction_pattern: str | None
    columns: dict[str, ColumnType]
    case_id: str
    booked_at: str | None
    released_at: str | None
    charges: ChargeSpec | None
    dispositions: DispositionSpec | None
    release_eligible_at: str | None  # "latest_release", or a datetime column
    age: str | None
    detainer_form: FormSpec | None
    facts: dict[str, bool | str]  # a constant, or a boolean column
    case_duplicate_key: tuple[str, ...]
    row_duplicate_key: tuple[str, ...]
    qa: dict[str, tuple[float | None, float | None]]


def builtin_mapping_path(name: str) -> Path:
    return Path(str(resources.files("securecomm") / "replay" / "mappings" / f"{name}.yaml"))


class _Reader:
    """Checks one mapping file's pieces, raising errors that point at its lines."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, line: int, message: str) -> MappingFileError:
        return MappingFileError(self.file, line, message)

    def mapping(
        self, value: Any, line: int, what: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> YMap:
        if not isinstance(value, YMap):
            raise self.fail(line, f"{what} must be a mapping")
        for key in value:
            if key not in allowed:
                raise self.fail(line_of(value, key), f"unknown key '{key}' in {what}; allowed: {', '.join(allowed)}")
        for key in required:
            if key not in value:
                raise self.fail(value.line, f"{what} needs '{key}'")
        return value

    def text(self, value: Any, line: int, what: str) -> str:
        if isinstance(value, bool):
            raise self.fail(line, f'{what} must be text; quote values such as "yes" that YAML reads as true/false')
        if not isinstance(value, str) or not value.strip():
            raise self.fail(line, f"{what} must be non-empty text")
        return value.strip()

    def texts(self, value: Any, line: int, what: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.fail(line, f"{what} must be a column name or a non-empty list of them")
        return tuple(self.text(item, line, what) for item in value)

    def share(self, value: Any, line: int, what: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise self.fail(line, f"{what} must be a share between 0 and 1 (0.05 = 5%), or null")
        return float(value)


def _column_type(reader: _Reader, name: str, value: Any, line: int) -> ColumnType:
    if value in ("text", "integer"):
        return ColumnType(value)
    if value == "boolean":
        return ColumnType("boolean", true_values=("true", "yes", "y", "1"), false_values=("false", "no", "n", "0"))
    if isinstance(value, YMap) and len(value) == 1:
        ((kind, spec),) = value.items()
        if kind in ("datetime", "date"):
            return ColumnType(kind, format=reader.text(spec, line, f"the {kind} format of column '{name}'"))
        if kind == "boolean":
            keys = ("true_values", "false_values")
            spec = reader.mapping(spec, line, f"column '{name}'", keys, keys)
            return ColumnType(
                "boolean",
                true_values=reader.texts(spec["true_values"], line_of(spec, "true_values"), "true_values"),
                false_values=reader.texts(spec["false_values"], line_of(spec, "false_values"), "false_values"),
            )
    raise reader.fail(
        line,
        f"column '{name}': type must be text, integer, boolean, "
        "{boolean: {true_values: [...], false_values: [...]}}, "
        '{datetime: "%Y-%m-%d %H:%M:%S"} or {date: "%m/%d/%Y"}',
    )


def _level(reader: _Reader, spec: YMap, line: int) -> Level:
    """The `level` and optional `felony_class` keys of an already checked mapping."""
    level = spec["level"]
    if level not in schema.LEVELS:
        raise reader.fail(
            line_of(spec, "level"), f"unknown level {level!r}; expected one of: {', '.join(schema.LEVELS)}"
        )
    felony_class = spec.get("felony_class")
    if felony_class is not None:
        felony_class = str(felony_class)
        if felony_class not in schema.FELONY_CLASSES:
            raise reader.fail(
                line_of(spec, "felony_class"),
                f"unknown felony class {felony_class!r}; expected one of: {', '.join(schema.FELONY_CLASSES)}",
            )
        if level != "felony":
            raise reader.fail(line_of(spec, "felony_class"), "only a felony has a felony class")
    return Level(level, felony_class)


def _table(reader: _Reader, value: Any, line: int, what: str) -> YMap:
    """A mapping whose keys are the source's own codes (any key allowed)."""
    if not isinstance(value, YMap) or not value:
        raise reader.fail(line, f"{what} must map each code to its meaning")
    return value


def _charges(reader: _Reader, value: Any, line: int, base: Path) -> ChargeSpec:
    spec = reader.mapping(value, line, "charges", ("text", "categories", "level"), ("text",))
    categories: list[Path | str] = []
    for entry in reader.texts(spec.get("categories", [BUILTIN]), line_of(spec, "categories"), "categories"):
        if entry == BUILTIN:
            categories.append(BUILTIN)
            continue
        path = (base / entry).resolve()
        if not path.is_file():
            raise reader.fail(line_of(spec, "categories"), f"category file {entry!r} not found (looked for {path})")
        categories.append(path)
    level_spec = LevelSpec()
    if "level" in spec:
        raw = reader.mapping(spec["level"], line_of(spec, "level"), "charges.level", ("column", "values", "text"))
        column = reader.text(raw["column"], line_of(raw, "column"), "level column") if "column" in raw else None
        values: dict[str, Level | None] = {}
        if column is not None:
            if "values" not in raw:
                raise reader.fail(raw.line, "charges.level with a column needs 'values' (code → level)")
            table = _table(reader, raw["values"], line_of(raw, "values"), "charges.level.values")
            for code, item in table.items():
                what = f"level code {code!r}"
                item_spec = (
                    None
                    if item is None
                    else reader.mapping(item, line_of(table, code), what, ("level", "felony_class"), ("level",))
                )
                values[str(code)] = None if item_spec is None else _level(reader, item_spec, line_of(table, code))
        text_rules: list[tuple[str, Level]] = []
        if "text" in raw:
            items = raw["text"]
            if not isinstance(items, YSeq):
                raise reader.fail(line_of(raw, "text"), "charges.level.text must be a list of {match, level}")
            for index, item in enumerate(items):
                item_line = line_of(items, index)
                rule = reader.mapping(
                    item, item_line, "a level rule", ("match", "level", "felony_class"), ("match", "level")
                )
                pattern = reader.text(rule["match"], line_of(rule, "match"), "match")
                _compile(reader, pattern, line_of(rule, "match"))
                text_rules.append((pattern, _level(reader, rule, item_line)))
        if column is None and not text_rules:
            raise reader.fail(raw.line, "charges.level needs a 'column' with 'values', or 'text' rules")
        level_spec = LevelSpec(column, values, tuple(text_rules))
    charge_map = load_charge_map(categories)
    return ChargeSpec(reader.texts(spec["text"], line_of(spec, "text"), "charges.text"), charge_map, level_spec)


def _compile(reader: _Reader, pattern: str, line: int) -> None:
    try:
        re.compile(pattern)
    except re.error as error:
        raise reader.fail(line, f"not a valid regular expression: {error}") from None


def _dispositions(reader: _Reader, value: Any, line: int) -> DispositionSpec:
    spec = reader.mapping(value, line, "dispositions", ("column", "released_at", "values"), ("column", "values"))
    table = _table(reader, spec["values"], line_of(spec, "values"), "dispositions.values")
    values: dict[str, Disposition] = {}
    for raw, meaning in table.items():
        item_line = line_of(table, raw)
        item = reader.mapping(
            meaning,
            item_line,
            f"disposition {raw!r}",
            ("custody", "charge", "bond_posted", "note"),
            ("custody", "charge"),
        )
        if item["custody"] not in CUSTODY_VALUES:
            raise reader.fail(item_line, f"disposition {raw!r}: custody must be one of: {', '.join(CUSTODY_VALUES)}")
        if item["charge"] not in CHARGE_OUTCOMES:
            raise reader.fail(item_line, f"disposition {raw!r}: charge must be one of: {', '.join(CHARGE_OUTCOMES)}")
        bond = item.get("bond_posted", False)
        if not isinstance(bond, bool):
            raise reader.fail(item_line, f"disposition {raw!r}: bond_posted must be true or false")
        values[str(raw)] = Disposition(item["custody"], item["charge"], bond, str(item.get("note", "")))
    released_at = spec.get("released_at")
    return DispositionSpec(
        reader.text(spec["column"], line_of(spec, "column"), "dispositions.column"),
        None if released_at is None else reader.text(released_at, line_of(spec, "released_at"), "released_at"),
        values,
    )


def _detainer_form(reader: _Reader, value: Any, line: int) -> FormSpec:
    if isinstance(value, str):
        if value not in schema.DETAINER_FORMS:
            raise reader.fail(
                line, f"unknown detainer form {value!r}; expected one of: {', '.join(schema.DETAINER_FORMS)}"
            )
        return FormSpec(None, {}, value)
    spec = reader.mapping(value, line, "detainer_form", ("column", "values"), ("column", "values"))
    table = _table(reader, spec["values"], line_of(spec, "values"), "detainer_form.values")
    values = {}
    for raw, form in table.items():
        if form is not None and form not in schema.DETAINER_FORMS:
            raise reader.fail(
                line_of(table, raw),
                f"unknown detainer form {form!r}; expected one of: {', '.join(schema.DETAINER_FORMS)}",
            )
        values[str(raw)] = form
    return FormSpec(reader.text(spec["column"], line_of(spec, "column"), "detainer_form.column"), values)


def _place(reader: _Reader, top: YMap) -> str | None:
    """The mapping's `place`: a county FIPS code or a state, checked against the shipped county table."""
    if "place" not in top:
        return None
    line = line_of(top, "place")
    text = reader.text(top["place"], line, "place")
    try:
        resolve_place(text)
    except ValueError as error:
        raise reader.fail(line, f"place: {error}") from None
    return text.strip().upper()


def load_mapping(path: Path, display_name: str | None = None) -> JailExtractMapping:
    """Read and check a mapping file (see docs/replay.md)."""
    name = display_name or str(path)
    document = load_data_yaml(path, name)
    reader = _Reader(name)
    allowed = TOP_KEYS["required"] + TOP_KEYS["optional"]
    top = reader.mapping(document, 1, "a mapping file", allowed, TOP_KEYS["required"])
    if top["mapping"] != FORMAT_VERSION:
        raise reader.fail(line_of(top, "mapping"), f"'mapping' must be {FORMAT_VERSION} (the format version)")

    raw_columns = top["columns"]
    if not isinstance(raw_columns, YMap) or not raw_columns:
        raise reader.fail(line_of(top, "columns"), "'columns' must map each column read to its type")
    columns = {
        str(col): _column_type(reader, str(col), kind, line_of(raw_columns, col)) for col, kind in raw_columns.items()
    }

    def declared(column: str, line: int, kinds: tuple[ColumnKind, ...], what: str) -> str:
        if column not in columns:
            raise reader.fail(line, f"{what}: column '{column}' is not declared under 'columns'")
        if columns[column].kind not in kinds:
            raise reader.fail(line, f"{what}: column '{column}' must be of type {' or '.join(kinds)}")
        return column

    csv = reader.mapping(
        top.get("csv", YMap()),
        line_of(top, "csv"),
        "csv",
        ("delimiter", "encoding", "null_values", "redaction_pattern"),
    )
    null_values = csv.get("null_values", [""])
    if not isinstance(null_values, list) or not all(isinstance(item, str) for item in null_values):
        raise reader.fail(line_of(csv, "null_values"), "csv.null_values must be a list of texts")
    redaction = csv.get("redaction_pattern")
    if redaction is not None:
        _compile(
            reader,
            reader.text(redaction, line_of(csv, "redaction_pattern"), "redaction_pattern"),
            line_of(csv, "redaction_pattern"),
        )

    case_id = declared(
        reader.text(top["case_id"], line_of(top, "case_id"), "case_id"),
        line_of(top, "case_id"),
        ("text", "integer"),
        "case_id",
    )
    booking = reader.mapping(
        top.get("booking", YMap()), line_of(top, "booking"), "booking", ("booked_at", "released_at")
    )
    times = {
        key: declared(
            reader.text(booking[key], line_of(booking, key), key),
            line_of(booking, key),
            ("datetime",),
            f"booking.{key}",
        )
        for key in booking
    }

    charges = None
    if "charges" in top:
        charges = _charges(reader, top["charges"], line_of(top, "charges"), path.parent)
        for column in charges.text_columns:
            declared(column, line_of(top, "charges"), ("text",), "charges.text")
        if charges.level.column is not None:
            declared(charges.level.column, line_of(top, "charges"), ("text", "integer"), "charges.level")

    dispositions = None
    if "dispositions" in top:
        dispositions = _dispositions(reader, top["dispositions"], line_of(top, "dispositions"))
        declared(dispositions.column, line_of(top, "dispositions"), ("text",), "dispositions.column")
        if dispositions.released_at is not None:
            declared(dispositions.released_at, line_of(top, "dispositions"), ("datetime",), "dispositions.released_at")

    release = top.get("release_eligible_at")
    if release is not None:
        release_line = line_of(top, "release_eligible_at")
        if release == LATEST_RELEASE:
            if dispositions is None or dispositions.released_at is None:
                raise reader.fail(
                    release_line, "release_eligible_at: latest_release needs dispositions with released_at"
                )
        elif isinstance(release, YMap):
            spec = reader.mapping(release, release_line, "release_eligible_at", ("column",), ("column",))
            release = declared(
                reader.text(spec["column"], release_line, "column"), release_line, ("datetime",), "release_eligible_at"
            )
        else:
            raise reader.fail(release_line, "release_eligible_at must be latest_release or {column: NAME}")

    age = top.get("age")
    if age is not None:
        age = declared(reader.text(age, line_of(top, "age"), "age"), line_of(top, "age"), ("integer",), "age")

    form = None
    if "detainer_form" in top:
        form = _detainer_form(reader, top["detainer_form"], line_of(top, "detainer_form"))
        if form.column is not None:
            declared(form.column, line_of(top, "detainer_form"), ("text",), "detainer_form")

    facts: dict[str, bool | str] = {}
    raw_facts = reader.mapping(
        top.get("facts", YMap()), line_of(top, "facts"), "facts", (*schema.CASE_FLAGS, schema.THREE_VALUED_FLAG)
    )
    for fact, value in raw_facts.items():
        fact_line = line_of(raw_facts, fact)
        if isinstance(value, bool):
            facts[fact] = value
        elif isinstance(value, YMap):
            spec = reader.mapping(value, fact_line, f"fact '{fact}'", ("column",), ("column",))
            facts[fact] = declared(
                reader.text(spec["column"], fact_line, "column"), fact_line, ("boolean",), f"fact '{fact}'"
            )
        else:
            raise reader.fail(fact_line, f"fact '{fact}' must be true, false or {{column: NAME}}")

    duplicates = reader.mapping(
        top.get("duplicates", YMap()), line_of(top, "duplicates"), "duplicates", ("case", "row")
    )
    keys = {}
    for key in ("case", "row"):
        keys[key] = ()
        if key in duplicates:
            keys[key] = reader.texts(duplicates[key], line_of(duplicates, key), f"duplicates.{key}")
            for column in keys[key]:
                declared(
                    column,
                    line_of(duplicates, key),
                    ("text", "integer", "datetime", "date", "boolean"),
                    f"duplicates.{key}",
                )

    qa: dict[str, tuple[float | None, float | None]] = {}
    raw_qa = reader.mapping(top.get("qa", YMap()), line_of(top, "qa"), "qa", tuple(CHECKS))
    for check, value in raw_qa.items():
        spec = reader.mapping(value, line_of(raw_qa, check), f"qa.{check}", ("warn", "stop"))
        qa[check] = (
            reader.share(spec.get("warn"), line_of(spec, "warn"), f"qa.{check}.warn"),
            reader.share(spec.get("stop"), line_of(spec, "stop"), f"qa.{check}.stop"),
        )

    limitations = top.get("limitations", [])
    if not isinstance(limitations, list) or not all(isinstance(item, str) for item in limitations):
        raise reader.fail(line_of(top, "limitations"), "'limitations' must be a list of sentences")

    return JailExtractMapping(
        path=path,
        display_name=name,
        title=reader.text(top["title"], line_of(top, "title"), "title"),
        source=str(top.get("source", "")).strip(),
        place=_place(reader, top),
        notes=str(top.get("notes", "")).strip(),
        limitations=tuple(" ".join(item.split()) for item in limitations),
        delimiter=str(csv.get("delimiter", ",")),
        encoding=str(csv.get("encoding", "utf-8")),
        null_values=tuple(null_values),
        redaction_pattern=redaction,
        columns=columns,
        case_id=case_id,
        booked_at=times.get("booked_at"),
        released_at=times.get("released_at"),
        charges=charges,
        dispositions=dispositions,
        release_eligible_at=release,
        age=age,
        detainer_form=form,
        facts=facts,
        case_duplicate_key=keys["case"],
        row_duplicate_key=keys["row"],
        qa=qa,
    )
