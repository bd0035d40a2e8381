"""Charge text → case-schema category: an ordered table of rules kept as data.

The table (`charge_categories.yaml`, or a user's own file placed before it) is a list of
rules tried in order; the first whose regular expression is found in the text decides.
A rule says what a row is: a criminal charge of a category, the immigration detainer
itself, or another agency's hold (not a charge). Text is compared in upper case with
runs of spaces collapsed, so "Sex  Assault" and "SEX ASSAULT" are the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final, Literal

import polars as pl

from securecomm.core import schema
from securecomm.core.yamlfiles import PolicyFileError, YMap, YSeq, line_of, load_yaml

RowKind = Literal["charge", "detainer", "hold"]
ROW_KINDS: Final = ("charge", "detainer", "hold")
BUILTIN: Final = "builtin"
RULE_KEYS: Final = ("match", "kind", "category", "note", "examples")


class MappingFileError(PolicyFileError):
    """A mapping or charge-category file is malformed; the message names the file and line."""


def load_data_yaml(path: Path, name: str) -> object:
    """Parse a mapping or category file strictly (duplicate keys, YAML errors → file and line)."""
    try:
        return load_yaml(path, name)
    except MappingFileError:
        raise
    except PolicyFileError as error:
        prefix = f"{error.file}, line {error.line}: "
        raise MappingFileError(error.file, error.line, str(error).removeprefix(prefix)) from None


def builtin_path() -> Path:
    return Path(str(resources.files("securecomm") / "replay" / "charge_categories.yaml"))


def normalize_text(text: str) -> str:
    """Upper case, single spaces, no surrounding blanks."""
    return " ".join(text.upper().split())


@dataclass(frozen=True)
class ChargeRule:
    pattern: re.Pattern[str]
    kind: RowKind
    category: str | None
    note: str
    examples: tuple[str, ...]
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}, line {self.line}"


@dataclass(frozen=True)
class ChargeMap:
    """The rules of one or more category files, in order (a user's own file first)."""

    rules: tuple[ChargeRule, ...]

    def rule_for(self, text: str) -> ChargeRule | None:
        normalized = normalize_text(text)
        return next((rule for rule in self.rules if rule.pattern.search(normalized)), None)

    def classify(self, texts: pl.Series) -> pl.DataFrame:
        """Classify a column of texts: kind, category and the deciding rule's place, per row.

        Each distinct text is matched once and joined back, so a million rows with a few
        thousand distinct charges cost a few thousand regex searches.
        """
        distinct = texts.drop_nulls().unique()
        found = [self.rule_for(text) for text in distinct]
        lookup = pl.DataFrame(
            {
                "__text": distinct,
                "kind": [rule.kind if rule else None for rule in found],
                "category": [rule.category if rule else None for rule in found],
                "charge_rule": [rule.where if rule else None for rule in found],
            },
            schema={"__text": pl.String, "kind": pl.String, "category": pl.String, "charge_rule": pl.String},
        )
        return (
            pl.DataFrame({"__text": texts}).join(lookup, on="__text", how="left", maintain_order="left").drop("__text")
        )


def _text(value: object, file: str, line: int, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MappingFileError(file, line, f"'{key}' must be non-empty text")
    return value


def _rule(item: object, file: str, line: int) -> ChargeRule:
    if not isinstance(item, YMap):
        raise MappingFileError(file, line, "a rule must be a mapping with 'match' and 'category' or 'kind'")
    for key in item:
        if key not in RULE_KEYS:
            raise MappingFileError(
                file, line_of(item, key), f"unknown key '{key}'; a rule may have: {', '.join(RULE_KEYS)}"
            )
    if "match" not in item:
        raise MappingFileError(file, item.line, "a rule needs 'match' (a regular expression)")
    expression = _text(item["match"], file, line_of(item, "match"), "match")
    try:
        pattern = re.compile(expression)
    except re.error as error:
        raise MappingFileError(
            file, line_of(item, "match"), f"'match' is not a valid regular expression: {error}"
        ) from None
    kind = item.get("kind", "charge")
    if kind not in ROW_KINDS:
        raise MappingFileError(
            file, line_of(item, "kind"), f"unknown kind {kind!r}; expected one of: {', '.join(ROW_KINDS)}"
        )
    category = item.get("category")
    if kind == "charge":
        if category not in schema.CATEGORIES:
            raise MappingFileError(
                file,
                line_of(item, "category") if "category" in item else item.line,
                f"unknown category {category!r}; expected one of: {', '.join(schema.CATEGORIES)}",
            )
    elif category is not None:
        raise MappingFileError(file, line_of(item, "category"), f"a rule of kind '{kind}' has no category")
    examples = item.get("examples", [])
    if not isinstance(examples, list) or not all(isinstance(example, str) for example in examples):
        raise MappingFileError(file, line_of(item, "examples"), "'examples' must be a list of texts")
    note = item.get("note", "")
    if not isinstance(note, str):
        raise MappingFileError(file, line_of(item, "note"), "'note' must be text")
    return ChargeRule(pattern, kind, category, note.strip(), tuple(examples), file, item.line)


def read_charge_file(path: Path, display_name: str | None = None) -> tuple[ChargeRule, ...]:
    """Read one category file strictly (unknown keys or categories, bad regexes → file and line)."""
    name = display_name or str(path)
    document = load_data_yaml(path, name)
    if not isinstance(document, YMap) or set(document) - {"rules", "notes"} or "rules" not in document:
        raise MappingFileError(
            name, getattr(document, "line", 1), "a category file has 'rules' (a list) and optional 'notes'"
        )
    rules = document["rules"]
    if not isinstance(rules, YSeq) or not rules:
        raise MappingFileError(name, line_of(document, "rules"), "'rules' must be a non-empty list")
    return tuple(_rule(item, name, line_of(rules, index)) for index, item in enumerate(rules))


def load_charge_map(files: list[Path | str] | None = None) -> ChargeMap:
    """The rules of the given files in order; `"builtin"` stands for the shipped table."""
    rules: list[ChargeRule] = []
    for entry in files or [BUILTIN]:
        if entry == BUILTIN:
            rules.extend(read_charge_file(builtin_path(), "securecomm/replay/charge_categories.yaml"))
        else:
            rules.extend(read_charge_file(Path(entry)))
    return ChargeMap(tuple(rules))
