"""Deciding cases under a policy of the library — the public entry point of the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from securecomm.core.cases import CaseTables, RecordKind, to_tables
from securecomm.law.compiler import compile_policy
from securecomm.law.loader import load_policy
from securecomm.law.model import Policy


def record_kind(policy: Policy) -> RecordKind:
    """Field policies read field-encounter records; the others read detainer cases."""
    return "field" if policy.kind == "field" else "case"


def decide(policy: str | Policy, cases: str | Path | pl.DataFrame | CaseTables | list[dict[str, Any]]) -> pl.DataFrame:
    """Decide cases under a policy.

    `policy` is a library id (`ct/trust-act-2013`) or a loaded Policy; `cases` a file
    (.jsonl, .parquet, .csv), a Polars DataFrame or a list of records of the case schema.
    Returns one row per case: case_id, policy_id, decision, rule, citation, hold_until,
    explanation (field policies: a decision, rule and citation per question).
    """
    loaded = load_policy(policy) if isinstance(policy, str) else policy
    return compile_policy(loaded).evaluate(to_tables(cases, record_kind(loaded)))
