"""The policy model: what a policy file means once it has been read and checked.

A policy answers one or more questions (a jail's: honor the detainer?; ICE's: which
level?; a police officer's: may I ask, may I arrest?). Each question has a default
outcome and rules; a rule's condition is a small tree of facts about the case.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["detainer", "classification", "field"]
Status = Literal["enacted", "proposed", "reconstructed"]
Counting = Literal["business_hours", "clock_hours"]
ClauseStatus = Literal["modelled", "approximated", "not_modelled", "reconstructed"]
LayerLevel = Literal["federal", "state", "county", "city", "department"]

REVIEW = "review"
DEFAULT_RULE = "default"


@dataclass(frozen=True)
class Reference:
    id: str
    cite: str
    title: str
    url: str

    def citation(self, section: str) -> str:
        if not section:
            return self.cite
        joiner = "" if section.startswith("(") else ", "
        return f"{self.cite}{joiner}{section}"


class CitesSection:
    """A part of a policy that implements one section of a reference."""

    reference: Reference
    section: str

    @property
    def citation(self) -> str:
        return self.reference.citation(self.section)


@dataclass(frozen=True)
class OffenseFilter:
    """Which charges or convictions count: every constraint given must hold."""

    categories: frozenset[str] | None = None
    excluded_categories: frozenset[str] = frozenset()
    levels: frozenset[str] | None = None
    felony_classes: frozenset[str] | None = None
    set_name: str | None = None


@dataclass(frozen=True)
class CategorySet:
    """A policy's own named set of offenses ("serious or violent felony")."""

    name: str
    description: str
    approximates: str
    offenses: OffenseFilter


# --- conditions -------------------------------------------------------------------------


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


@dataclass(frozen=True)
class Fact:
    """A boolean fact of the record; only `public_safety_risk` can be unknown."""

    name: str


@dataclass(frozen=True)
class ValueIn:
    field: str
    values: frozenset[str]


@dataclass(frozen=True)
class AgeUnder:
    """Known to be younger than `years`; an unknown age is not known to be under it."""

    years: int


@dataclass(frozen=True)
class ChargeMatch:
    """At least one charge of the current booking matches."""

    offenses: OffenseFilter


@dataclass(frozen=True)
class ConvictionCount:
    """At least `at_least` prior convictions match and are recent enough.

    With both windows given a conviction is recent if either holds ("within 10 years
    of conviction, or released within 5 years, whichever is later").
    """

    offenses: OffenseFilter
    at_least: int = 1
    within_years_of_conviction: float | None = None
    within_years_of_release: float | None = None
    currently_in_custody: bool = False  # only convictions the person is now in custody for


Condition = AllOf | AnyOf | Not | Fact | ValueIn | AgeUnder | ChargeMatch | ConvictionCount


# --- rules, questions, policies ----------------------------------------------------------


@dataclass(frozen=True)
class Rule(CitesSection):
    id: str
    decision: str
    reference: Reference
    section: str
    text: str
    when: Condition
    unless: Condition | None = None

    @property
    def condition(self) -> Condition:
        """`when` and not `unless`: an exception written as the law writes it."""
        if self.unless is None:
            return self.when
        return AllOf((self.when, Not(self.unless)))


@dataclass(frozen=True)
class Default(CitesSection):
    decision: str
    reference: Reference
    section: str
    text: str


@dataclass(frozen=True)
class Question:
    """One decision a policy makes: the first rule that holds decides, else review, else default."""

    name: str
    outcomes: tuple[str, ...]
    default: Default
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Hold(CitesSection):
    hours: int
    counting: Counting
    reference: Reference
    section: str

    def describe(self) -> str:
        if self.counting == "business_hours":
            return f"{self.hours} hours excluding Saturdays, Sundays and federal holidays"
        return f"{self.hours} hours"


@dataclass(frozen=True)
class FormLimit:
    """How long a detainer form asks the jail to hold: a form is ICE's request, a policy the jail's law.

    The hold ends at the earlier of the policy's deadline and the form's; a form that asks for no
    detention (`detention` false: Form I-247N, notice only) leaves no hold under any policy.
    """

    form: str
    title: str
    status: Status
    detention: bool
    hours: int | None
    counting: Counting | None
    reference: Reference
    section: str
    text: str
    note: str = ""

    @property
    def citation(self) -> str:
        return self.reference.citation(self.section)

    def describe(self) -> str:
        if not self.detention:
            return f"Form {self.form} asks for notice only and no detention"
        if self.counting == "business_hours":
            return f"Form {self.form} asks for at most {self.hours} hours excluding Saturdays, Sundays and holidays"
        return f"Form {self.form} asks for at most {self.hours} hours"


@dataclass(frozen=True)
class Notice(CitesSection):
    """A duty to tell ICE of the jail's decision (Connecticut's TRUST Act: "immediately notify ICE").

    It is procedure, not a criterion: it never changes a decision, and the detainer desk
    records a notification for each decision in `decisions`.
    """

    decisions: frozenset[str]
    reference: Reference
    section: str
    text: str


@dataclass(frozen=True)
class Clause(CitesSection):
    """One clause of a policy's text and how much of it the code covers.

    `text` is the source's words when `quoted`, else a paraphrase (the source's text could not be
    quoted: a report, a summary); `status` says whether the rules implement it (`modelled`), only
    approximate it (`approximated`), leave it out (`not_modelled`), or rest on reports because its
    text was not found (`reconstructed`); `note` says how, or what is missing.
    """

    reference: Reference
    section: str
    text: str
    quoted: bool
    status: ClauseStatus
    note: str


@dataclass(frozen=True)
class Layer:
    """Where a policy sits among the policies that bind one jail: a department's policy can only
    narrow the statute or ordinance it works under, and applies on top of it, never instead of it.

    `narrows` names the jurisdiction whose policies it narrows (`Connecticut` for the state
    Department of Correction's policy); null for a policy that narrows none.
    """

    level: LayerLevel
    narrows: str | None = None


@dataclass(frozen=True)
class Jurisdiction:
    name: str
    places: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    id: str
    title: str
    kind: Kind
    jurisdiction: Jurisdiction
    status: Status
    enacted: dt.date | None
    effective: dt.date | None
    references: tuple[Reference, ...]
    sets: tuple[CategorySet, ...]
    questions: tuple[Question, ...]
    layer: Layer
    clauses: tuple[Clause, ...]
    hold: Hold | None = None
    notice: Notice | None = None
    dates_note: str = ""
    notes: str = ""  # what concerns the policy as a whole; each clause carries its own note
    source_file: str = field(default="", compare=False)

    def in_force_on(self, day: dt.date) -> bool:
        """Enacted or reconstructed policies are in force from their effective date."""
        return self.status != "proposed" and self.effective is not None and self.effective <= day
