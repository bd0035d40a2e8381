"""Layered policies: the policies that bind one jail at once, and how their decisions combine.

A jail answers to every policy in force over it — ICE's request, the state's statute, the county's
ordinance, its own department's policy. Each of them limits when the jail *may* hold, so the jail
must satisfy all of them, and a department's policy can only narrow the statute it works under
(`Policy.layer`). The rule, for every evaluator and the simulation alike:

- **decline beats review beats honor**: the strictest decision of the layers governs; the layer
  that gave it is the deciding layer (its rule, citation and explanation are the output's);
- **the earliest hold deadline wins**: when every layer honors, the hold ends at the earliest
  deadline of the layers (each already no later than the detainer form asks), and the layer that
  set it decides; a tie goes to the broader layer (listed first).

`combine_case` is the plain one-case reference, `decide_layers` the vectorised evaluator; tests hold
them equal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import polars as pl

from securecomm.core.cases import CaseTables
from securecomm.law.compiler import compile_policy
from securecomm.law.model import REVIEW, Policy
from securecomm.law.outcomes import HOLD_COLUMNS

# Strictest first: a layer's decision governs when it comes earlier here than the others'.
STRICTNESS = ("decline", REVIEW, "honor")
LAYERS_COLUMN = "layers"


def layered_columns() -> list[str]:
    """The columns of a layered decision: the deciding layer's decision output, then every layer's answer."""
    return [
        "case_id",
        "policy_id",
        "decision",
        "rule",
        "citation",
        "hold_until",
        "explanation",
        *HOLD_COLUMNS,
        LAYERS_COLUMN,
    ]


def check_layerable(policies: Sequence[Policy]) -> None:
    """Only detainer policies combine by these rules (a classification or a field policy answers other questions)."""
    if not policies:
        raise ValueError("no policy to decide under")
    for policy in policies:
        if policy.kind != "detainer":
            raise ValueError(f"{policy.id} is a {policy.kind} policy: only detainer policies are layered")


def layer_label(policy: Policy) -> str:
    return f"{policy.id} ({policy.layer.level})"


def _answer(policy: Policy, row: dict[str, Any]) -> str:
    return f"{layer_label(policy)}: {row['decision']} by {row['rule']}"


def _order_key(index: int, row: dict[str, Any]) -> tuple[int, dt.datetime, int]:
    deadline = row["hold_until_utc"] or row["hold_until"]
    if isinstance(deadline, dt.datetime) and deadline.tzinfo is not None:
        deadline = deadline.replace(tzinfo=None)
    return (STRICTNESS.index(row["decision"]), deadline or dt.datetime.max, index)


def combine_case(policies: Sequence[Policy], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One case's decisions under each layer (broadest first) → the decision that governs.

    The plain reference for `decide_layers`: the layer with the strictest decision decides; among
    layers that all honor, the one with the earliest hold deadline; a tie goes to the broader layer.
    """
    index = min(range(len(rows)), key=lambda position: _order_key(position, rows[position]))
    combined = {key: rows[index][key] for key in layered_columns() if key != LAYERS_COLUMN}
    combined[LAYERS_COLUMN] = "; ".join(_answer(policy, row) for policy, row in zip(policies, rows, strict=True))
    return combined


def decide_layers(policies: Sequence[Policy], tables: CaseTables) -> pl.DataFrame:
    """Decide every case under layers that all bind the jail (broadest first): one row per case.

    The deciding layer's decision output (`policy_id` names it) and `layers`, every layer's answer.
    """
    check_layerable(policies)
    frames = []
    for position, policy in enumerate(policies):
        frame = compile_policy(policy).evaluate(tables).with_columns(pl.col(pl.Enum).cast(pl.String))
        frames.append(
            frame.with_row_index("__row").with_columns(
                __layer=pl.lit(position),
                __strictness=pl.col("decision").replace_strict(list(STRICTNESS), list(range(len(STRICTNESS)))),
                __deadline=pl.coalesce(
                    pl.col("hold_until_utc").dt.replace_time_zone(None), pl.col("hold_until")
                ).fill_null(dt.datetime.max),
                __answer=pl.format("{}: {} by {}", pl.lit(layer_label(policy)), pl.col("decision"), pl.col("rule")),
            )
        )
    stacked = pl.concat(frames)
    answers = (
        stacked.sort("__row", "__layer")
        .group_by("__row", maintain_order=True)
        .agg(pl.col("__answer").str.join("; ").alias(LAYERS_COLUMN))
    )
    deciding = (
        stacked.sort("__row", "__strictness", "__deadline", "__layer").group_by("__row", maintain_order=True).first()
    )
    return deciding.join(answers, on="__row").sort("__row").select(layered_columns())
