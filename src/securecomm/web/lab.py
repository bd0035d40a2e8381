"""The lab's question: a place, a period, the policies to compare, replications — read from a form,
checked field by field, and hashed with the model into the cache key that names its answer."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import polars as pl

from securecomm.core.places import NATION, counties, resolve_place
from securecomm.law.loader import load_library
from securecomm.model.replications import HISTORICAL, ReplicationPlan
from securecomm.model.simulation import Participation
from securecomm.model.stages.effects import select as select_effects
from securecomm.model.stages.effects import studies

FIRST_DAY = dt.date(2008, 10, 27)  # Secure Communities' first activation (Harris County)
LAST_DAY = dt.date(2019, 12, 31)  # the last year of the shipped population tables
MAX_REPLICATIONS = 20
MAX_SEED = 2**31 - 1
MAX_PARTICIPATIONS = 6  # participation reforms in one question
MIN_PARTICIPATION_ROWS = 3  # the form's rows for them (Illinois, New York, Massachusetts tried in 2011)
SPEC_SEPARATOR = ";"  # between participation reforms in `LabRequest.participation` (never in a spec)
Ranged = TypeVar("Ranged", int, dt.date)  # a form field's value that must lie in a range
# What a question's answer depends on besides its inputs: the code and data of the model.
MODEL_PACKAGES = ("core", "law", "model", "comparison")


@dataclass(frozen=True)
class LabRequest:
    place: str  # US, a state code, county FIPS codes (comma list)
    start: dt.date
    end: dt.date
    policies: tuple[str, ...]
    baseline: str
    replications: int
    seed: int
    effects: bool = False  # the default effects (docs/effects.md)
    scenarios: tuple[str, ...] = ()  # the effect scenarios, by name
    # The participation reforms, each PLACE=MODE[@DATE] (`Participation.parse`), joined by ";" in the
    # form's order ("" for none): one reform is its spec alone, so its cache key is what it was.
    participation: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "start": self.start.isoformat(), "end": self.end.isoformat()}

    @property
    def effect_names(self) -> tuple[str, ...]:
        """The effects the run estimates: the defaults if asked, then the scenarios."""
        return select_effects(self.effects, ",".join(self.scenarios))

    @property
    def participation_specs(self) -> tuple[str, ...]:
        return participation_specs(self.participation)

    @property
    def participations(self) -> tuple[Participation, ...]:
        return tuple(Participation.parse(spec) for spec in self.participation_specs)

    def participation_words(self) -> str:
        """The participation reforms in words ("" for none), each `Connecticut, 8 counties: not activated
        from …`, separated by semicolons."""
        return "; ".join(
            f"{place_label(spec.partition('=')[0])}, {reform.describe()}"
            for spec, reform in zip(self.participation_specs, self.participations, strict=True)
        )

    def plan(self) -> ReplicationPlan:
        """The replications the question runs (what `compare` runs for it)."""
        return ReplicationPlan(
            self.place,
            self.start,
            self.end,
            self.policies,
            self.replications,
            self.seed,
            vary_parameters=self.replications > 1,
            effects=self.effect_names,
            participation=self.participations,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabRequest:
        return cls(
            place=data["place"],
            start=dt.date.fromisoformat(data["start"]),
            end=dt.date.fromisoformat(data["end"]),
            policies=tuple(data["policies"]),
            baseline=data["baseline"],
            replications=int(data["replications"]),
            seed=int(data["seed"]),
            effects=bool(data.get("effects", False)),
            scenarios=tuple(data.get("scenarios", ())),
            participation=data.get("participation", ""),
        )

    @property
    def key(self) -> str:
        """The cache key: the inputs and the model's fingerprint, hashed."""
        text = json.dumps({"inputs": self.to_dict(), "model": model_fingerprint()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def query(self) -> str:
        """The query string of the permanent link that asks this question again."""
        return urlencode(
            [
                ("place", self.place),
                ("start", self.start.isoformat()),
                ("end", self.end.isoformat()),
                *(("policies", policy) for policy in self.policies),
                ("baseline", self.baseline),
                ("replications", str(self.replications)),
                ("seed", str(self.seed)),
                *([("effects", "on")] if self.effects else []),
                *(("scenarios", scenario) for scenario in self.scenarios),
                *participation_fields(self.participation),
            ]
        )


def participation_specs(joined: str) -> tuple[str, ...]:
    """The participation reforms of `LabRequest.participation`, each `PLACE=MODE[@DATE]`."""
    return tuple(spec for spec in joined.split(SPEC_SEPARATOR) if spec)


def participation_fields(joined: str) -> list[tuple[str, str]]:
    """The participation reforms as the form's fields, three per reform in order (none without a reform):
    the fields repeat, and the n-th place, mode and date make the n-th reform."""
    fields = []
    for spec in participation_specs(joined):
        place, _, rest = spec.partition("=")
        mode, _, day = rest.partition("@")
        fields += [("participation_place", place), ("participation_mode", mode), ("participation_date", day)]
    return fields


DEFAULTS: dict[str, Any] = {
    "place": "CT",
    "start": "2013-01-01",
    "end": "2013-12-31",
    "policies": ["us/ice-request", "ct/trust-act-2013"],
    "baseline": "us/ice-request",
    "replications": "5",
    "seed": "1",
}
# The participation choices in words (docs/effects.md, "State participation scenarios").
PARTICIPATION_CHOICES = {
    "never": "activation never happens",
    "delayed": "activation delayed to the date",
    "no-detainers": "prints go to the FBI but the state refuses detainers",
}


@cache
def model_fingerprint() -> str:
    """A hash of every file of the packages a comparison's numbers come from."""
    digest = hashlib.sha256()
    root = Path(str(resources.files("securecomm")))
    for package in MODEL_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(root).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class PolicyChoice:
    id: str
    title: str


@cache
def policy_choices() -> tuple[PolicyChoice, ...]:
    """`historical` and every jail (detainer) policy of the library."""
    library = [PolicyChoice(policy.id, policy.title) for policy in load_library() if policy.kind == "detainer"]
    return (PolicyChoice(HISTORICAL, "Each county's real policies on their real dates"), *library)


@dataclass(frozen=True)
class ScenarioChoice:
    name: str
    label: str
    study: str


@cache
def scenario_choices() -> tuple[ScenarioChoice, ...]:
    """The effect scenarios, each labelled with its study (off unless chosen)."""
    known = studies()
    return tuple(
        ScenarioChoice(name, known.effects[name].label, known.effects[name].study) for name in known.names("scenario")
    )


# --- places by name or code --------------------------------------------------------------------


@cache
def _place_names() -> pl.DataFrame:
    return counties().select(
        "fips",
        "state",
        "state_name",
        pl.concat_str("name", pl.lit(", "), "state").alias("label"),
        pl.col("name").str.to_lowercase().alias("lower"),
    )


@cache
def _state_names() -> dict[str, str]:
    return dict(_place_names().select("state", "state_name").unique().iter_rows())


def place_label(spec: str) -> str:
    """A place in words: "Fairfield County, CT", "Connecticut", "the United States"."""
    items = [item.strip().upper() for item in spec.split(",") if item.strip()]
    names = []
    labels = dict(_place_names().select("fips", "label").iter_rows())
    for item in items:
        names.append("the United States" if item == NATION else _state_names().get(item) or labels.get(item, item))
    return "; ".join(names)


def search_places(query: str, limit: int = 10) -> list[tuple[str, str]]:
    """(code, label) of the states and counties whose name or code starts with or contains the query."""
    text = query.strip().lower()
    if not text:
        return []
    found: list[tuple[str, str]] = []
    for code, name in sorted(_state_names().items(), key=lambda item: item[1]):
        if name.lower().startswith(text) or code.lower() == text:
            found.append((code, name))
    state_hint = None
    if "," in text:  # "fairfield, ct" or "fairfield county, ct"
        text, state_hint = (part.strip() for part in text.rsplit(",", 1))
    table = _place_names()
    matches = table.filter(
        pl.col("lower").str.contains(text, literal=True) | pl.col("fips").str.starts_with(text)
    ).sort(pl.col("lower").str.starts_with(text), "lower", descending=[True, False])
    if state_hint:
        matches = matches.filter(
            (pl.col("state").str.to_lowercase() == state_hint)
            | pl.col("state_name").str.to_lowercase().str.starts_with(state_hint)
        )
    found.extend((fips, f"{label} ({fips})") for fips, label in matches.select("fips", "label").iter_rows())
    return found[:limit]


def resolve_place_text(text: str) -> str:
    """A place typed as a code (US, CT, 09001, a comma list) or a name (Connecticut, Fairfield County, CT):
    its code(s). Raises ValueError with the candidates when a name is not found or not unique."""
    cleaned = text.strip()
    if not cleaned:
        raise ValueError("Give a place: a state, a county, or the whole country (US).")
    try:
        resolve_place(cleaned)
        return ",".join(item.strip().upper() for item in cleaned.split(","))
    except ValueError as error:
        code_error = str(error)
    candidates = search_places(cleaned, limit=50)
    exact = [code for code, label in candidates if label.split(" (")[0].lower() == cleaned.lower()]
    if len(exact) == 1:
        return exact[0]
    if len(candidates) == 1:
        return candidates[0][0]
    if candidates:
        shown = "; ".join(label for _, label in candidates[:8])
        more = f" and {len(candidates) - 8} more" if len(candidates) > 8 else ""
        raise ValueError(
            f"“{cleaned}” matches {len(candidates)} places: {shown}{more}. Add the state (“{candidates[0][1].split(' (')[0]}”) "
            "or give the five-digit code."
        )
    if any(character.isdigit() for character in cleaned):
        raise ValueError(code_error[0].upper() + code_error[1:] + ".")
    raise ValueError(
        f"No state or county is called “{cleaned}”: write a state (Connecticut or CT), a county with its state "
        "(Fairfield County, CT), a five-digit county FIPS code (09001), or US."
    )


# --- the form ------------------------------------------------------------------------------------


def _first(values: Mapping[str, Sequence[str]], name: str) -> str:
    given = values.get(name)
    if given:
        return given[0].strip()
    default = DEFAULTS[name]
    return default if isinstance(default, str) else default[0]


def form_values(values: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The form's fields as typed (or the defaults), to show again beside any errors."""
    policies = [value for value in values.get("policies", []) if value] or list(DEFAULTS["policies"])
    return {
        "place": _first(values, "place"),
        "start": _first(values, "start"),
        "end": _first(values, "end"),
        "policies": policies,
        "baseline": _first(values, "baseline") if values.get("baseline") else policies[0],
        "replications": _first(values, "replications"),
        "seed": _first(values, "seed"),
        "effects": bool(values.get("effects")),
        "scenarios": [value for value in values.get("scenarios", []) if value],
        "participations": (rows := participation_rows(values)),
        "participation_labels": {field: label for row in rows for field, label in participation_labels(row).items()},
    }


PARTICIPATION_FIELDS = ("place", "mode", "date")


def participation_field(name: str, number: int) -> str:
    """The form field (and its id, and its key in the errors) of the `number`-th participation reform:
    `participation_place` for the first, `participation_place-2` for the second."""
    return f"participation_{name}" if number == 1 else f"participation_{name}-{number}"


def participation_rows(values: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """The participation reforms as typed, one row each (the n-th place, mode and date), and empty rows
    after them to fill: at least MIN_PARTICIPATION_ROWS, one more than those typed, at most
    MAX_PARTICIPATIONS (more typed are all shown, and refused)."""
    typed = {
        name: [value.strip() for value in values.get(f"participation_{name}", [])] for name in PARTICIPATION_FIELDS
    }

    def cell(name: str, index: int) -> str:
        return typed[name][index] if index < len(typed[name]) else ""

    count = max(len(column) for column in typed.values())
    while count and not any(cell(name, count - 1) for name in PARTICIPATION_FIELDS):
        count -= 1  # trailing empty rows
    rows = []
    for index in range(max(count, min(MAX_PARTICIPATIONS, max(MIN_PARTICIPATION_ROWS, count + 1)))):
        row: dict[str, Any] = {name: cell(name, index) for name in PARTICIPATION_FIELDS}
        row["number"] = index + 1
        row["fields"] = {name: participation_field(name, index + 1) for name in PARTICIPATION_FIELDS}
        row["description"] = describe_participation(row)
        rows.append(row)
    return rows


def participation_labels(row: Mapping[str, Any]) -> dict[str, str]:
    """The error summary's name of each field of a participation reform: its number, what was typed, the
    field ("Participation reform 2 (“NY”, prints go to the FBI but …): state or county")."""
    what = {"place": "state or county", "mode": "participation", "date": "from"}
    named = f"Participation reform {row['number']}" + (
        f" ({row['description']})" if any(row[name] for name in PARTICIPATION_FIELDS) else ""
    )
    return {row["fields"][name]: f"{named}: {what[name]}" for name in PARTICIPATION_FIELDS}


def _read_in_range(
    text: str,
    field: str,
    errors: dict[str, str],
    read: Callable[[str], Ranged],
    low: Ranged,
    high: Ranged,
    unread: str,
    out_of_range: str,
) -> Ranged | None:
    """A field's text as `read` reads it, if from `low` to `high`; else None, and the field's error: the quoted
    text and `unread`, or `out_of_range`."""
    try:
        value = read(text)
    except ValueError:
        errors[field] = f"“{text}” {unread}"
        return None
    if not low <= value <= high:
        errors[field] = out_of_range
        return None
    return value


def _date(text: str, field: str, errors: dict[str, str]) -> dt.date | None:
    return _read_in_range(
        text,
        field,
        errors,
        dt.date.fromisoformat,
        FIRST_DAY,
        LAST_DAY,
        "is not a date: write it as YYYY-MM-DD, e.g. 2013-01-01.",
        f"Choose a day from {FIRST_DAY:%B %-d, %Y} to {LAST_DAY:%B %-d, %Y}.",
    )


def _whole(text: str, field: str, low: int, high: int, errors: dict[str, str]) -> int | None:
    return _read_in_range(
        text, field, errors, int, low, high, "is not a whole number.", f"Choose a whole number from {low} to {high:,}."
    )


def parse_request(values: Mapping[str, Sequence[str]]) -> tuple[LabRequest | None, dict[str, str]]:
    """The request a form asks, or the errors of its fields (field → a sentence)."""
    form = form_values(values)
    errors: dict[str, str] = {}
    try:
        place = resolve_place_text(form["place"])
    except ValueError as error:
        errors["place"] = str(error)
        place = ""
    start = _date(form["start"], "start", errors)
    end = _date(form["end"], "end", errors)
    if start and end and end < start:
        errors["end"] = "The last day comes before the first."
    known = {choice.id for choice in policy_choices()}
    policies = tuple(dict.fromkeys(form["policies"]))
    unknown = [policy for policy in policies if policy not in known]
    if unknown:
        errors["policies"] = f"Not a jail policy of the library: {', '.join(unknown)}."
    baseline = form["baseline"]
    if baseline in policies:  # the baseline first, as the table's first column
        policies = (baseline, *(policy for policy in policies if policy != baseline))
    else:
        errors["baseline"] = "The baseline must be one of the policies compared."
    replications = _whole(form["replications"], "replications", 1, MAX_REPLICATIONS, errors)
    seed = _whole(form["seed"], "seed", 0, MAX_SEED, errors)
    known_scenarios = [choice.name for choice in scenario_choices()]
    unknown = [name for name in form["scenarios"] if name not in known_scenarios]
    if unknown:
        errors["scenarios"] = f"Not an effect scenario: {', '.join(unknown)}."
    scenarios = tuple(name for name in known_scenarios if name in form["scenarios"])  # in the studies' order
    participation = _participations(form["participations"], errors)
    if errors or start is None or end is None or replications is None or seed is None:
        return None, errors
    request = LabRequest(
        place, start, end, policies, baseline, replications, seed, form["effects"], scenarios, participation
    )
    return request, {}


def describe_participation(row: Mapping[str, Any]) -> str:
    """A participation reform as typed, to name it in an error: “IL, activation never happens, from 2011-05-04”."""
    parts = [f"“{row['place']}”" if row["place"] else "no place"]
    parts.append(PARTICIPATION_CHOICES.get(row["mode"], f"“{row['mode']}”"))
    if row["date"]:
        parts.append(f"from {row['date']}")
    return ", ".join(parts)


def _participations(rows: Sequence[Mapping[str, Any]], errors: dict[str, str]) -> str:
    """The participation reforms the form asks, each as `PLACE=MODE[@DATE]`, joined by ";" ("" for none).
    A row whose mode is left blank is no reform, whatever its other fields say. Each error is keyed by
    the reform's own field (`participation_place-2`)."""
    asked = [row for row in rows if row["mode"]]
    if len(asked) > MAX_PARTICIPATIONS:
        last = asked[MAX_PARTICIPATIONS]["fields"]["mode"]
        errors[last] = f"At most {MAX_PARTICIPATIONS} participation reforms in one question: leave the others blank."
        return ""
    specs: list[str] = []
    taken: list[tuple[int, str, frozenset[str]]] = []  # each reform's number, mode and counties
    for row in asked:
        spec = _participation(row, errors)
        if not spec:
            continue
        reform = Participation.parse(spec)
        repeated = [
            (number, len(counties & reform.counties))
            for number, mode, counties in taken
            if mode == reform.mode and counties & reform.counties
        ]
        if repeated:
            number, shared = repeated[0]
            where = "this county" if len(reform.counties) == 1 else f"{shared} of these counties"
            errors[row["fields"]["place"]] = (
                f"Reform {number} already sets “{PARTICIPATION_CHOICES[reform.mode]}” for {where}: keep one of the two."
            )
            continue
        taken.append((row["number"], reform.mode, reform.counties))
        specs.append(spec)
    if any(key.startswith("participation_") for key in errors):
        return ""
    return SPEC_SEPARATOR.join(specs)


def _participation(row: Mapping[str, Any], errors: dict[str, str]) -> str:
    """One participation reform of the form, as `PLACE=MODE[@DATE]` ("" when it has an error)."""
    fields = row["fields"]
    mode = row["mode"]
    if mode not in PARTICIPATION_CHOICES:
        errors[fields["mode"]] = f"Choose one of: {', '.join(PARTICIPATION_CHOICES.values())}."
        return ""
    try:
        place = resolve_place_text(row["place"])
    except ValueError as error:
        errors[fields["place"]] = str(error)
        place = ""
    if place == NATION:
        errors[fields["place"]] = "A participation reform is a state's or a county's: choose one, not US."
    day = None
    if row["date"]:
        day = _date(row["date"], fields["date"], errors)
    elif mode == "delayed":
        errors[fields["date"]] = "Give the date activation is delayed to, as YYYY-MM-DD."
    if fields["place"] in errors or fields["date"] in errors:
        return ""
    spec = f"{place}={mode}" + (f"@{day.isoformat()}" if day else "")
    try:
        Participation.parse(spec)
    except ValueError as error:
        errors[fields["place"]] = str(error)
        return ""
    return spec
