"""Every policy's YAML cases (law/policies/<id>.cases.yaml), as pytest tests."""

from collections import Counter

import pytest

from securecomm.law.loader import policy_ids
from securecomm.law.policy_cases import run_all

RESULTS = run_all()


@pytest.mark.parametrize("result", RESULTS, ids=lambda result: f"{result.policy_id}:{result.line}")
def test_policy_case(result):
    assert result.passed, f"{result.file}:{result.line} {result.name}\n" + "\n".join(result.problems)


def test_every_policy_has_at_least_five_cases():
    counts = Counter(result.policy_id for result in RESULTS if result.name != "(file)")
    thin = {policy_id: counts[policy_id] for policy_id in policy_ids() if counts[policy_id] < 5}
    assert not thin, f"policies with fewer than 5 YAML cases: {thin}"


def test_a_wrong_expectation_fails(tmp_path):
    """The runner itself must be able to fail."""
    wrong = tmp_path / "policies" / "ct"
    wrong.mkdir(parents=True)
    (wrong / "trust-act-2013.cases.yaml").write_text(
        "policy: ct/trust-act-2013\ncases:\n  - name: wrong on purpose\n    input: {final_order: true}\n"
        "    expect: {decision: decline}\n"
    )
    results = [r for r in run_all(tmp_path / "policies") if r.policy_id == "ct/trust-act-2013"]
    assert len(results) == 1 and not results[0].passed
    assert "decision: expected 'decline', got 'honor'" in results[0].problems[0]
