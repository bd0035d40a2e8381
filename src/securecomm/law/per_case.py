"""The reference evaluator: one case at a time, in plain Python — the test oracle.

Deliberately simple and independent of the vectorised compiler: conditions are walked
recursively with three-valued logic (True, False, None = unknown), and the hold is found
by walking the calendar day by day. Property-based tests check the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from securecomm.core.places import time_zones
from securecomm.law import holdclock
from securecomm.law.layers import check_layerable, combine_case
from securecomm.law.loader import load_forms
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
from securecomm.law.outcomes import HOLD_COLUMNS, field_explanation, question_outcomes

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
    if condition.currently_in_custody and not conviction.get("currently_in_custody", False):
        return False
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
    result["explanation"] = parts[0].explanation
    result.update(_hold(policy, case, result["decision"]))
    return result


def _hold(policy: Policy, case: dict[str, Any], decision: str) -> dict[str, Any]:
    """The hold, counted on the jurisdiction's clock, no longer than the policy or the form allows."""
    hold = dict.fromkeys(HOLD_COLUMNS)
    hold["hold_until"] = None
    if policy.kind != "detainer":
        return hold
    start = case["release_eligible_at"]
    zones = time_zones(policy.jurisdiction.places)
    own_zone = next(iter(zones)) if len(zones) == 1 else None
    zone = case.get("time_zone") or own_zone
    if case.get("time_zone"):
        hold["time_zone_source"] = "record"
    elif own_zone is not None:
        hold["time_zone_source"] = "jurisdiction"
    elif start is not None and start.tzinfo is not None:
        hold["time_zone_source"] = "offset"
    hold["time_zone"] = zone
    if policy.hold is None or decision != "honor" or start is None:
        return hold
    form = load_forms().get(case["detainer_form"]) if case["detainer_form"] else None
    if form is not None and not form.detention:
        hold["hold_citation"] = form.citation
        return hold
    limits = [(policy.hold.hours, policy.hold.counting, policy.hold.citation)]
    if form is not None:
        limits.append((form.hours, form.counting, form.citation))
    candidates = []
    for hours, counting, citation in limits:
        if zone is not None:
            end = holdclock.hold_until_in_zone(holdclock.localize(start, zone), hours, counting)
            candidates.append((end, end.replace(tzinfo=None), end.astimezone(holdclock.UTC), citation))
        else:
            local = holdclock.hold_until(start.replace(tzinfo=None), hours, counting)
            offset = start.utcoffset()
            utc = None if offset is None else (local - offset).replace(tzinfo=holdclock.UTC)
            candidates.append((local, local, utc, citation))
    best = candidates[0]
    for candidate in candidates[1:]:  # the policy's limit wins a tie
        if candidate[0] < best[0]:
            best = candidate
    hold["hold_until"], hold["hold_until_utc"], hold["hold_citation"] = best[1], best[2], best[3]
    return hold


def evaluate_layers(policies: Sequence[Policy], case: dict[str, Any]) -> dict[str, Any]:
    """Decide one normalized record under layers that all bind the jail (broadest first): the
    stricter outcome governs (`law.layers.combine_case`). The desk's path to a layered decision."""
    check_layerable(policies)
    return combine_case(policies, [evaluate_case(policy, case) for policy in policies])


def hold_if(policy: Policy, case: dict[str, Any], decision: str) -> dict[str, Any]:
    """The hold one policy sets on a normalized record for a decision made apart from its rules (a
    reviewer's, or the decision in force when release eligibility is recorded later): the desk's."""
    return _hold(policy, case, decision)
