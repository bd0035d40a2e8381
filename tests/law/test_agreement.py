"""Property: the vectorised engine and the reference evaluator agree, for every policy."""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securecomm.core import schema
from securecomm.core.cases import normalize_records, tables_from_records
from securecomm.law.compiler import compile_policy
from securecomm.law.decide import record_kind
from securecomm.law.loader import load_library
from securecomm.law.per_case import evaluate_case

# Years on a half-year grid so that recency windows (5, 10, 15 years) are hit exactly.
years = st.integers(min_value=0, max_value=80).map(lambda half_years: half_years / 2)


@st.composite
def offense(draw, convicted: bool):
    level = draw(st.sampled_from(schema.LEVELS))
    item = {
        "category": draw(st.sampled_from(schema.CATEGORIES)),
        "level": level,
        "felony_class": draw(st.none() | st.sampled_from(schema.FELONY_CLASSES)) if level == "felony" else None,
    }
    if convicted:
        item["years_ago"] = draw(years)
        # Drawn within [0, years_ago] rather than filtered: a filter rejects most draws when
        # years_ago is small, and Hypothesis's health check then fails the test at random.
        released_within = st.integers(min_value=0, max_value=int(item["years_ago"] * 2)).map(lambda half: half / 2)
        item["years_since_release"] = draw(st.none() | released_within)
        item["currently_in_custody"] = draw(st.booleans())
    return item


wall_times = st.datetimes(min_value=dt.datetime(2006, 1, 1), max_value=dt.datetime(2025, 12, 31)).map(
    lambda value: value.replace(second=0, microsecond=0)
)
# Near daylight-saving changes, so that holds cross them; some with a UTC offset.
dst_walls = st.builds(
    lambda year, march, minutes: (
        dt.datetime(year, 3 if march else 11, 8 if march else 1) + dt.timedelta(minutes=minutes)
    ),
    st.integers(min_value=2008, max_value=2020),
    st.booleans(),
    st.integers(min_value=-3 * 24 * 60, max_value=10 * 24 * 60),
)
offsets = st.sampled_from([-10, -9, -8, -7, -6, -5, -4, 0]).map(lambda hours: dt.timezone(dt.timedelta(hours=hours)))
release_times = (
    wall_times
    | dst_walls
    | st.builds(lambda wall, offset: wall.replace(tzinfo=offset), wall_times | dst_walls, offsets)
)


@st.composite
def detainer_case(draw):
    record = {flag: draw(st.booleans()) for flag in schema.CASE_FLAGS}
    record.update(
        public_safety_risk=draw(st.none() | st.booleans()),
        age=draw(st.none() | st.integers(min_value=12, max_value=80)),
        detainer_form=draw(st.none() | st.sampled_from(schema.DETAINER_FORMS)),
        release_eligible_at=draw(st.none() | release_times),
        time_zone=draw(st.none() | st.sampled_from(schema.TIME_ZONES)),
        current_charges=draw(st.lists(offense(convicted=False), max_size=3)),
        convictions=draw(st.lists(offense(convicted=True), max_size=5)),
    )
    return record


@st.composite
def field_record(draw):
    return {
        "investigating_criminal_activity": draw(st.booleans()),
        "ncic_hit": draw(st.sampled_from(schema.NCIC_HITS)),
    }


def numbered(records):
    return [(f"record {i}", {"case_id": f"c{i}", **record}) for i, record in enumerate(records)]


@pytest.mark.parametrize("policy", load_library(), ids=lambda policy: policy.id)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_vectorised_engine_agrees_with_reference(policy, data):
    kind = record_kind(policy)
    strategy = field_record() if kind == "field" else detainer_case()
    records = normalize_records(numbered(data.draw(st.lists(strategy, min_size=1, max_size=25))), kind)
    vectorised = compile_policy(policy).evaluate(tables_from_records(records, kind)).to_dicts()
    for record, fast in zip(records, vectorised, strict=True):
        assert fast == evaluate_case(policy, record)


def test_a_release_given_as_an_instant_in_the_repeated_hour_keeps_its_hour():
    """Found by the agreement test above: a release given with its UTC offset at 06:00 UTC on Nov 2, 2008 is 01:00
    EST, the second of New York's two 01:00s that night. Both engines hold it 48 real hours, to 06:00 UTC on Nov 4
    (01:00 EST); read back from the wall clock, the vectorised engine took the first 01:00 (EDT) and ended an
    hour early."""
    [policy] = [p for p in load_library() if p.id == "ca/san-francisco/sheriff-2014"]
    release = dt.datetime(2008, 11, 1, 20, tzinfo=dt.timezone(dt.timedelta(hours=-10)))
    case = {
        **{flag: False for flag in schema.CASE_FLAGS},
        "judicial_warrant": True,
        "public_safety_risk": None,
        "age": None,
        "detainer_form": "I-247A",
        "release_eligible_at": release,
        "time_zone": "America/New_York",
        "current_charges": [],
        "convictions": [],
    }
    records = normalize_records(numbered([case]), record_kind(policy))
    [fast] = compile_policy(policy).evaluate(tables_from_records(records, record_kind(policy))).to_dicts()
    reference = evaluate_case(policy, records[0])
    assert reference["decision"] == "honor"
    assert reference["hold_until_utc"].replace(tzinfo=None) == dt.datetime(2008, 11, 4, 6)
    assert fast == reference
