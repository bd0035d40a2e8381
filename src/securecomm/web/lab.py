"""The lab's question: a place, a period, the policies to compare, replications — read from a form,
checked field by field, and hashed with the model into the cache key that names its answer."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
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
    participation: str = ""  # one participation reform, PLACE=MODE[@DATE] (`Participation.parse`)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "start": self.start.isoformat(), "end": self.end.isoformat()}

    @property
    def effect_names(self) -> tuple[str, ...]:
        """The effects the run estimates: the defaults if asked, then the scenarios."""
        return select_effects(self.effects, ",".join(self.scenarios))

    @property
    def participations(self) -> tuple[Participation, ...]:
        return (Participation.parse(self.participation),) if self.participation else ()

    def participation_words(self) -> str:
        """The participation reform in words ("" for none): `Connecticut, 8 counties: not activated from …`."""
        if not self.participation:
            return ""
        return f"{place_label(self.participation.partition('=')[0])}, {self.participations[0].describe()}"

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


def participation_fields(spec: str) -> list[tuple[str, str]]:
    """A participation reform as the form's three fields (none when there is no reform)."""
    if not spec:
        return []
    place, _, rest = spec.partition("=")
    mode, _, day = rest.partition("@")
    return [("participation_place", place), ("participation_mode", mode), ("participation_date", day)]


DEFAULTS: dict[str, Any] = {
    "place": "CT",
    "start": "2013-01-01",
    "end": "2013-12-31",
    "policies": ["us/ice-request", "ct/trust-act-2013"],
    "baseline": "us/ice-request",
    "replications": "5",
    "seed": "1",
    "participation_place": "",
    "participation_mode": "",
    "participation_date": "",
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
        "participation_place": _first(values, "participation_place"),
        "participation_mode": _first(values, "participation_mode"),
        "participation_date": _first(values, "participation_date"),
    }


def _date(text: str, field: str, errors: dict[str, str]) -> dt.date | None:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        errors[field] = f"“{text}” is not a date: write it as YYYY-MM-DD, e.g. 2013-01-01."
        return None
    if not FIRST_DAY <= day <= LAST_DAY:
        errors[field] = f"Choose a day from {FIRST_DAY:%B %-d, %Y} to {LAST_DAY:%B %-d, %Y}."
        return None
    return day


def _whole(text: str, field: str, low: int, high: int, errors: dict[str, str]) -> int | None:
    try:
        number = int(text)
    except ValueError:
        errors[field] = f"“{text}” is not a whole number."
        return None
    if not low <= number <= high:
        errors[field] = f"Choose a whole number from {low} to {high:,}."
        return None
    return number


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
    participation = _participation(form, errors)
    if errors or start is None or end is None or replications is None or seed is None:
        return None, errors
    request = LabRequest(
        place, start, end, policies, baseline, replications, seed, form["effects"], scenarios, participation
    )
    return request, {}


def _participation(form: Mapping[str, Any], errors: dict[str, str]) -> str:
    """The participation reform the form asks, as `PLACE=MODE[@DATE]` ("" for none)."""
    mode = form["participation_mode"]
    if not mode:
        return ""
    if mode not in PARTICIPATION_CHOICES:
        errors["participation_mode"] = f"Choose one of: {', '.join(PARTICIPATION_CHOICES.values())}."
        return ""
    try:
        place = resolve_place_text(form["participation_place"])
    except ValueError as error:
        errors["participation_place"] = str(error)
        place = ""
    if place == NATION:
        errors["participation_place"] = "A participation reform is a state's or a county's: choose one, not US."
    day = None
    if form["participation_date"]:
        day = _date(form["participation_date"], "participation_date", errors)
    elif mode == "delayed":
        errors["participation_date"] = "Give the date activation is delayed to, as YYYY-MM-DD."
    if "participation_place" in errors or "participation_date" in errors:
        return ""
    spec = f"{place}={mode}" + (f"@{day.isoformat()}" if day else "")
    try:
        Participation.parse(spec)
    except ValueError as error:
        errors["participation_place"] = str(error)
        return ""
    return spec
