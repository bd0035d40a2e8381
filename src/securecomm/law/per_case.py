"""The reference evaluator: one case at a time, in plain Python — the test oracle.

Deliberately simple and independent of the vectorised compiler: conditions are walked
recursively with three-valued logic (True, False, None = unknown), and the hold is found
by walking the calendar day by day. Property-based tests check the two agree.
"""

from __future__ import annotations

from typing import Any

from securecomm.law import holdclock
from securecomm.law.model import (
    AgeUnder,
    AllOf,
    AnyOf,
    ChargeMatch,
    Condition,
    ConvictionCount,
    Fact,
    Not,
    OffenseFilter,
    Policy,
    Question,
    ValueIn,
)
from securecomm.law.outcomes import field_explanation, question_outcomes

Truth = bool | None


def _offense_matches(offense: dict[str, Any], offenses: OffenseFilter) -> bool:
    if offenses.categories is not None and offense["category"] not in offenses.categories:
        return False
    if offense["category"] in offenses.excluded_categories:
        return False
    if offenses.levels is not None and offense["level"] not in offenses.levels:
        return False
    return offenses.felony_classes is None or offense["felony_class"] in offenses.felony_classes


def _recent(conviction: dict[str, Any], condition: ConvictionCount) -> bool:
    by_conviction = condition.within_years_of_conviction
    by_release = condition.within_years_of_release
    if by_conviction is None and by_release is None:
        return True
    since_release = conviction["years_since_release"]
    return (by_conviction is not None and conviction["years_ago"] <= by_conviction) or (
        by_release is not None and since_release is not None and since_release <= by_release
    )


def truth(condition: Condition, case: dict[str, Any]) -> Truth:
    """Kleene three-valued truth of a condition for one normalized record."""
    match condition:
        case Fact(name):
            return case[name]
        case ValueIn(field, values):
            return case[field] in values
        case AgeUnder(years):
            return case["age"] is not None and case["age"] < years
        case ChargeMatch(offenses):
            return any(_offense_matches(charge, offenses) for charge in case["current_charges"])
        case ConvictionCount(offenses, at_least):
            matching = [c for c in case["convictions"] if _offense_matches(c, offenses) and _recent(c, condition)]
            return len(matching) >= at_least
        case Not(item):
            value = truth(item, case)
            return None if value is None else not value
        case AllOf(items):
            values = [truth(item, case) for item in items]
            if False in values:
                return False
            return None if None in values else True
        case AnyOf(items):
            values = [truth(item, case) for item in items]
            if True in values:
                return True
            return None if None in values else False
    raise TypeError(f"unknown condition {condition!r}")


def outcome_index(question: Question, case: dict[str, Any]) -> int:
    values = [truth(rule.condition, case) for rule in question.rules]
    if True in values:
        return values.index(True)
    if None in values:
        return len(values) + values.index(None)
    return 2 * len(values)


def evaluate_case(policy: Policy, case: dict[str, Any]) -> dict[str, Any]:
    """Decide one normalized record; the same fields as the vectorised evaluator's rows."""
    result: dict[str, Any] = {"case_id": case["case_id"], "policy_id": policy.id}
    parts = []
    for question in policy.questions:
        outcome = question_outcomes(policy, question)[outcome_index(question, case)]
        parts.append(outcome)
        if policy.kind == "field":
            result[question.name] = outcome.decision
            result[f"{question.name}_rule"] = outcome.rule
            result[f"{question.name}_citation"] = outcome.citation
        else:
            result.update(decision=outcome.decision, rule=outcome.rule, citation=outcome.citation)
    if policy.kind == "field":
        result["explanation"] = field_explanation(policy, parts)
        return result
    hold_until = None
    if policy.hold is not None and result["decision"] == "honor" and case["release_eligible_at"] is not None:
        hold_until = holdclock.hold_until(case["release_eligible_at"], policy.hold.hours, policy.hold.counting)
    result["hold_until"] = hold_until
    result["explanation"] = parts[0].explanation
    return result
