"""Running the YAML test cases written from each policy's text.

`<policy id>.cases.yaml`, beside the policy file in the library, holds cases written from the
policy's text and the expected outcome. Each case is decided by both evaluators (the vectorised
compiler and the per-case evaluator); a case passes when both give every expected field. A case
marked `layered: true` is decided under the policy on top of the policies it narrows that are in
force on the case's release day (`loader.layers_of`: `ct/doc-2014` over `ct/trust-act-2013`), by
the layers' rule (`law.layers`), and may expect `layers`, what each layer decided.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from securecomm.core.cases import InputError, normalize_records, tables_from_records
from securecomm.core.yamlfiles import PolicyFileError, YMap, YSeq, line_of, load_yaml
from securecomm.law.compiler import compile_policy
from securecomm.law.decide import record_kind
from securecomm.law.layers import decide_layers, layered_columns
from securecomm.law.loader import CASES_SUFFIX, layers_of, library_root, load_policy, policy_ids
from securecomm.law.model import Policy
from securecomm.law.outcomes import output_columns
from securecomm.law.per_case import evaluate_case, evaluate_layers


@dataclass
class CaseResult:
    policy_id: str
    file: str
    line: int
    name: str
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def _plain(value: Any) -> Any:
    """Make outputs and expectations comparable (Enum text, datetimes to the second)."""
    if isinstance(value, dt.datetime):
        return value.replace(microsecond=0)
    return value


@dataclass
class _Case:
    line: int
    name: str
    record: dict[str, Any]
    expect: dict[str, Any]
    layered: bool


def _check_file(document: Any, file: str, policy_id: str) -> list[_Case]:
    if not isinstance(document, YMap) or set(document) - {"policy", "cases"} or "cases" not in document:
        raise PolicyFileError(file, line_of(document), "a test file has 'policy' and 'cases' (and nothing else)")
    if document.get("policy", policy_id) != policy_id:
        raise PolicyFileError(
            file, line_of(document, "policy"), f"'policy' says {document['policy']!r} but the path says {policy_id!r}"
        )
    cases = document["cases"]
    if not isinstance(cases, YSeq) or not cases:
        raise PolicyFileError(file, line_of(document, "cases"), "'cases' must be a non-empty list")
    checked = []
    for index, case in enumerate(cases):
        line = line_of(cases, index)
        if not isinstance(case, YMap) or not {"name", "input", "expect"} <= set(case) <= CASE_KEYS:
            raise PolicyFileError(file, line, "a test case has 'name', 'input' and 'expect' (and may say 'layered')")
        if not isinstance(case["input"], dict) or not isinstance(case["expect"], dict) or not case["expect"]:
            raise PolicyFileError(file, line, "'input' and 'expect' must be mappings; 'expect' not empty")
        layered = case.get("layered", False)
        if not isinstance(layered, bool):
            raise PolicyFileError(file, line, "'layered' is true or false")
        record = dict(case["input"])
        record.setdefault("case_id", f"case-{index + 1}")
        checked.append(_Case(line, str(case["name"]), record, dict(case["expect"]), layered))
    return checked


CASE_KEYS = {"name", "input", "expect", "layered"}


def _policy_id(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix().removesuffix(CASES_SUFFIX)


def run_cases_file(path: Path, root: Path) -> list[CaseResult]:
    """Run one file's cases through both evaluators."""
    policy_id = _policy_id(path, root)
    file = str(path)
    try:
        policy = load_policy(policy_id)
        cases = _check_file(load_yaml(path, file), file, policy_id)
    except (PolicyFileError, KeyError) as error:
        return [CaseResult(policy_id, file, getattr(error, "line", 0), "(file)", [str(error)])]
    kind = record_kind(policy)
    results = []
    normalized_cases = []
    for case in cases:
        result = CaseResult(policy_id, file, case.line, case.name)
        results.append(result)
        try:
            (normalized,) = normalize_records([(f"{file} line {case.line}", case.record)], kind)
        except InputError as error:
            result.problems.append(f"input: {error}")
            continue
        columns = layered_columns() if case.layered else output_columns(policy)
        unknown = set(case.expect) - set(columns)
        if unknown:
            result.problems.append(f"expect names unknown output fields: {', '.join(sorted(unknown))}")
            continue
        if not case.layered:
            normalized_cases.append((result, normalized, case.expect))
            continue
        if normalized["release_eligible_at"] is None:
            result.problems.append("a layered case needs release_eligible_at: the layers in force on that day decide")
            continue
        _compare_layered(layers_of(policy, normalized["release_eligible_at"].date()), result, normalized, case.expect)
    if normalized_cases:
        _compare(policy, normalized_cases, kind)
    return results


def _compare_layered(layers: list[Policy], result: CaseResult, case: dict[str, Any], expect: dict[str, Any]) -> None:
    (fast,) = decide_layers(layers, tables_from_records([case], "case")).to_dicts()
    _check(layered_columns(), fast, evaluate_layers(layers, case), expect, result)


def _compare(policy: Policy, cases: list[tuple[CaseResult, dict[str, Any], dict[str, Any]]], kind: Any) -> None:
    vectorised = compile_policy(policy).evaluate(tables_from_records([case for _, case, _ in cases], kind)).to_dicts()
    for (result, case, expect), fast in zip(cases, vectorised, strict=True):
        _check(output_columns(policy), fast, evaluate_case(policy, case), expect, result)


def _check(
    columns: list[str], fast: dict[str, Any], oracle: dict[str, Any], expect: dict[str, Any], result: CaseResult
) -> None:
    """Both evaluators give the same output, and it has every expected field."""
    for key in columns:
        if _plain(fast[key]) != _plain(oracle[key]):
            result.problems.append(f"evaluators disagree on {key}: vectorised {fast[key]!r}, reference {oracle[key]!r}")
    for key, wanted in expect.items():
        if _plain(fast[key]) != _plain(wanted):
            result.problems.append(f"{key}: expected {wanted!r}, got {fast[key]!r}")


def run_all(root: Path | None = None) -> list[CaseResult]:
    """Every policy's cases file (under `root`, by default the installed library).

    A policy without a cases file, or a cases file without a policy, fails.
    """
    root = root or library_root()
    results: list[CaseResult] = []
    files = {_policy_id(path, root): path for path in root.rglob(f"*{CASES_SUFFIX}")}
    for policy_id in policy_ids():
        if policy_id not in files:
            expected_file = str(root / f"{policy_id}{CASES_SUFFIX}")
            results.append(
                CaseResult(
                    policy_id, expected_file, 0, "(file)", [f"policy {policy_id} has no cases file {expected_file}"]
                )
            )
    for policy_id in sorted(files):
        results.extend(run_cases_file(files[policy_id], root))
    return results
