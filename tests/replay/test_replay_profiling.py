"""The profiling indicator (issue 15 item 2): the share of detainers on people booked only for minor
charges, by month around activation, beside Gardner & Kohli's Irving, TX pattern (descriptive)."""

import datetime as dt
import json

import polars as pl
import pytest

from securecomm.core.cases import normalize_records, tables_from_records
from securecomm.model.profiling import IRVING, profiling_indicator
from securecomm.replay.report import to_json
from securecomm.replay.run import replay

from .sources import POLICIES

CASES = [
    # May 2011: a traffic misdemeanor, a felony assault, an infraction with a felony traffic charge (traffic is minor).
    ({"case_id": "a", "current_charges": [{"category": "traffic", "level": "misdemeanor"}]}, dt.datetime(2011, 5, 3)),
    (
        {
            "case_id": "b",
            "current_charges": [
                {"category": "traffic", "level": "misdemeanor"},
                {"category": "aggravated_assault", "level": "felony"},
            ],
        },
        dt.datetime(2011, 5, 20),
    ),
    (
        {
            "case_id": "c",
            "current_charges": [
                {"category": "public_order", "level": "infraction"},
                {"category": "traffic", "level": "felony"},
            ],
        },
        dt.datetime(2011, 5, 31, 23, 59),
    ),
    # June 2011: no charge in the records (left out of the share), a DUI misdemeanor (minor: not a felony).
    ({"case_id": "d"}, dt.datetime(2011, 6, 1)),
    ({"case_id": "e", "current_charges": [{"category": "dui", "level": "misdemeanor"}]}, dt.datetime(2011, 6, 2)),
    # No booking time: not counted by month.
    ({"case_id": "f", "current_charges": [{"category": "theft", "level": "misdemeanor"}]}, None),
]


def test_the_indicator_counts_right_on_hand_made_cases():
    tables = tables_from_records(normalize_records((f"case {index}", case) for index, (case, _) in enumerate(CASES)))
    booked = pl.Series([moment for _, moment in CASES], dtype=pl.Datetime("us"))
    table = profiling_indicator(tables, booked, activation=dt.date(2011, 6, 15))
    assert table.to_dicts() == [
        {
            "month": dt.date(2011, 5, 1),
            "months_from_activation": -1,
            "detainers": 3,
            "with_charges": 3,
            "minor_only": 2,
            "minor_only_share": pytest.approx(2 / 3),
            "irving_share": 0.98,
        },
        {
            "month": dt.date(2011, 6, 1),
            "months_from_activation": 0,
            "detainers": 2,
            "with_charges": 1,
            "minor_only": 1,
            "minor_only_share": 1.0,
            "irving_share": 0.98,
        },
    ]
    assert profiling_indicator(tables, booked)["months_from_activation"].is_null().all()


def test_the_irving_reference_is_labelled_descriptive_and_disputed():
    assert IRVING.share == 0.98
    assert "Gardner & Kohli" in IRVING.study and "Descriptive" in IRVING.caveat and "disputed" in IRVING.caveat


def test_a_replayed_jail_extract_carries_the_indicator(pierce_path):
    result = replay("pierce", pierce_path, POLICIES[:1], activation=dt.date(2011, 5, 24))
    profiling = result.profiling
    assert profiling["detainers"].sum() == result.imported.provenance["booked_at"].is_not_null().sum()
    assert (profiling["months_from_activation"] > 0).all()  # Pierce's extract starts years after activation
    shares = profiling["minor_only_share"].drop_nulls()
    assert shares.len() > 0 and ((shares >= 0) & (shares <= 1)).all()
    payload = json.loads(json.dumps(to_json(result)))
    assert payload["profiling"]["reference"]["share"] == 0.98 and payload["profiling"]["descriptive"] is True
    assert any("booked only for minor charges" in note for note in payload["notes"])


def test_a_traffic_felony_listed_first_does_not_hide_a_burglary():
    """Records list charges in the jail's order, not by seriousness: a booking for felony eluding (traffic)
    and first-degree burglary is not booked only for minor charges, whichever comes first (Pierce County's
    extract has one such booking); felony eluding alone is minor (traffic)."""
    cases = [
        {
            "case_id": "eluding then burglary",
            "current_charges": [
                {"category": "traffic", "level": "felony"},
                {"category": "burglary", "level": "felony"},
            ],
        },
        {
            "case_id": "burglary then eluding",
            "current_charges": [
                {"category": "burglary", "level": "felony"},
                {"category": "traffic", "level": "felony"},
            ],
        },
        {"case_id": "eluding alone", "current_charges": [{"category": "traffic", "level": "felony"}]},
    ]
    tables = tables_from_records(normalize_records((f"case {index}", case) for index, case in enumerate(cases)))
    booked = pl.Series([dt.datetime(2012, 5, 1)] * len(cases), dtype=pl.Datetime("us"))
    assert profiling_indicator(tables, booked).select("with_charges", "minor_only").row(0) == (3, 1)
