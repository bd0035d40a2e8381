"""Deciding cases under a policy of the library — the public entry point of the engine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from securecomm.core.cases import CaseTables, RecordKind, to_tables
from securecomm.law.compiler import compile_policy
from securecomm.law.layers import decide_layers
from securecomm.law.loader import load_policy
from securecomm.law.model import Policy

Cases = str | Path | pl.DataFrame | CaseTables | list[dict[str, Any]]


def record_kind(policy: Policy) -> RecordKind:
    """Field policies read field-encounter records; the others read detainer cases."""
    return "field" if policy.kind == "field" else "case"


def decide(policy: str | Policy, cases: Cases) -> pl.DataFrame:
    """Decide cases under a policy.

    `policy` is a library id (`ct/trust-act-2013`) or a loaded Policy; `cases` a file
    (.jsonl, .parquet, .csv), a Polars DataFrame or a list of records of the case schema.
    Returns one row per case: case_id, policy_id, decision, rule, citation, hold_until,
    explanation (field policies: a decision, rule and citation per question).
    """
    loaded = load_policy(policy) if isinstance(policy, str) else policy
    return compile_policy(loaded).evaluate(to_tables(cases, record_kind(loaded)))


def decide_layered(policies: Sequence[str | Policy], cases: Cases) -> pl.DataFrame:
    """Decide cases under policies that all bind the jail at once, broadest layer first
    (`ct/trust-act-2013` then `ct/doc-2014`, the department's policy on top of the statute).

    The stricter outcome governs (decline beats review beats honor; the earliest hold deadline
    wins: `law.layers`). One row per case: the deciding layer's output (`policy_id` names it) and
    `layers`, which says what each layer decided.
    """
    loaded = [load_policy(policy) if isinstance(policy, str) else policy for policy in policies]
    return decide_layers(loaded, to_tables(cases, "case"))
