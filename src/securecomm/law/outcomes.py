"""The possible outcomes of a question, numbered, so evaluators only compute an index.

For a question with k rules: index i < k means rule i holds; k + i means rule i is
unknown and nothing holds (review); 2k means the default. Every evaluator maps an index
to the same decision, rule id, citation and explanation.
"""

from __future__ import annotations

from dataclasses import dataclass

from securecomm.law.explain import default_explanation, review_explanation, rule_explanation
from securecomm.law.model import DEFAULT_RULE, REVIEW, Policy, Question


@dataclass(frozen=True)
class Outcome:
    decision: str
    rule: str
    citation: str
    explanation: str


def question_outcomes(policy: Policy, question: Question) -> list[Outcome]:
    holds = [
        Outcome(rule.decision, rule.id, rule.citation, rule_explanation(policy, question, rule))
        for rule in question.rules
    ]
    unknown = [
        Outcome(REVIEW, rule.id, rule.citation, review_explanation(policy, question, rule)) for rule in question.rules
    ]
    default = question.default
    fallback = Outcome(default.decision, DEFAULT_RULE, default.citation, default_explanation(policy, question, default))
    return [*holds, *unknown, fallback]


def output_columns(policy: Policy) -> list[str]:
    """The decision output's columns for a policy (docs/design.md §2; field policies per question)."""
    if policy.kind == "field":
        per_question = [
            name
            for question in policy.questions
            for name in (question.name, f"{question.name}_rule", f"{question.name}_citation")
        ]
        return ["case_id", "policy_id", *per_question, "explanation"]
    return ["case_id", "policy_id", "decision", "rule", "citation", "hold_until", "explanation", *HOLD_COLUMNS]


# Added after the columns of docs/design.md §2: the hold's deadline as an instant, the zone the case's
# times are read in, where that zone came from (`record`: the case's time_zone; `jurisdiction`:
# the policy's places; `offset`: only a UTC offset on release_eligible_at; null: a wall clock with
# no zone), and the limit that set the deadline (the policy's hold or the detainer form's).
HOLD_COLUMNS = ("hold_until_utc", "time_zone", "time_zone_source", "hold_citation")


def field_explanation(policy: Policy, parts: list[Outcome]) -> str:
    return " ".join(
        f"{question.name.replace('_', ' ').capitalize()}: {part.explanation}"
        for question, part in zip(policy.questions, parts, strict=True)
    )


def decision_vocabulary(question: Question) -> list[str]:
    return [*question.outcomes, REVIEW]
