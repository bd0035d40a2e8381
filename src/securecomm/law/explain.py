"""Plain English for policies, rules and decisions — one wording for every evaluator.

A jail supervisor should be able to read why a case was decided as it was: the rule, its
citation, what the rule asks, and which facts of the case it read.
"""

from __future__ import annotations

from dataclasses import dataclass

from securecomm.core.schema import FACT_PHRASES, VALUE_PHRASES
from securecomm.law.model import (
    REVIEW,
    AgeUnder,
    AllOf,
    AnyOf,
    ChargeMatch,
    Clause,
    Condition,
    ConvictionCount,
    Default,
    Fact,
    Not,
    OffenseFilter,
    Policy,
    Question,
    Rule,
    ValueIn,
)

DECISION_PHRASES = {
    "honor": "Honor the detainer",
    "decline": "Decline the detainer (release when otherwise eligible)",
    "allowed": "Allowed",
    "not_allowed": "Not allowed",
    REVIEW: "Review by a supervisor",
}


def _listing(items: list[str], conjunction: str) -> str:
    if len(items) <= 2:
        return f" {conjunction} ".join(items)
    return ", ".join(items[:-1]) + f", {conjunction} " + items[-1]


def describe_offenses(offenses: OffenseFilter, policy: Policy) -> str:
    if offenses.set_name is not None:
        named = next(item for item in policy.sets if item.name == offenses.set_name)
        base = named.description
        own = named.offenses
        extra = []
        if offenses.levels != own.levels and offenses.levels is not None:
            extra.append(f"at level {_listing(sorted(offenses.levels), 'or')}")
        if offenses.felony_classes != own.felony_classes and offenses.felony_classes is not None:
            extra.append(f"of class {_listing(sorted(offenses.felony_classes), 'or')}")
        if offenses.categories != own.categories and offenses.categories is not None:
            extra.append(f"for {_listing(sorted(offenses.categories), 'or')}")
        if offenses.excluded_categories != own.excluded_categories:
            extra.append(f"other than {_listing(sorted(offenses.excluded_categories), 'or')}")
        return base + (f" ({', '.join(extra)})" if extra else "")
    parts = []
    if offenses.felony_classes is not None:
        parts.append(f"class {_listing(sorted(offenses.felony_classes), 'or')}")
    parts.append(_listing(sorted(offenses.levels), "or") if offenses.levels is not None else "offense")
    text = " ".join(parts)
    if offenses.categories is not None:
        text += f" for {_listing(sorted(c.replace('_', ' ') for c in offenses.categories), 'or')}"
    if offenses.excluded_categories:
        text += f" other than {_listing(sorted(c.replace('_', ' ') for c in offenses.excluded_categories), 'or')}"
    return text


def describe_condition(condition: Condition, policy: Policy) -> str:
    match condition:
        case Fact(name):
            return FACT_PHRASES[name]
        case ValueIn(field, values):
            return f"{VALUE_PHRASES[field]} {_listing(sorted(values), 'or')}"
        case AgeUnder(years):
            return f"is known to be under {years}"
        case ChargeMatch(offenses):
            return f"is currently charged ({describe_offenses(offenses, policy)})"
        case ConvictionCount(offenses, at_least, within_conviction, within_release, in_custody):
            count = "a prior conviction" if at_least == 1 else f"at least {at_least} prior convictions"
            if in_custody:
                count = "a conviction for which the person is currently in custody"
            windows = []
            if within_conviction is not None:
                windows.append(f"within {within_conviction:g} years of conviction")
            if within_release is not None:
                windows.append(f"released within {within_release:g} years")
            recency = f", {_listing(windows, 'or')}" if windows else ""
            return f"has {count} ({describe_offenses(offenses, policy)}){recency}"
        case Not(item):
            return f"it is not so that {describe_condition(item, policy)}"
        case AllOf(items):
            return "all of: " + "; ".join(f"({i + 1}) {describe_condition(x, policy)}" for i, x in enumerate(items))
        case AnyOf(items):
            return "any of: " + "; ".join(f"({i + 1}) {describe_condition(x, policy)}" for i, x in enumerate(items))
    raise TypeError(f"unknown condition {condition!r}")


def facts_read(condition: Condition) -> list[str]:
    """The record's fields a condition reads, in first-use order."""
    match condition:
        case Fact(name):
            return [name]
        case ValueIn(field, _):
            return [field]
        case AgeUnder():
            return ["age"]
        case ChargeMatch():
            return ["current_charges"]
        case ConvictionCount(_, _, within_conviction, within_release, in_custody):
            details = ["category", "level"]
            if in_custody:
                details.append("currently_in_custody")
            if within_conviction is not None:
                details.append("years_ago")
            if within_release is not None:
                details.append("years_since_release")
            return [f"convictions ({', '.join(details)})"]
        case Not(item):
            return facts_read(item)
        case AllOf(items) | AnyOf(items):
            seen: list[str] = []
            for item in items:
                seen.extend(fact for fact in facts_read(item) if fact not in seen)
            return seen
    raise TypeError(f"unknown condition {condition!r}")


def _hold_sentence(policy: Policy) -> str:
    if policy.hold is None:
        return ""
    return (
        f" Hold at most {policy.hold.describe()} from release eligibility ({policy.hold.citation}),"
        " and no longer than the detainer form asks (none for an I-247N, notice only);"
        " the deadline is in hold_until, on the clock of time_zone, and the limit that set it in hold_citation."
    )


def rule_explanation(policy: Policy, question: Question, rule: Rule) -> str:
    """Why a rule that holds decided the case."""
    decision = DECISION_PHRASES.get(rule.decision, f"Classified {rule.decision}")
    text = f"{decision} under {rule.citation}: {rule.text}. Facts read: {', '.join(facts_read(rule.condition))}."
    if rule.decision == "honor":
        text += _hold_sentence(policy)
    return text


def review_explanation(policy: Policy, question: Question, rule: Rule) -> str:
    """Why an undetermined fact sends the case to review."""
    unknown = [fact for fact in facts_read(rule.condition) if fact == "public_safety_risk"]
    missing = f" ({', '.join(unknown)} is not determined)" if unknown else ""
    return (
        f"{DECISION_PHRASES[REVIEW]}: no rule decides the case, and whether the person {rule.text}{missing} is unknown"
        f" — {rule.citation}. A reviewer must determine it; if so, the outcome is {rule.decision}."
    )


def default_explanation(policy: Policy, question: Question, default: Default) -> str:
    """Why no rule applied."""
    decision = DECISION_PHRASES.get(default.decision, f"Classified {default.decision}")
    text = f"{decision} under {default.citation}: {default.text}."
    if question.rules:
        unmet = "; ".join(f"{rule.text} ({rule.citation})" for rule in question.rules)
        text += f" None of these holds: {unmet}."
        read: list[str] = []
        for rule in question.rules:
            read.extend(fact for fact in facts_read(rule.condition) if fact not in read)
        text += f" Facts read: {', '.join(read)}."
    if default.decision == "honor":
        text += _hold_sentence(policy)
    return text


STATUS_PHRASES = {
    "modelled": "modelled",
    "approximated": "approximated",
    "not_modelled": "not modelled",
    "reconstructed": "reconstructed (text not found)",
}


@dataclass(frozen=True)
class ClauseRow:
    """One clause of a policy's text for a reader: where it is, what it says, what the code does with it."""

    citation: str
    text: str
    quoted: bool  # the source's words; else a paraphrase, the text could not be quoted
    status: str  # modelled | approximated | not_modelled | reconstructed
    status_phrase: str
    note: str
    applied_by: tuple[str, ...]  # the policy's parts that cite it: rule ids, "default", "hold", "notice"


def _applied_by(policy: Policy, clause: Clause) -> tuple[str, ...]:
    parts = [(rule.id, rule) for question in policy.questions for rule in question.rules]
    parts += [("default", question.default) for question in policy.questions]
    parts += [(name, part) for name, part in (("hold", policy.hold), ("notice", policy.notice)) if part is not None]
    return tuple(
        dict.fromkeys(
            name for name, part in parts if part.reference.id == clause.reference.id and part.section == clause.section
        )
    )


def clause_table(policy: Policy) -> list[ClauseRow]:
    """The clauses of a policy's text, in the file's order, each with its status and the parts that apply it.

    A plain table for any display (the CLI's `policies show`, the HTML report, the detainer desk).
    """
    return [
        ClauseRow(
            clause.citation,
            clause.text,
            clause.quoted,
            clause.status,
            STATUS_PHRASES[clause.status],
            clause.note,
            _applied_by(policy, clause),
        )
        for clause in policy.clauses
    ]
