import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from securecomm.core.schema import STATUSES
from securecomm.model.parameters import load_parameters
from securecomm.model.simulation import simulate
from securecomm.model.stages.iafis import ident_match_share_with_conviction, prior_conviction_chance

SOURCES = load_parameters(calibrated=False)


def _with(parameters, **values):
    return parameters.replace_values({name: ((None, value),) for name, value in values.items()}, "test")


@pytest.fixture(scope="module")
def sources():
    return SOURCES


@given(
    match=st.floats(0.01, 1.0),
    share=st.floats(0.01, 0.99),
    ratio=st.floats(1.0, 20.0),
)
def test_the_mean_match_probability_is_kept(match, share, ratio):
    parameters = _with(
        SOURCES,
        prior_conviction_probability={"noncitizen": share, "citizen": 0.5},
        ident_record_ratio_prior_conviction=ratio,
    )
    matched_share = ident_match_share_with_conviction(match, parameters)
    # Bayes: P(conviction | match) * P(match) = P(match | conviction) * P(conviction)
    with_conviction = matched_share * match / share
    without_conviction = (1 - matched_share) * match / (1 - share)
    assert 0 <= without_conviction <= with_conviction + 1e-12 <= 1 + 1e-9
    assert share * with_conviction + (1 - share) * without_conviction == pytest.approx(match)
    assert matched_share >= share - 1e-12  # a ratio ≥ 1 never makes the matched less criminal
    if with_conviction < 1 - 1e-9:
        assert with_conviction == pytest.approx(ratio * without_conviction)


def test_a_ratio_of_one_is_independence(sources):
    neutral = _with(sources, ident_record_ratio_prior_conviction=1.0)
    share = sources.value("prior_conviction_probability")["noncitizen"]
    assert ident_match_share_with_conviction(0.4, neutral) == pytest.approx(share)


def test_only_unauthorized_ident_matches_are_enriched(sources):
    statuses = np.arange(len(STATUSES)).repeat(2)
    matched = np.tile([True, False], len(STATUSES))
    chance = prior_conviction_chance(statuses, matched, sources)
    base = sources.value("prior_conviction_probability")
    assert chance[0] > base["noncitizen"] == chance[1]  # unauthorized: matched vs found by another route
    assert chance[2] == chance[3] == base["noncitizen"]  # lawful permanent residents
    assert chance[-1] == base["citizen"]


def test_simulated_ident_matches_carry_the_enriched_records(sources):
    result = simulate("AZ", "2011-01-01", "2011-12-31", seed=4, parameters=sources)
    unauthorized = result.records.filter(pl.col("status") == "unauthorized")
    matched = unauthorized.filter(pl.col("channel") == "secure_communities")
    other = unauthorized.filter(pl.col("channel") == "other_routes")
    expected = ident_match_share_with_conviction(sources.value("ident_record_probability")["unauthorized"], sources)
    assert (matched.get_column("true_convictions") > 0).mean() == pytest.approx(expected, abs=0.01)
    share = sources.value("prior_conviction_probability")["noncitizen"]
    assert (other.get_column("true_convictions") > 0).mean() == pytest.approx(share, abs=0.02)
