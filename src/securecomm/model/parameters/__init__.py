"""Pipeline parameters as data: every number the simulator uses, with its source.

The YAML files beside this module hold the values (docs/parameters.md); this module
reads them strictly and checks each against the shape the pipeline expects, so a typo,
a distribution that does not sum to one or a probability of 1.2 is caught at load time
with the file and line named.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from securecomm.core import schema
from securecomm.core.schema import NONCITIZEN_STATUSES, STATUSES
from securecomm.core.yamlfiles import PolicyFileError, YMap, YSeq, line_of, load_yaml

ENTRY_KEYS = (
    "description",
    "unit",
    "value",
    "values",
    "uncertainty",
    "references",
    "derivation",
    "calibrate",
    "assumption",
    "rationale",
    "notes",
)


class ParameterError(PolicyFileError):
    """A parameter file is malformed; the message names the file and line."""


# --- shapes ----------------------------------------------------------------------------
# A shape checks one value and returns a message for the first problem, or None.

Shape = Callable[[Any], str | None]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def probability(value: Any) -> str | None:
    return None if _number(value) and 0 <= value <= 1 else f"must be a probability in [0, 1], not {value!r}"


def non_negative(value: Any) -> str | None:
    return None if _number(value) and value >= 0 else f"must be a number ≥ 0, not {value!r}"


def mapping_of(keys: tuple[str, ...], inner: Shape) -> Shape:
    def check(value: Any) -> str | None:
        if not isinstance(value, Mapping) or set(value) != set(keys):
            got = sorted(value) if isinstance(value, Mapping) else value
            return f"must map exactly {', '.join(keys)}; got {got}"
        for key in keys:
            problem = inner(value[key])
            if problem:
                return f"{key}: {problem}"
        return None

    return check


def distribution(keys: tuple[str, ...]) -> Shape:
    def check(value: Any) -> str | None:
        problem = mapping_of(keys, probability)(value)
        if problem:
            return problem
        total = sum(value.values())
        return None if abs(total - 1) <= 1e-6 else f"shares must sum to 1, not {total:.6f}"

    return check


def lognormal(value: Any) -> str | None:
    """A lognormal by its median and sigma, truncated at `max` (same unit as the median)."""
    return mapping_of(("median", "sigma", "max"), non_negative)(value)


LPR_BY_RECORD = ("with_known_conviction", "without_known_conviction")


def removability(value: Any) -> str | None:
    """By status; a lawful permanent resident's by whether the FBI record shows a conviction."""
    if not isinstance(value, Mapping) or set(value) != set(STATUSES):
        got = sorted(value) if isinstance(value, Mapping) else value
        return f"must map exactly {', '.join(STATUSES)}; got {got}"
    for status in STATUSES:
        inner = mapping_of(LPR_BY_RECORD, probability) if status == "lawful_permanent_resident" else probability
        problem = inner(value[status])
        if problem:
            return f"{status}: {problem}"
    return None


def issuance_era(value: Any) -> str | None:
    if not isinstance(value, Mapping) or set(value) != {"classification", "probability"}:
        return "an issuance era has 'classification' (a us/ice/... policy id) and 'probability' by label"
    from securecomm.law.loader import UnknownPolicyError, load_policy

    try:
        policy = load_policy(value["classification"])
    except UnknownPolicyError as error:
        return str(error)
    labels = (*policy.questions[0].outcomes, "review")
    probabilities = value["probability"]
    if not isinstance(probabilities, Mapping) or set(probabilities) - set(labels):
        return f"probability must map labels of {policy.id}: {', '.join(labels)}"
    missing = set(labels) - set(probabilities) - {"review"}
    if missing:
        return f"probability misses labels: {', '.join(sorted(missing))}"
    for label, p in probabilities.items():
        problem = probability(p)
        if problem:
            return f"{label}: {problem}"
    return None


SPEC: dict[str, tuple[str, Shape]] = {
    "jail_admissions_per_capita": ("bookings", non_negative),
    "noncitizen_booking_ratio": ("bookings", non_negative),
    "naturalized_share_of_bookings": ("bookings", probability),
    "noncitizen_status_mix": ("bookings", distribution(NONCITIZEN_STATUSES)),
    "prior_conviction_probability": ("criminal_history", mapping_of(("noncitizen", "citizen"), probability)),
    "extra_prior_convictions_mean": ("criminal_history", non_negative),
    "conviction_level_mix": ("criminal_history", distribution(schema.LEVELS)),
    "conviction_category_mix": ("criminal_history", mapping_of(schema.LEVELS, distribution(schema.CATEGORIES))),
    "felony_class_mix": ("criminal_history", distribution(schema.FELONY_CLASSES)),
    "years_since_conviction_mean": ("criminal_history", non_negative),
    "incarceration_probability": ("criminal_history", mapping_of(schema.LEVELS, probability)),
    "sentence_years_mean": ("criminal_history", mapping_of(schema.LEVELS, non_negative)),
    "aggravated_felony_share": ("criminal_history", probability),
    "fbi_record_completeness": ("criminal_history", probability),
    "charges_per_booking_extra_mean": ("charges", non_negative),
    "booking_charge_level_mix": ("charges", distribution(schema.LEVELS)),
    "booking_charge_category_mix": ("charges", mapping_of(schema.LEVELS, distribution(schema.CATEGORIES))),
    "pending_charges_probability": ("case_facts", probability),
    "bond_posted_probability": ("case_facts", probability),
    "outstanding_warrant_probability": ("case_facts", probability),
    "federal_felony_warrant_probability": ("case_facts", probability),
    "gang_database_probability": ("case_facts", probability),
    "terrorist_watchlist_probability": ("case_facts", probability),
    "sex_or_arson_registrant_probability": ("case_facts", probability),
    "final_order_probability": ("case_facts", mapping_of(NONCITIZEN_STATUSES, probability)),
    "prior_removal_probability": ("case_facts", mapping_of(NONCITIZEN_STATUSES, probability)),
    "judicial_warrant_probability": ("case_facts", probability),
    "ice_reimbursement_probability": ("case_facts", probability),
    "public_safety_risk_determined_probability": ("case_facts", probability),
    "public_safety_risk_given_determined": ("case_facts", probability),
    "review_honor_probability": ("case_facts", probability),
    "fingerprint_submission_share": ("ident", probability),
    "ident_record_probability": ("ident", mapping_of(STATUSES, probability)),
    "ident_record_ratio_prior_conviction": ("ident", non_negative),
    "lesc_removable_probability": ("lesc", removability),
    "issuance_eras": ("issuance", issuance_era),
    "detainer_form_eras": ("issuance", mapping_of(("forms",), distribution(schema.DETAINER_FORMS))),
    "days_to_release_eligibility": ("release", mapping_of(schema.LEVELS, lognormal)),
    "ice_pickup_probability": ("hold", probability),
    "pickup_share_of_hold": ("hold", probability),
    "removal_probability": ("removal", mapping_of(STATUSES, probability)),
    "level_1_removal_probability": ("removal", probability),
    "removal_lag_days": ("removal", lognormal),
    "jail_daily_cost_usd": ("cost", non_negative),
    "other_route_detainers_per_noncitizen_booking": (
        "other_routes",
        mapping_of(("activated", "not_activated"), non_negative),
    ),
    "ice_warrant_hits_per_100k_residents": ("field", non_negative),
    "field_arrest_probability": ("field", probability),
}


# Parameters whose numbers are probabilities (kept in [0, 1] when drawn) and those whose
# mappings are shares of a whole (renormalised when drawn).
SHARE_PARAMETERS = frozenset(
    {
        "noncitizen_status_mix",
        "conviction_level_mix",
        "conviction_category_mix",
        "felony_class_mix",
        "booking_charge_level_mix",
        "booking_charge_category_mix",
        "detainer_form_eras",
    }
)
PROBABILITY_PARAMETERS = SHARE_PARAMETERS | frozenset(
    name
    for name, (_, shape) in SPEC.items()
    if name.endswith(("_probability", "_share", "_share_of_bookings", "_completeness", "_given_determined"))
    or name in ("pickup_share_of_hold", "issuance_eras")
)


@dataclass(frozen=True)
class Reference:
    title: str
    url: str


@dataclass(frozen=True)
class Parameter:
    """One parameter: its dated values and where they come from."""

    name: str
    file: str
    description: str
    unit: str
    dated_values: tuple[tuple[dt.date | None, Any], ...]
    uncertainty: Mapping[str, float]
    references: tuple[Reference, ...]
    calibrate: bool = False
    assumption: bool = False
    rationale: str = ""
    derivation: str = ""
    notes: str = ""

    def at(self, day: dt.date) -> Any:
        """The value in force on a day (the first value before its start)."""
        current = self.dated_values[0][1]
        for start, value in self.dated_values:
            if start is None or start <= day:
                current = value
        return current

    @property
    def value(self) -> Any:
        if len(self.dated_values) != 1:
            raise ValueError(f"parameter {self.name} has dated values: use .at(day)")
        return self.dated_values[0][1]

    def bounds(self) -> tuple[float, float] | None:
        """(low, high) multipliers or absolute bounds, for sampling and calibration."""
        if "relative" in self.uncertainty:
            return (1 - self.uncertainty["relative"], 1 + self.uncertainty["relative"])
        return (self.uncertainty["low"], self.uncertainty["high"])


@dataclass(frozen=True)
class Parameters:
    """The full parameter set; `replace_values` gives a variant (a draw, a calibrated fit)."""

    by_name: Mapping[str, Parameter] = field(repr=False)
    label: str = "default"

    def __getitem__(self, name: str) -> Parameter:
        return self.by_name[name]

    def value(self, name: str, day: dt.date | None = None) -> Any:
        parameter = self.by_name[name]
        return parameter.value if day is None else parameter.at(day)

    def by_day(self, name: str, days: np.ndarray, key: str | None = None) -> np.ndarray:
        """A parameter (dated or not) evaluated for each day of an array of dates: a scalar, or
        the entry `key` of a mapping."""
        dated = self.by_name[name].dated_values
        starts = np.array([np.datetime64(start or "1900-01-01", "D") for start, _ in dated])
        values = np.array([value if key is None else value[key] for _, value in dated], dtype=np.float64)
        position = np.searchsorted(starts, days.astype("datetime64[D]"), side="right") - 1
        return values[np.maximum(position, 0)]

    def replace_values(
        self, new_values: Mapping[str, tuple[tuple[dt.date | None, Any], ...]], label: str
    ) -> Parameters:
        updated = dict(self.by_name)
        for name, dated in new_values.items():
            updated[name] = replace(updated[name], dated_values=dated)
        return Parameters(updated, label)

    def sample(self, rng: np.random.Generator, label: str) -> Parameters:
        """One draw of every parameter from its uncertainty range (uniform; shares renormalised)."""
        drawn = {
            name: tuple((start, _draw(value, p, rng)) for start, value in p.dated_values)
            for name, p in self.by_name.items()
        }
        return self.replace_values(drawn, label)


def _draw(value: Any, parameter: Parameter, rng: np.random.Generator) -> Any:
    """Draw one value within the parameter's uncertainty, keeping probabilities and shares valid."""
    if isinstance(value, Mapping):
        if "classification" in value:
            return {**value, "probability": _draw(value["probability"], parameter, rng)}
        drawn = {key: _draw(inner, parameter, rng) for key, inner in value.items()}
        if parameter.name in SHARE_PARAMETERS and all(_number(v) for v in value.values()):
            total = sum(drawn.values())
            return {key: v / total for key, v in drawn.items()} if total > 0 else dict(value)
        return drawn
    if not _number(value):
        return value
    if "relative" in parameter.uncertainty:
        relative = parameter.uncertainty["relative"]
        sampled = value * rng.uniform(1 - relative, 1 + relative)
    else:
        sampled = rng.uniform(parameter.uncertainty["low"], parameter.uncertainty["high"])
    return min(max(sampled, 0.0), 1.0) if parameter.name in PROBABILITY_PARAMETERS else max(sampled, 0.0)


def _values_and_uncertainty(
    name: str, node: YMap, file: str, fail: Callable[[str | None, str], ParameterError]
) -> tuple[list[tuple[dt.date | None, Any]], dict[str, float]]:
    """The checked `value`/`values` and `uncertainty` of a parameter entry (source file or overlay)."""
    _, shape = SPEC[name]
    if "value" in node:
        dated: list[tuple[dt.date | None, Any]] = [(None, node["value"])]
        value_lines = [line_of(node, "value")]
    else:
        values = node["values"]
        if not isinstance(values, YSeq) or not values:
            raise fail("values", "'values' must be a non-empty list of {from, value}")
        dated, value_lines = [], []
        for index, item in enumerate(values):
            if not isinstance(item, Mapping) or set(item) != {"from", "value"} or not isinstance(item["from"], dt.date):
                raise ParameterError(
                    file, line_of(values, index), f"parameter '{name}': each value is {{from: DATE, value}}"
                )
            if dated and dated[-1][0] >= item["from"]:
                raise ParameterError(file, line_of(values, index), f"parameter '{name}': dates must increase")
            dated.append((item["from"], item["value"]))
            value_lines.append(line_of(values, index))
    for (_, value), line in zip(dated, value_lines, strict=True):
        problem = shape(value)
        if problem:
            raise ParameterError(file, line, f"parameter '{name}': {problem}")

    uncertainty = node["uncertainty"]
    scalar = all(_number(value) for _, value in dated)
    if not isinstance(uncertainty, Mapping) or not (
        (set(uncertainty) == {"relative"} and _number(uncertainty["relative"]) and 0 <= uncertainty["relative"] < 1)
        or (
            scalar
            and len(dated) == 1
            and set(uncertainty) == {"low", "high"}
            and all(_number(v) for v in uncertainty.values())
            and uncertainty["low"] <= dated[0][1] <= uncertainty["high"]
        )
    ):
        raise fail(
            "uncertainty",
            "uncertainty is {relative: r} with 0 ≤ r < 1, or for a single scalar {low, high} containing the value",
        )
    return dated, dict(uncertainty)


def _entry(name: str, node: YMap, file: str) -> Parameter:
    def fail(key: str | None, message: str) -> ParameterError:
        return ParameterError(file, line_of(node, key), f"parameter '{name}': {message}")

    if not isinstance(node, YMap):
        raise ParameterError(file, line_of(node), f"parameter '{name}' must be a mapping")
    for key in node:
        if key not in ENTRY_KEYS:
            raise fail(key, f"unknown key '{key}'; expected one of: {', '.join(ENTRY_KEYS)}")
    for key in ("description", "unit", "uncertainty"):
        if key not in node:
            raise fail(None, f"missing '{key}'")
    if ("value" in node) == ("values" in node):
        raise fail(None, "give exactly one of 'value' and 'values'")
    assumption = node.get("assumption", False) is True
    if assumption and not str(node.get("rationale", "")).strip():
        raise fail("assumption", "an assumption needs a 'rationale'")
    references = node.get("references") or []
    if not assumption and not references:
        raise fail(None, "needs 'references' (title, url) or 'assumption: true' with a 'rationale'")
    parsed_references = []
    for index, reference in enumerate(references):
        if not isinstance(reference, Mapping) or set(reference) != {"title", "url"}:
            raise ParameterError(file, line_of(references, index), f"parameter '{name}': a reference is {{title, url}}")
        parsed_references.append(Reference(str(reference["title"]), str(reference["url"])))

    dated, uncertainty = _values_and_uncertainty(name, node, file, fail)
    return Parameter(
        name=name,
        file=file,
        description=str(node["description"]),
        unit=str(node["unit"]),
        dated_values=tuple(dated),
        uncertainty=uncertainty,
        references=tuple(parsed_references),
        calibrate=node.get("calibrate", False) is True,
        assumption=assumption,
        rationale=str(node.get("rationale", "")),
        derivation=str(node.get("derivation", "")),
        notes=str(node.get("notes", "")),
    )


def parameters_root() -> Path:
    return Path(str(resources.files("securecomm.model") / "parameters"))


def load_parameter_files(root: Path) -> Parameters:
    """Read every parameter file under root; every parameter of SPEC must be there, once."""
    found: dict[str, Parameter] = {}
    for path in sorted(root.glob("*.yaml")):
        file = f"parameters/{path.name}"
        document = load_yaml(path, file)
        if not isinstance(document, YMap):
            raise ParameterError(file, 1, "a parameter file is a mapping of parameter names")
        for name, node in document.items():
            if name not in SPEC:
                raise ParameterError(file, line_of(document, name), f"unknown parameter '{name}'")
            expected_file = f"{SPEC[name][0]}.yaml"
            if path.name != expected_file:
                raise ParameterError(file, line_of(document, name), f"parameter '{name}' belongs in {expected_file}")
            found[name] = _entry(name, node, file)
    missing = sorted(set(SPEC) - set(found))
    if missing:
        raise ParameterError("parameters/", 0, f"missing parameters: {', '.join(missing)}")
    return Parameters(found)


OVERLAY_KEYS = ("value", "values", "uncertainty")


def calibrated_overlay_path() -> Path:
    """Where `securecomm calibrate` writes the fitted values that the default parameter set applies."""
    return parameters_root() / "calibrated" / "overlay.yaml"


def apply_overlay(parameters: Parameters, path: Path) -> Parameters:
    """The parameter set with the fitted values of a calibration overlay.

    An overlay is `{provenance: {...}, parameters: {name: {value | values, uncertainty}}}`. Only
    parameters marked `calibrate: true` in their source file may appear; their description,
    references and derivation stay those of the source, only values and uncertainty change.
    """
    file = f"parameters/calibrated/{path.name}"
    document = load_yaml(path, file)
    if not isinstance(document, YMap) or set(document) != {"provenance", "parameters"}:
        raise ParameterError(file, line_of(document), "an overlay is a mapping with 'provenance' and 'parameters'")
    entries = document["parameters"]
    if not isinstance(entries, YMap):
        raise ParameterError(file, line_of(document, "parameters"), "'parameters' maps parameter names to values")
    fitted: dict[str, Parameter] = {}
    for name, node in entries.items():
        source = parameters.by_name.get(name)
        if source is None or not source.calibrate:
            why = "unknown parameter" if source is None else "not marked 'calibrate: true' in its source file"
            raise ParameterError(file, line_of(entries, name), f"parameter '{name}': {why}")
        if not isinstance(node, YMap):
            raise ParameterError(file, line_of(entries, name), f"parameter '{name}' must be a mapping")
        for key in node:
            if key not in OVERLAY_KEYS:
                raise ParameterError(file, line_of(node, key), f"parameter '{name}': unknown overlay key '{key}'")

        def fail(key: str | None, message: str, name: str = name, node: YMap = node) -> ParameterError:
            return ParameterError(file, line_of(node, key), f"parameter '{name}': {message}")

        if "uncertainty" not in node:
            raise fail(None, "missing 'uncertainty'")
        if ("value" in node) == ("values" in node):
            raise fail(None, "give exactly one of 'value' and 'values'")
        dated, uncertainty = _values_and_uncertainty(name, node, file, fail)
        fitted[name] = replace(source, dated_values=tuple(dated), uncertainty=uncertainty)
    provenance = document["provenance"]
    date = provenance.get("date", "") if isinstance(provenance, Mapping) else ""
    return Parameters({**parameters.by_name, **fitted}, f"calibrated {date}".strip())


@cache
def load_parameters(calibrated: bool = True) -> Parameters:
    """The package's default parameter set: the source files, with the calibrated values of
    `parameters/calibrated/overlay.yaml` applied when it exists (``calibrated=False``: sources only)."""
    sources = load_parameter_files(parameters_root())
    overlay = calibrated_overlay_path()
    if calibrated and overlay.is_file():
        return apply_overlay(sources, overlay)
    return sources
