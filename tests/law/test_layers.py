"""Layered policies: the vectorised combination agrees with the per-case one; the timeline keeps a
department's policy on top of the statute it narrows; the loader checks clauses and layers."""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securecomm.core.cases import normalize_records, tables_from_records
from securecomm.core.places import resolve_place
from securecomm.core.yamlfiles import PolicyFileError
from securecomm.law.explain import clause_table
from securecomm.law.layers import decide_layers
from securecomm.law.loader import layers_of, load_policy
from securecomm.law.per_case import evaluate_layers
from securecomm.law.timeline import PolicyTimeline
from tests.law.test_agreement import detainer_case, numbered

LAYER_SETS = [
    ("ct/trust-act-2013", "ct/doc-2014"),
    ("ct/trust-act-2019", "ct/doc-2014"),
    ("us/ice-request", "ca/trust-act-2013", "ca/santa-clara/policy-3-54-2011"),
    ("ct/trust-act-2013", "us/ice-request"),
]


@pytest.mark.parametrize("policy_ids", LAYER_SETS, ids="+".join)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_layered_decisions_agree_between_evaluators(policy_ids, data):
    policies = [load_policy(policy_id) for policy_id in policy_ids]
    records = normalize_records(numbered(data.draw(st.lists(detainer_case(), min_size=1, max_size=20))), "case")
    vectorised = decide_layers(policies, tables_from_records(records, "case")).to_dicts()
    for record, fast in zip(records, vectorised, strict=True):
        assert fast == evaluate_layers(policies, record)


def test_the_stricter_layer_governs_and_names_itself():
    policies = [load_policy("ct/trust-act-2013"), load_policy("ct/doc-2014")]
    case = {"case_id": "a", "release_eligible_at": "2014-12-16T10:00:00", "judicial_warrant": True}
    (row,) = decide_layers(policies, tables_from_records(normalize_records([("a", case)], "case"), "case")).to_dicts()
    # The undetermined public-safety risk sends the statute to review; the Department honors; review governs.
    assert (row["decision"], row["policy_id"]) == ("review", "ct/trust-act-2013")
    assert "ct/doc-2014 (department): honor by judicial-warrant" in row["layers"]


def test_a_department_policy_sits_on_the_statute_in_force():
    doc = load_policy("ct/doc-2014")
    assert [policy.id for policy in layers_of(doc, dt.date(2015, 1, 5))] == ["ct/trust-act-2013", "ct/doc-2014"]
    assert [policy.id for policy in layers_of(doc, dt.date(2020, 1, 6))] == ["ct/trust-act-2019", "ct/doc-2014"]


def test_the_historical_timeline_keeps_both_layers_and_a_reform_brings_the_statute_along():
    hartford = "09003"
    timeline = PolicyTimeline.historical()
    assert {"ct/trust-act-2013", "ct/doc-2014"} <= set(timeline.in_force(hartford, dt.date(2015, 6, 1)))
    connecticut = frozenset(resolve_place("CT"))
    reform = timeline.replace(connecticut, "ct/doc-2014", dt.date(2012, 1, 1))
    assert set(reform.in_force(hartford, dt.date(2012, 6, 1))) >= {"ct/doc-2014", "ct/case-by-case-2012"}
    assert "ct/trust-act-2013" in reform.in_force(hartford, dt.date(2015, 6, 1))


def test_nyc_2011_law_then_the_2013_amendments_on_their_dates():
    timeline = PolicyTimeline.historical()
    manhattan = "36061"
    assert not {"ny/nyc/local-law-62-2011"} & set(timeline.in_force(manhattan, dt.date(2012, 3, 20)))
    assert "ny/nyc/local-law-62-2011" in timeline.in_force(manhattan, dt.date(2012, 3, 21))
    assert "ny/nyc/local-law-21-22-2013" in timeline.in_force(manhattan, dt.date(2013, 7, 16))
    assert "ny/nyc/local-law-62-2011" not in timeline.in_force(manhattan, dt.date(2013, 7, 16))


def test_clause_table_lists_every_clause_with_what_applies_it():
    rows = clause_table(load_policy("ct/trust-act-2013"))
    by_citation = {row.citation: row for row in rows}
    assert by_citation["Conn. Gen. Stat. § 54-192h(b)(7)"].applied_by == ("unacceptable-public-safety-risk",)
    assert set(by_citation["Conn. Gen. Stat. § 54-192h(c)"].applied_by) == {"hold", "notice"}
    assert {row.status for row in rows} <= {"modelled", "approximated", "not_modelled", "reconstructed"}


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("section: (b), paraphrase", "section: (e), paraphrase", "is not one of its listed clauses"),
        (
            "section: (d), paraphrase: a report to the board, status: not_modelled",
            "section: (d), paraphrase: a report, status: bogus",
            "unknown clause status 'bogus'",
        ),
        ("quote: shall release,", "quote: shall release, paraphrase: release,", "either 'quote'"),
        (
            "status: approximated, note: the set violent",
            "status: not_modelled, note: the set violent",
            "its clause says not_modelled",
        ),
        ("layer: {level: county}", "layer: {level: borough}", "unknown layer level 'borough'"),
        ("layer: {level: county}\n", "", "missing the key 'layer'"),
    ],
)
def test_clauses_and_layers_are_read_strictly(example_policy_text, parse_text, old, new, message):
    assert old in example_policy_text
    with pytest.raises(PolicyFileError, match=message):
        parse_text(example_policy_text.replace(old, new))
