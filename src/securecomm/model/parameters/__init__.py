"""Pipeline parameters as data: every number the simulator uses, with its source.

The YAML files beside this module hold the values (docs/parameters.md). Each entry's `unit`
and `breakdown` give the shape of its value: a probability or a share lies in [0, 1], a share
broken down sums to 1, every other unit is a quantity ≥ 0, and a breakdown names the keys of
each level of mapping. This module reads the files strictly and checks each value against its
shape, and each breakdown against the one the pipeline reads (`SPEC`), so a typo, a
distribution that does not sum to one or a probability of 1.2 is caught at load time with the
file and line named.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from securecomm.core import schema
from securecomm.core.places import counties
from securecomm.core.schema import NONCITIZEN_STATUSES, STATUSES
from securecomm.core.yamlfiles import PolicyFileError, YMap, YSeq, line_of, load_yaml

ENTRY_KEYS = (
    "description",
    "unit",
    "breakdown",
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

# The units a parameter's `unit` may name. A probability or a share lies in [0, 1] and is kept
# there when drawn; a share broken down is a distribution over its last breakdown (it sums to 1 and
# is renormalised when drawn). Every other unit measures a quantity ≥ 0.
FRACTION_UNITS = ("probability", "share")
QUANTITY_UNITS = (
    "ratio",
    "count",
    "days",
    "months",
    "years",
    "per resident-year",
    "per 100,000 residents per year",
    "per noncitizen booking",
    "USD per person-day",
)
FIELD_OFFICES: tuple[str, ...] = tuple(sorted(counties().get_column("aor").unique()))
# The breakdowns a parameter's `breakdown` may list, outermost first: the keys of each mapping.
BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "status": STATUSES,
    "noncitizen_status": NONCITIZEN_STATUSES,
    "citizenship": ("noncitizen", "citizen"),
    "level": schema.LEVELS,
    "category": schema.CATEGORIES,
    "felony_class": schema.FELONY_CLASSES,
    "detainer_form": schema.DETAINER_FORMS,
    "activation": ("activated", "not_activated"),
    "lognormal": ("median", "sigma", "max"),  # truncated at `max`, in the unit of the median
    "fbi_record": ("with_known_conviction", "without_known_conviction"),
    "age_band": ("14_15", "16_17", "18_34", "35_64"),  # years A_B, A to B inclusive
    "field_office": FIELD_OFFICES,  # ICE ERO areas of responsibility (core/places: a county's `aor`)
    "immigration_hearing": ("without_hearing", "with_hearing"),  # removed after a hearing before a judge, or not
}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def probability(value: Any) -> str | None:
    return None if _number(value) and 0 <= value <= 1 else f"must be a probability in [0, 1], not {value!r}"


def non_negative(value: Any) -> str | None:
    return None if _number(value) and value >= 0 else f"must be a number ≥ 0, not {value!r}"


def first_problem(entries: Mapping[Any, Any], leaf: Shape) -> str | None:
    """The first entry whose value is not of the `leaf` shape, named by its key (None: every one is)."""
    for key, inner in entries.items():
        problem = leaf(inner)
        if problem:
            return f"{key}: {problem}"
    return None


def mapping_of(inner: Mapping[str, Shape]) -> Shape:
    """A mapping of exactly these keys, each value of its own shape."""

    def check(value: Any) -> str | None:
        if not isinstance(value, Mapping) or set(value) != set(inner):
            got = sorted(value) if isinstance(value, Mapping) else value
            return f"must map exactly {', '.join(inner)}; got {got}"
        for key, shape in inner.items():
            problem = shape(value[key])
            if problem:
                return f"{key}: {problem}"
        return None

    return check


def distribution(keys: tuple[str, ...]) -> Shape:
    def check(value: Any) -> str | None:
        problem = mapping_of(dict.fromkeys(keys, probability))(value)
        if problem:
            return problem
        total = sum(value.values())
        return None if abs(total - 1) <= 1e-6 else f"shares must sum to 1, not {total:.6f}"

    return check


def by_status_and_record(leaf: Shape) -> Shape:
    """By status; a lawful permanent resident's by whether the FBI record shows a conviction."""
    record = mapping_of(dict.fromkeys(BREAKDOWNS["fbi_record"], leaf))
    return mapping_of({status: record if status == "lawful_permanent_resident" else leaf for status in STATUSES})


def by_issuance_label(leaf: Shape) -> Shape:
    """`classification` (a us/ice/... policy id) and a value for each label it gives."""

    def check(value: Any) -> str | None:
        if not isinstance(value, Mapping) or set(value) != {"classification", "probability"}:
            return "an issuance era has 'classification' (a us/ice/... policy id) and 'probability' by label"
        from securecomm.law.loader import UnknownPolicyError, load_policy

        try:
            policy = load_policy(value["classification"])
        except UnknownPolicyError as error:
            return str(error)
        labels = (*policy.questions[0].outcomes, "review")
        by_label = value["probability"]
        if not isinstance(by_label, Mapping) or set(by_label) - set(labels):
            return f"probability must map labels of {policy.id}: {', '.join(labels)}"
        missing = set(labels) - set(by_label) - {"review"}
        if missing:
            return f"probability misses labels: {', '.join(sorted(missing))}"
        return first_problem(by_label, leaf)

    return check


def by_county(leaf: Shape) -> Shape:
    """Some counties (current 5-digit FIPS codes), each with a value; a county not listed has none."""
    current = set(counties().filter(pl.col("current")).get_column("fips"))

    def check(value: Any) -> str | None:
        if not isinstance(value, Mapping):
            return "must map county FIPS codes to values"
        unknown = sorted(str(code) for code in set(value) - current)
        if unknown:
            return f"not current county FIPS codes: {', '.join(unknown)}"
        return first_problem(value, leaf)

    return check


# Breakdowns whose keys are not one fixed list.
SPECIAL_BREAKDOWNS: dict[str, Callable[[Shape], Shape]] = {
    "status_and_fbi_record": by_status_and_record,
    "issuance_label": by_issuance_label,
    "county": by_county,
}


def shape_of(unit: str, breakdown: tuple[str, ...]) -> Shape:
    """The shape of a value in `unit`, broken down by `breakdown` (outermost first)."""
    shape: Shape = probability if unit in FRACTION_UNITS else non_negative
    for depth, name in enumerate(reversed(breakdown)):
        if name in SPECIAL_BREAKDOWNS:
            shape = SPECIAL_BREAKDOWNS[name](shape)
        elif unit == "share" and depth == 0:
            shape = distribution(BREAKDOWNS[name])
        else:
            shape = mapping_of(dict.fromkeys(BREAKDOWNS[name], shape))
    return shape


class Spec(NamedTuple):
    """What the pipeline expects of a parameter: the file it belongs in and the breakdown its code indexes."""

    file: str
    breakdown: tuple[str, ...]


# The parameters the pipeline reads. Units and shapes are the YAML's; this registry only checks that
# the files give what the code reads.
SPEC: dict[str, Spec] = {
    "jail_admissions_per_capita": Spec("bookings", ()),
    "noncitizen_booking_ratio": Spec("bookings", ()),
    "naturalized_share_of_bookings": Spec("bookings", ()),
    "noncitizen_status_mix": Spec("bookings", ("noncitizen_status",)),
    "prior_conviction_probability": Spec("criminal_history", ("citizenship",)),
    "extra_prior_convictions_mean": Spec("criminal_history", ()),
    "conviction_level_mix": Spec("criminal_history", ("level",)),
    "conviction_category_mix": Spec("criminal_history", ("level", "category")),
    "felony_class_mix": Spec("criminal_history", ("felony_class",)),
    "years_since_conviction_mean": Spec("criminal_history", ()),
    "incarceration_probability": Spec("criminal_history", ("level",)),
    "sentence_years_mean": Spec("criminal_history", ("level",)),
    "aggravated_felony_share": Spec("criminal_history", ()),
    "fbi_record_completeness": Spec("criminal_history", ()),
    "charges_per_booking_extra_mean": Spec("charges", ()),
    "booking_charge_level_mix": Spec("charges", ("level",)),
    "booking_charge_category_mix": Spec("charges", ("level", "category")),
    "pending_charges_probability": Spec("case_facts", ()),
    "bond_posted_probability": Spec("case_facts", ()),
    "outstanding_warrant_probability": Spec("case_facts", ()),
    "federal_felony_warrant_probability": Spec("case_facts", ()),
    "gang_database_probability": Spec("case_facts", ()),
    "terrorist_watchlist_probability": Spec("case_facts", ()),
    "sex_or_arson_registrant_probability": Spec("case_facts", ()),
    "final_order_probability": Spec("case_facts", ("noncitizen_status",)),
    "prior_removal_probability": Spec("case_facts", ("noncitizen_status",)),
    "judicial_warrant_probability": Spec("case_facts", ()),
    "ice_reimbursement_probability": Spec("case_facts", ()),
    "public_safety_risk_determined_probability": Spec("case_facts", ()),
    "public_safety_risk_given_determined": Spec("case_facts", ()),
    "review_honor_probability": Spec("case_facts", ()),
    "age_at_booking_share": Spec("case_facts", ("age_band",)),
    "fingerprint_submission_share": Spec("ident", ()),
    "ident_record_probability": Spec("ident", ("status",)),
    "ident_record_ratio_prior_conviction": Spec("ident", ()),
    "field_office_ident_factor": Spec("ident", ("field_office",)),
    "lesc_removable_probability": Spec("lesc", ("status_and_fbi_record",)),
    "issuance_eras": Spec("issuance", ("issuance_label",)),
    "detainer_form_eras": Spec("issuance", ("detainer_form",)),
    "field_office_detainer_factor": Spec("issuance", ("field_office",)),
    "county_detainer_factor": Spec("issuance", ("county",)),
    "activation_ramp_start_share": Spec("issuance", ()),
    "activation_ramp_months": Spec("issuance", ()),
    "days_to_release_eligibility": Spec("release", ("level", "lognormal")),
    "ice_pickup_probability": Spec("hold", ()),
    "pickup_share_of_hold": Spec("hold", ()),
    "removal_probability": Spec("removal", ("status",)),
    "level_1_removal_probability": Spec("removal", ()),
    "current_charge_conviction_before_removal": Spec("removal", ()),
    "removal_lag_days": Spec("removal", ("immigration_hearing", "lognormal")),
    "us_citizen_spouse_or_child_share": Spec("removal", ()),
    "immigration_hearing_share": Spec("removal", ()),
    "counsel_share_of_hearings": Spec("removal", ()),
    "relief_granted_share": Spec("removal", ()),
    "field_office_removal_factor_convicted": Spec("removal", ("field_office",)),
    "field_office_removal_factor_non_criminal": Spec("removal", ("field_office",)),
    "jail_daily_cost_usd": Spec("cost", ()),
    "other_route_detainers_per_noncitizen_booking": Spec("other_routes", ("activation",)),
    "ice_warrant_hits_per_100k_residents": Spec("field", ()),
    "field_arrest_probability": Spec("field", ()),
}


@dataclass(frozen=True)
class Bounds:
    """An uncertainty range: multipliers of the values (`relative`), or absolute values around a
    parameter's one scalar `value`."""

    low: float
    high: float
    relative: bool
    value: float | None = None

    def multipliers(self) -> tuple[float, float]:
        """The range as multipliers of the value."""
        if self.relative:
            return self.low, self.high
        if not self.value:
            raise ValueError("an absolute range around 0 cannot be turned into multipliers")
        return self.low / self.value, self.high / self.value


@dataclass(frozen=True)
class Reference:
    title: str
    url: str


class Period(NamedTuple):
    """A dated value and the span it is in force: from `start` (None: always) until `end` (exclusive; None: open)."""

    start: dt.date | None
    end: dt.date | None
    value: Any


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
    breakdown: tuple[str, ...] = ()
    calibrate: bool = False
    assumption: bool = False
    rationale: str = ""
    derivation: str = ""
    notes: str = ""

    def at(self, day: dt.date) -> Any:
        """The value in force on a day (the first value before its start)."""
        _, current = self.dated_values[0]
        for start, value in self.dated_values:
            if start is None or start <= day:
                current = value
        return current

    @property
    def value(self) -> Any:
        if len(self.dated_values) != 1:
            raise ValueError(f"parameter {self.name} has dated values: use .at(day)")
        _, value = self.dated_values[0]
        return value

    def periods(self) -> list[Period]:
        """Each dated value with the span it is in force."""
        starts = [start for start, _ in self.dated_values]
        ends = [*starts[1:], None]
        return [Period(start, end, value) for (start, value), end in zip(self.dated_values, ends, strict=True)]

    @property
    def fraction(self) -> bool:
        """A probability or a share: kept within [0, 1] when drawn or scaled."""
        return self.unit in FRACTION_UNITS

    @property
    def distribution(self) -> bool:
        """A share broken down: each innermost mapping sums to 1 (renormalised when drawn)."""
        return self.unit == "share" and bool(self.breakdown)

    def bounds(self) -> Bounds:
        """The uncertainty range, for sampling and calibration."""
        if "relative" in self.uncertainty:
            relative = self.uncertainty["relative"]
            return Bounds(1 - relative, 1 + relative, relative=True)
        return Bounds(self.uncertainty["low"], self.uncertainty["high"], relative=False, value=self.value)


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
        values = np.array([value if key is None else value[key] for _, value in dated], dtype=np.float64)
        return values[self.in_force(name, days)]

    def value_starts(self, name: str, days: np.ndarray) -> np.ndarray:
        """For each day of an array of dates, the first day of the parameter's value in force then
        (`by_day` on these days gives the same values)."""
        return self._starts(name)[self.in_force(name, days)]

    def _starts(self, name: str) -> np.ndarray:
        # A value without a start applies from the beginning (and before the first start, the first value).
        return np.array([np.datetime64(start or "1900-01-01", "D") for start, _ in self.by_name[name].dated_values])

    def in_force(self, name: str, days: np.ndarray) -> np.ndarray:
        """For each day of an array of dates, the position of the parameter's value in force then (in
        `dated_values`)."""
        position = np.searchsorted(self._starts(name), days.astype("datetime64[D]"), side="right") - 1
        return np.maximum(position, 0)

    def replace_values(
        self, new_values: Mapping[str, tuple[tuple[dt.date | None, Any], ...]], label: str
    ) -> Parameters:
        updated = dict(self.by_name)
        for name, dated in new_values.items():
            updated[name] = replace(updated[name], dated_values=dated)
        return Parameters(updated, label)

    def sample(self, rng: np.random.Generator, label: str) -> Parameters:
        """One draw of every parameter from its uncertainty range (uniform; shares renormalised).

        Each parameter draws from a stream of its own, seeded by `rng` and its name, so adding a
        parameter (or reordering the files) leaves the draws of every other parameter as they were.
        """
        seed = int(rng.integers(2**63))
        drawn = {}
        for name, p in self.by_name.items():
            own = np.random.default_rng([seed, *name.encode()])
            drawn[name] = tuple((start, _draw(value, p, own)) for start, value in p.dated_values)
        return self.replace_values(drawn, label)


def _draw(value: Any, parameter: Parameter, rng: np.random.Generator) -> Any:
    """Draw one value within the parameter's uncertainty, keeping probabilities and shares valid."""
    if isinstance(value, Mapping):
        if "classification" in value:
            return {**value, "probability": _draw(value["probability"], parameter, rng)}
        drawn = {key: _draw(inner, parameter, rng) for key, inner in value.items()}
        if parameter.distribution and all(_number(v) for v in value.values()):
            total = sum(drawn.values())
            return {key: v / total for key, v in drawn.items()} if total > 0 else dict(value)
        return drawn
    if not _number(value):
        return value
    bounds = parameter.bounds()
    sampled = value * rng.uniform(bounds.low, bounds.high) if bounds.relative else rng.uniform(bounds.low, bounds.high)
    return min(max(sampled, 0.0), 1.0) if parameter.fraction else max(sampled, 0.0)


def _values_and_uncertainty(
    name: str, node: YMap, file: str, fail: Callable[[str | None, str], ParameterError], shape: Shape
) -> tuple[list[tuple[dt.date | None, Any]], dict[str, float]]:
    """The checked `value`/`values` and `uncertainty` of a parameter entry (source file or overlay)."""
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
            starts = [start for start, _ in dated]
            if starts and item["from"] <= starts[-1]:
                raise ParameterError(file, line_of(values, index), f"parameter '{name}': dates must increase")
            dated.append((item["from"], item["value"]))
            value_lines.append(line_of(values, index))
    for (_, value), line in zip(dated, value_lines, strict=True):
        problem = shape(value)
        if problem:
            raise ParameterError(file, line, f"parameter '{name}': {problem}")

    uncertainty = node["uncertainty"]
    plain_values = [value for _, value in dated]
    scalar = all(_number(value) for value in plain_values)
    if not isinstance(uncertainty, Mapping) or not (
        (set(uncertainty) == {"relative"} and _number(uncertainty["relative"]) and 0 <= uncertainty["relative"] < 1)
        or (
            scalar
            and len(dated) == 1
            and set(uncertainty) == {"low", "high"}
            and all(_number(v) for v in uncertainty.values())
            and uncertainty["low"] <= plain_values[0] <= uncertainty["high"]
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

    unit = node["unit"]
    if unit not in FRACTION_UNITS + QUANTITY_UNITS:
        raise fail("unit", f"unknown unit {unit!r}; expected one of: {', '.join(FRACTION_UNITS + QUANTITY_UNITS)}")
    breakdown = tuple(node.get("breakdown") or ())
    read = SPEC[name].breakdown
    if breakdown != read:
        raise fail("breakdown", f"the simulation reads it broken down by {list(read)}, not {list(breakdown)}")
    dated, uncertainty = _values_and_uncertainty(name, node, file, fail, shape_of(unit, breakdown))
    return Parameter(
        name=name,
        file=file,
        description=str(node["description"]),
        unit=unit,
        dated_values=tuple(dated),
        uncertainty=uncertainty,
        references=tuple(parsed_references),
        breakdown=breakdown,
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
            expected_file = f"{SPEC[name].file}.yaml"
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
        dated, uncertainty = _values_and_uncertainty(name, node, file, fail, shape_of(source.unit, source.breakdown))
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
