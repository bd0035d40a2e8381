"""The policy library's pages: each policy's rules, citations and YAML cases, and "try a case".

A case typed into the form becomes one record of the case schema (the same record a line of
`securecomm decide`'s JSON Lines input holds) and is decided under every policy through the same
path as the command: `core.cases.to_tables`, then `law.compiler.compile_policy(...).evaluate`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import polars as pl

from securecomm.core import schema
from securecomm.core.cases import InputError, to_tables
from securecomm.core.yamlfiles import load_yaml
from securecomm.law.compiler import CompiledPolicy, compile_policy
from securecomm.law.explain import clause_table, describe_condition
from securecomm.law.loader import cases_path, library_root, load_library
from securecomm.law.model import Policy

CHARGE_ROWS = 3
CONVICTION_ROWS = 3
DEFAULT_CASE_ID = "web-case"


def _plain(value: Any) -> Any:
    """YAML values (dates, nested mappings) as JSON-ready values."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def library_rows() -> list[dict[str, Any]]:
    """Every policy: id, title, jurisdiction, kind, effective date, status."""
    return [
        {
            "id": policy.id,
            "title": policy.title,
            "jurisdiction": policy.jurisdiction.name,
            "kind": policy.kind,
            "effective": policy.effective.isoformat() if policy.effective else "—",
            "status": policy.status,
        }
        for policy in load_library()
    ]


def policy_page(policy: Policy) -> dict[str, Any]:
    """A policy's questions and rules in plain English, its hold, sets, references, cases and source."""
    subject = "" if policy.kind == "field" else "the person "
    questions = [
        {
            "name": "" if question.name == "decision" else question.name.replace("_", " "),
            "default": question.default,
            "rules": [
                {
                    "number": number,
                    "rule": rule,
                    "subject": subject,
                    "reads": describe_condition(rule.when, policy),
                    "unless": describe_condition(rule.unless, policy) if rule.unless is not None else "",
                }
                for number, rule in enumerate(question.rules, start=1)
            ],
        }
        for question in policy.questions
    ]
    cases_file = cases_path(policy.id)
    cases = []
    if cases_file.is_file():
        document = load_yaml(cases_file, f"policies/{policy.id}.cases.yaml")
        for case in document["cases"]:
            record = _plain(case["input"])
            cases.append(
                {
                    "name": str(case["name"]),
                    "input": json.dumps(record, ensure_ascii=False),
                    "expect": _plain(case["expect"]),
                }
            )
    return {
        "policy": policy,
        "questions": questions,
        "cases": cases,
        "clauses": clause_table(policy),
        "source": (library_root() / f"{policy.id}.yaml").read_text(encoding="utf-8"),
        "decides_cases": policy.kind != "field",
    }


# --- try a case ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TriedCase:
    record: dict[str, Any] | None  # the case as one record of the schema; None if the form has errors
    errors: dict[str, str]  # field → a sentence
    form: dict[str, str]  # the fields as typed, to show again


def _one(values: Mapping[str, Sequence[str]], name: str) -> str:
    given = values.get(name)
    return given[0].strip() if given else ""


def _number(text: str, field: str, errors: dict[str, str], *, whole: bool) -> float | int | None:
    if not text:
        return None
    try:
        number = int(text) if whole else float(text)
    except ValueError:
        errors[field] = f"“{text}” is not a {'whole ' if whole else ''}number."
        return None
    if number < 0:
        errors[field] = "Give a number of zero or more."
        return None
    return number


def form_fields() -> list[str]:
    """The names of the try-a-case form's fields."""
    names = ["case_id", "case_json", "release_eligible_at", "time_zone", "age", "detainer_form", "public_safety_risk"]
    names += list(schema.CASE_FLAGS)
    for index in range(1, CHARGE_ROWS + 1):
        names += [f"charge{index}_category", f"charge{index}_level", f"charge{index}_class"]
    for index in range(1, CONVICTION_ROWS + 1):
        names += [
            f"conviction{index}_category",
            f"conviction{index}_level",
            f"conviction{index}_class",
            f"conviction{index}_years_ago",
            f"conviction{index}_years_since_release",
            f"conviction{index}_in_custody",
        ]
    return names


def read_case(values: Mapping[str, Sequence[str]]) -> TriedCase:
    """The record a try-a-case form describes (its JSON box, if filled, instead of its fields)."""
    form = {name: _one(values, name) for name in form_fields()}
    errors: dict[str, str] = {}
    if form["case_json"]:
        try:
            record = json.loads(form["case_json"])
        except json.JSONDecodeError as error:
            return TriedCase(None, {"case_json": f"This is not JSON: {error.msg} (line {error.lineno})."}, form)
        if not isinstance(record, dict):
            return TriedCase(None, {"case_json": "Give one case: a JSON object, {…}."}, form)
        record.setdefault("case_id", form["case_id"] or DEFAULT_CASE_ID)
        return _checked(record, form, "case_json")
    record: dict[str, Any] = {"case_id": form["case_id"] or DEFAULT_CASE_ID}
    if form["release_eligible_at"]:
        record["release_eligible_at"] = form["release_eligible_at"]
    if form["time_zone"]:
        record["time_zone"] = form["time_zone"]
    age = _number(form["age"], "age", errors, whole=True)
    if age is not None:
        record["age"] = age
    if form["detainer_form"]:
        record["detainer_form"] = form["detainer_form"]
    if form["public_safety_risk"] in ("yes", "no"):
        record["public_safety_risk"] = form["public_safety_risk"] == "yes"
    for flag in schema.CASE_FLAGS:
        if form[flag]:
            record[flag] = True
    charges = []
    for index in range(1, CHARGE_ROWS + 1):
        prefix = f"charge{index}_"
        if form[prefix + "category"] or form[prefix + "level"]:
            charge = {"category": form[prefix + "category"], "level": form[prefix + "level"]}
            if form[prefix + "class"]:
                charge["felony_class"] = form[prefix + "class"]
            charges.append(charge)
    if charges:
        record["current_charges"] = charges
    convictions = []
    for index in range(1, CONVICTION_ROWS + 1):
        prefix = f"conviction{index}_"
        if not (form[prefix + "category"] or form[prefix + "level"] or form[prefix + "years_ago"]):
            continue
        conviction: dict[str, Any] = {"category": form[prefix + "category"], "level": form[prefix + "level"]}
        if form[prefix + "class"]:
            conviction["felony_class"] = form[prefix + "class"]
        years_ago = _number(form[prefix + "years_ago"], prefix + "years_ago", errors, whole=False)
        if years_ago is None and prefix + "years_ago" not in errors:
            errors[prefix + "years_ago"] = "How many years ago was the conviction? (required)"
        conviction["years_ago"] = years_ago
        since = _number(form[prefix + "years_since_release"], prefix + "years_since_release", errors, whole=False)
        if since is not None:
            conviction["years_since_release"] = since
        if form[prefix + "in_custody"]:
            conviction["currently_in_custody"] = True
        convictions.append(conviction)
    if convictions:
        record["convictions"] = convictions
    if errors:
        return TriedCase(None, errors, form)
    return _checked(record, form, None)


def _form_field(path: str | None) -> str | None:
    """The form field an input error's path (`convictions[0].category`) points to."""
    if path is None:
        return None
    for list_name, prefix in (("current_charges", "charge"), ("convictions", "conviction")):
        if path.startswith(list_name + "["):
            index = int(path[len(list_name) + 1 : path.index("]")]) + 1
            item = path.split(".", 1)[1] if "." in path else "category"
            item = {"felony_class": "class", "currently_in_custody": "in_custody"}.get(item, item)
            return f"{prefix}{index}_{item}"
    return path


def _checked(record: dict[str, Any], form: dict[str, str], json_field: str | None) -> TriedCase:
    try:
        to_tables([record])
    except InputError as error:
        field = json_field or _form_field(error.field)
        message = str(error).removeprefix("record 1: ")
        return TriedCase(None, {field if field in form else "case": message}, form)
    return TriedCase(record, {}, form)


def blank_form() -> dict[str, str]:
    """The try-a-case form with nothing typed in."""
    return dict.fromkeys(form_fields(), "")


@cache
def _compiled(policy: Policy) -> CompiledPolicy:
    return compile_policy(policy)


def decide_everywhere(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The case decided under every policy that reads detainer cases (jail and ICE policies),
    in the columns of `securecomm decide`."""
    tables = to_tables([record])
    rows = []
    for policy in load_library():
        if policy.kind == "field":
            continue
        frame = _compiled(policy).evaluate(tables)
        row = frame.with_columns(pl.col(pl.Enum).cast(pl.String)).row(0, named=True)
        rows.append({"policy": policy, **row})
    return rows
