"""What the law tests share: example policy files, and reading one as the loader reads a file."""

import textwrap
from collections.abc import Callable

import pytest

from securecomm.core.yamlfiles import load_yaml
from securecomm.law.loader import parse_policy
from securecomm.law.model import Policy

# An example detainer policy's opening: Example County's ordinance and its one reference, `law`.
EXAMPLE_OPENING = textwrap.dedent(
    """\
    title: Example ordinance
    kind: detainer
    jurisdiction: {name: Example County, places: ["09001"]}
    status: enacted
    enacted: 2013-01-01
    effective: 2013-02-01
    references:
      - {id: law, cite: Example Code § 1, title: Example Code, url: https://example.org}
    """
)


@pytest.fixture
def policy_text() -> Callable[[str], str]:
    """An example policy's YAML: the example opening, then `rest` (its sets, hold, rules, layer, clauses…)."""

    def text(rest: str) -> str:
        return EXAMPLE_OPENING + textwrap.dedent(rest)

    return text


@pytest.fixture
def example_policy_text(policy_text) -> str:
    """A valid example detainer policy: a set, a hold, one rule, every clause status but reconstructed."""
    return policy_text(
        """\
        sets:
          violent:
            description: a violent felony
            approximates: Example Code § 2
            categories: [homicide, robbery]
            levels: [felony]
        hold: {hours: 48, counting: business_hours, reference: law, section: (c)}
        default: {decision: decline, reference: law, section: (a), text: release}
        rules:
          - id: violent-conviction
            reference: law
            section: (b)
            text: has been convicted of a violent felony
            decision: honor
            when:
              conviction: {set: violent, within_years_of_conviction: 10}
        layer: {level: county}
        clauses:
          - {reference: law, section: (a), quote: shall release, status: modelled, note: the default}
          - {reference: law, section: (b), paraphrase: a violent felony, status: approximated, note: the set violent}
          - {reference: law, section: (c), quote: 48 hours, status: modelled, note: the hold}
          - {reference: law, section: (d), paraphrase: a report to the board, status: not_modelled, note: procedure}
        """
    )


@pytest.fixture
def parse_text(tmp_path) -> Callable[[str], Policy]:
    """Policy YAML text read as the loader reads a file: written to policy.yaml, parsed as policy 'example'."""

    def parse(text: str) -> Policy:
        path = tmp_path / "policy.yaml"
        path.write_text(text)
        return parse_policy(load_yaml(path, "policy.yaml"), "example", "policy.yaml")

    return parse
