"""A policy's duty to notify ICE of its decision (`notice`): read strictly, never a criterion."""

import textwrap

import pytest

import securecomm
from securecomm.core.yamlfiles import PolicyFileError, load_yaml
from securecomm.law.loader import load_policy, parse_policy

POLICY = textwrap.dedent(
    """\
    title: Example ordinance
    kind: detainer
    jurisdiction: {name: Example County, places: ["09001"]}
    status: enacted
    enacted: 2013-01-01
    effective: 2013-02-01
    references:
      - {id: law, cite: Example Code § 1, title: Example Code, url: https://example.org}
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
)


def parse(text, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return parse_policy(load_yaml(path, "policy.yaml"), "example", "policy.yaml")


def test_notice_is_read_with_its_citation(tmp_path):
    notice = parse(POLICY, tmp_path).notice
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
def test_a_bad_notice_is_an_error_naming_the_line(tmp_path, old, new, message):
    with pytest.raises(PolicyFileError, match=message):
        parse(POLICY.replace(old, new), tmp_path)


def test_only_a_detainer_policy_has_a_notice(tmp_path):
    classification = POLICY.replace("kind: detainer", "kind: classification\nlabels: [decline, honor]")
    classification = "\n".join(line for line in classification.splitlines() if not line.startswith("hold:"))
    with pytest.raises(PolicyFileError, match="only a detainer policy has a notice"):
        parse(classification + "\n", tmp_path)


def test_connecticut_trust_act_requires_notice_and_it_changes_no_decision():
    policy = load_policy("ct/trust-act-2013")
    assert policy.notice is not None and policy.notice.decisions == {"honor", "decline"}
    decided = securecomm.decide(policy, [{"case_id": "a", "final_order": True}])
    assert decided.get_column("decision").to_list() == ["honor"]
