import datetime as dt
import threading

import pytest

from securecomm.core.yamlfiles import PolicyFileError
from securecomm.law import loader
from securecomm.law.loader import (
    UnknownPolicyError,
    load_library,
    load_policy,
    policies_in_force,
    policy_ids,
)
from securecomm.law.model import ConvictionCount


def test_a_valid_file_parses(example_policy_text, parse_text):
    policy = parse_text(example_policy_text)
    (rule,) = policy.questions[0].rules
    assert rule.citation == "Example Code § 1(b)"
    assert isinstance(rule.when, ConvictionCount)
    assert rule.when.offenses.categories == {"homicide", "robbery"}
    assert rule.when.within_years_of_conviction == 10


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("    when:\n", "    whne:\n", 23, "unknown key 'whne' in rule"),
        ("categories: [homicide, robbery]", "categories: [homicide, murder]", 13, "unknown category 'murder'"),
        ("title: Example ordinance\n", "title: Example ordinance\ntitle: Again\n", 2, "duplicate key 'title'"),
        ("counting: business_hours", "counting: weekdays", 15, "unknown counting 'weekdays'"),
        ("set: violent,", "set: serious,", 24, "unknown set 'serious'"),
        ("    reference: law\n    section: (b)", "    reference: statute\n    section: (b)", 19, "unknown reference"),
        ("    decision: honor\n", "    decision: decline\n", 22, "the same as the default"),
        ("conviction: {set: violent", "convicted: {set: violent", 24, "unknown condition 'convicted'"),
        ("kind: detainer", "kind: jail", 2, "unknown kind 'jail'"),
        ("effective: 2013-02-01", "effective: null", 6, "only a proposed policy may have no effective date"),
        ("effective: 2013-02-01", "effective: soon", 6, "'effective' must be a date"),
        ("levels: [felony]", "levels: [felony, crime]", 14, "unknown level 'crime'"),
        ("within_years_of_conviction: 10", "within_years_of_conviction: -1", 24, "non-negative number"),
        ("title: Example ordinance", "title: [Example", 2, "not valid YAML"),
    ],
)
def test_malformed_files_name_file_and_line(example_policy_text, parse_text, old, new, line, message):
    assert old in example_policy_text
    with pytest.raises(PolicyFileError) as caught:
        parse_text(example_policy_text.replace(old, new, 1))
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"policy.yaml, line {line}:")


def test_a_policy_that_can_honor_must_state_its_hold(example_policy_text, parse_text):
    text = example_policy_text.replace(
        "hold: {hours: 48, counting: business_hours, reference: law, section: (c)}\n", ""
    )
    with pytest.raises(PolicyFileError, match="must state its maximum 'hold'"):
        parse_text(text)


def test_unknown_policy_lists_the_library():
    with pytest.raises(
        UnknownPolicyError, match=r"unknown policy 'ct/trust-act-2099'; the library has: .*ct/trust-act-2013"
    ):
        load_policy("ct/trust-act-2099")
    with pytest.raises(UnknownPolicyError):
        load_policy("../cli")


REQUIRED_LIBRARY = [
    "us/ice-request",
    "ct/new-haven/general-order-06-2",
    "ct/new-haven/aldermen-resolution-2011",
    "ct/case-by-case-2012",
    "ct/trust-act-2013",
    "ct/doc-2014",
    "ct/trust-act-2019",
    "ca/santa-clara/policy-3-54-2011",
    "ca/trust-act-2013",
    "il/cook-county/ordinance-2011",
    "ny/nyc/local-law-62-2011",
    "ny/nyc/local-law-58-2014",
    "dc/detainer-compliance-2012",
    "nm/bernalillo/mdc-2014",
    "nm/dona-ana/2014",
    "or/judicial-warrant-only-2014",
    "us/ice/offense-levels-2010",
    "us/ice/detainer-guidance-2012",
    "us/ice/pep-priorities-2014",
]


def test_the_library_holds_every_required_policy_and_each_loads():
    assert set(REQUIRED_LIBRARY) <= set(policy_ids())
    for policy in load_library():
        assert policy.references, policy.id
        assert policy.status in ("enacted", "proposed", "reconstructed")
        if policy.status != "proposed":
            assert policy.effective is not None, policy.id


def test_connecticut_timeline_follows_effective_dates():
    def in_force(day):
        return [policy.id for policy in policies_in_force("CT", day)]

    assert in_force(dt.date(2011, 6, 1)) == []
    assert in_force(dt.date(2012, 6, 1)) == ["ct/case-by-case-2012"]
    assert in_force(dt.date(2013, 12, 31)) == ["ct/case-by-case-2012"]
    assert in_force(dt.date(2014, 1, 1)) == ["ct/trust-act-2013"]
    # The Department of Correction's policy narrows the statute: both are in force, the stricter governs.
    assert in_force(dt.date(2014, 12, 15)) == ["ct/trust-act-2013", "ct/doc-2014"]
    assert in_force(dt.date(2019, 10, 1)) == ["ct/doc-2014", "ct/trust-act-2019"]
    # A proposal is never in force; a field order is not a jail policy.
    assert "ct/new-haven/aldermen-resolution-2011" not in in_force(dt.date(2030, 1, 1))


def test_threads_that_ask_for_the_library_at_once_parse_it_once() -> None:
    # A run in parts of states asks for the library from each part's thread as the parts start.
    loader.load_policy.cache_clear()
    loader._checked_library.cache_clear()
    start = threading.Barrier(2)
    libraries: list[list] = []

    def ask() -> None:
        start.wait()
        libraries.append(loader.load_library())

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loader._checked_library.cache_info().misses == 1
    assert libraries[0] == libraries[1]
