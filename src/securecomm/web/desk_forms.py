"""The desk's intake form and upload: form fields → the API's intake body, errors → words beside fields.

The body is checked by the API's own model (`desk.api.DetainerIntake`) and then by the service, so a
detainer filed from a page meets exactly the checks of one sent to `POST /api/v1/detainers`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from pydantic import ValidationError

from securecomm.core import schema

CHARGE_ROWS = 3
CONVICTION_ROWS = 3
TEXT_FIELDS = ("booking_ref", "detainer_number", "received_at", "issuing_office", "case_id", "release_eligible_at")
INTAKE_LABELS: dict[str, str] = {
    "booking_ref": "Booking number",
    "detainer_number": "ICE detainer number",
    "received_at": "Received at",
    "issuing_office": "Issuing ICE office",
    "case_id": "Case id",
    "release_eligible_at": "Release eligible at",
    "age": "Age",
    "detainer_form": "Detainer form",
    "public_safety_risk": "Unacceptable risk to public safety",
    "category": "Offense",
    "level": "Level",
    "felony_class": "Felony class",
    "years_ago": "Years since conviction",
    "years_since_release": "Years since release",
    **{flag: schema.FACT_PHRASES[flag] for flag in schema.CASE_FLAGS},
}
_LIST_FIELDS = {"current_charges": "charge", "convictions": "conviction"}
_SERVICE_FIELD = re.compile(r"^(current_charges|convictions)\[(\d+)\]\.(\w+)$")


def blank_intake() -> dict[str, Any]:
    """The intake form's values before anything is typed."""
    return {
        **dict.fromkeys(TEXT_FIELDS, ""),
        "age": "",
        "detainer_form": "",
        "public_safety_risk": "",
        "flags": [],
        "charges": [dict.fromkeys(("category", "level", "felony_class"), "") for _ in range(CHARGE_ROWS)],
        "convictions": [
            dict.fromkeys(("category", "level", "felony_class", "years_ago", "years_since_release"), "")
            for _ in range(CONVICTION_ROWS)
        ],
    }


def _number(text: str) -> Any:
    """A number typed in a form: an int or a float when it reads as one, else the text (refused by the model)."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def intake_body(values: dict[str, list[str]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The form as typed (to show again) and the intake body it stands for."""

    def first(name: str) -> str:
        return (values.get(name) or [""])[0].strip()

    form = blank_intake()
    body: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        form[name] = first(name)
        if form[name]:
            body[name] = form[name]
    form["age"] = first("age")
    if form["age"]:
        body["age"] = _number(form["age"])
    form["detainer_form"] = first("detainer_form")
    if form["detainer_form"]:
        body["detainer_form"] = form["detainer_form"]
    form["flags"] = [flag for flag in schema.CASE_FLAGS if first(flag) == "yes"]
    for flag in form["flags"]:
        body[flag] = True
    form["public_safety_risk"] = first("public_safety_risk")
    if form["public_safety_risk"] in ("yes", "no"):
        body["public_safety_risk"] = form["public_safety_risk"] == "yes"
    charges = []
    for index, row in enumerate(form["charges"]):
        for key in row:
            row[key] = first(f"charge-{index}-{key}")
        if any(row.values()):
            charges.append({key: value for key, value in row.items() if value} | {"_row": index})
    convictions = []
    for index, row in enumerate(form["convictions"]):
        for key in row:
            row[key] = first(f"conviction-{index}-{key}")
        if any(row.values()):
            entry: dict[str, Any] = {key: value for key, value in row.items() if value}
            for key in ("years_ago", "years_since_release"):
                if key in entry:
                    entry[key] = _number(entry[key])
            convictions.append(entry | {"_row": index})
    # The rows keep their place on the form, so an error names the row the officer filled.
    form["_charge_rows"] = [charge.pop("_row") for charge in charges]
    form["_conviction_rows"] = [conviction.pop("_row") for conviction in convictions]
    if charges:
        body["current_charges"] = charges
    if convictions:
        body["convictions"] = convictions
    return form, body


def _words(error: dict[str, Any]) -> str:
    if error["type"] == "missing":
        return "is required."
    if error["type"] == "extra_forbidden":
        return "is not a field of a detainer."
    message = str(error["msg"]).removeprefix("Value error, ")
    return message if message.endswith(".") else message + "."


def field_id(location: tuple[Any, ...] | list[Any], rows: dict[str, list[int]] | None = None) -> str:
    """The form field of a location in the intake body (`("current_charges", 0, "level")` → `charge-0-level`)."""
    parts = list(location)
    if parts and parts[0] == "body":
        parts = parts[1:]
    if len(parts) >= 3 and parts[0] in _LIST_FIELDS and isinstance(parts[1], int):
        index = parts[1]
        if rows is not None and index < len(rows[parts[0]]):
            index = rows[parts[0]][index]
        return f"{_LIST_FIELDS[parts[0]]}-{index}-{parts[2]}"
    return str(parts[0]) if parts else "form"


def intake_errors(error: ValidationError, form: dict[str, Any] | None = None) -> dict[str, str]:
    """The model's refusals in words, by form field (the first for each field)."""
    rows = None
    if form is not None:
        rows = {"current_charges": form["_charge_rows"], "convictions": form["_conviction_rows"]}
    found: dict[str, str] = {}
    for item in error.errors():
        found.setdefault(field_id(item["loc"], rows), _words(item))
    return found


def service_error_field(field: str) -> str:
    """The form field of a field the service names (`current_charges[0].felony_class` → `charge-0-felony_class`)."""
    matched = _SERVICE_FIELD.match(field)
    if matched:
        return f"{_LIST_FIELDS[matched.group(1)]}-{matched.group(2)}-{matched.group(3)}"
    return field or "form"


def _cell(name: str, text: str) -> Any:
    """A CSV cell as the intake body's value: lists as JSON, flags as true/false, numbers as numbers."""
    text = text.strip()
    if name in _LIST_FIELDS:
        return json.loads(text)
    if name in schema.CASE_FLAGS or name == schema.THREE_VALUED_FLAG:
        lowered = text.lower()
        return {"true": True, "yes": True, "false": False, "no": False}.get(lowered, text)
    if name == "age":
        return _number(text)
    return text


def read_upload(name: str, data: bytes) -> tuple[list[dict[str, Any]], str]:
    """The detainers of an uploaded file — JSON (a list of intake bodies, or one) or CSV (a header row of
    the intake fields; `current_charges` and `convictions` cells hold JSON lists) — and a problem
    with the file as a whole, in words ('' when it was read)."""
    if not data:
        return [], "Choose a CSV or JSON file of detainers."
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], "The file is not text in UTF-8."
    if name.lower().endswith(".json") or text.lstrip().startswith(("[", "{")):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as error:
            return [], f"The file is not valid JSON (line {error.lineno}: {error.msg})."
        rows = parsed if isinstance(parsed, list) else [parsed]
        if not all(isinstance(row, dict) for row in rows):
            return [], "The JSON file must hold a list of detainers, each an object of intake fields."
        return rows, ""
    rows = []
    try:
        for line, record in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            row = {}
            for key, value in record.items():
                if key is None:
                    return [], f"Line {line} of the CSV file has more cells than its header."
                if value not in (None, ""):
                    row[key.strip()] = _cell(key.strip(), value)
            rows.append(row)
    except json.JSONDecodeError as error:
        return [], f"A charges or convictions cell is not a JSON list ({error.msg})."
    except csv.Error as error:
        return [], f"The CSV file could not be read: {error}."
    if not rows:
        return [], "The file holds no detainers."
    return rows, ""
