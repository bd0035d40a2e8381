"""The desk decides with `service.decide`: the reference evaluator's answer (`law.per_case.evaluate_layers`)
with each question's outcomes made once per policy. Property: the two agree on every detainer policy of
the library, layered as the desk layers it, for generated cases (tests/law's generator)."""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from law.test_agreement import detainer_case, numbered  # tests/law: its generator of cases

from securecomm.core.cases import normalize_records
from securecomm.desk.service import decide
from securecomm.law.loader import layers_of, load_library
from securecomm.law.per_case import evaluate_layers

DETAINER_POLICIES = [policy for policy in load_library() if policy.kind == "detainer"]


@pytest.mark.parametrize("policy", DETAINER_POLICIES, ids=lambda policy: policy.id)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_desks_decision_is_the_reference_evaluators(policy, data):
    day = policy.effective or dt.date(2014, 3, 5)
    layers = layers_of(policy, day)
    records = normalize_records(numbered(data.draw(st.lists(detainer_case(), min_size=1, max_size=8))))
    for record in records:
        expected = evaluate_layers(layers, record)
        assert decide(layers, record) == expected
        assert decide(layers, record) == expected  # and again, from the outcomes made the first time
