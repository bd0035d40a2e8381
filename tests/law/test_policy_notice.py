"""A policy's duty to notify ICE of its decision (`notice`): read strictly, never a criterion."""

import pytest

import securecomm
from securecomm.core.yamlfiles import PolicyFileError
from securecomm.law.loader import load_policy

# The example policy with a notice to ICE (section (d)) and one rule.
NOTICE_POLICY = """\
hold: {hours: 48, counting: business_hours, reference: law, section: (c)}
notice: {decisions: [honor, decline], reference: law, section: (d), text: notify ICE of the decision}
default: {decision: decline, reference: law, section: (a), text: release}
rules:
  - {id: warrant, reference: law, section: (b), text: a judge's warrant, decision: honor, when: {fact: judicial_warrant}}
layer: {level: county}
clauses:
  - {reference: law, section: (a), quote: release, status: modelled, note: the default}
  - {reference: law, section: (b), quote: a judge's warrant, status: modelled, note: judicial_warrant}
  - {reference: law, section: (c), quote: 48 hours, status: modelled, note: the hold}
  - {reference: law, section: (d), quote: notify ICE, status: modelled, note: the notice}
"""


@pytest.fixture
def notice_policy(policy_text) -> str:
    return policy_text(NOTICE_POLICY)


def test_notice_is_read_with_its_citation(notice_policy, parse_text):
    notice = parse_text(notice_policy).notice
    assert notice.decisions == {"honor", "decline"}
    assert notice.citation == "Example Code § 1(d)"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("decisions: [honor, decline]", "decisions: [honor, review]", "unknown decision 'review'"),
        ("reference: law, section: (d)", "reference: statute, section: (d)", "unknown reference"),
        ("text: notify ICE of the decision}", "text: notify, when: soon}", "unknown key 'when' in notice"),
    ],
)
def test_a_bad_notice_is_an_error_naming_the_line(notice_policy, parse_text, old, new, message):
    with pytest.raises(PolicyFileError, match=message):
        parse_text(notice_policy.replace(old, new))


def test_only_a_detainer_policy_has_a_notice(notice_policy, parse_text):
    classification = notice_policy.replace("kind: detainer", "kind: classification\nlabels: [decline, honor]")
    classification = "\n".join(line for line in classification.splitlines() if not line.startswith("hold:"))
    with pytest.raises(PolicyFileError, match="only a detainer policy has a notice"):
        parse_text(classification + "\n")


def test_connecticut_trust_act_requires_notice_and_it_changes_no_decision():
    policy = load_policy("ct/trust-act-2013")
    assert policy.notice is not None and policy.notice.decisions == {"honor", "decline"}
    decided = securecomm.decide(policy, [{"case_id": "a", "final_order": True}])
    assert decided.get_column("decision").to_list() == ["honor"]
