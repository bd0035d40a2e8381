import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from securecomm.cli import app
from securecomm.comparison.compare import compare
from securecomm.comparison.report import render_report
from securecomm.core import schema
from securecomm.model import metrics
from securecomm.model.metrics import (
    METRICS,
    REPORTED,
    SHARES,
    added,
    channel_totals,
    county_months,
    record_sums,
    totals,
)
from securecomm.model.parameters import load_parameters
from securecomm.model.simulation import simulate

MINOR = "detainers_on_minor_charges"
AT = dt.datetime


def _records() -> pl.DataFrame:
    """Six hand-made records of one county: who had a detainer, and their most serious current charge."""
    return pl.DataFrame(
        {
            "record": list(range(6)),
            "channel": ["secure_communities"] * 4 + ["other_routes"] * 2,
            "fips": ["09001"] * 6,
            "status": ["unauthorized"] * 6,
            "booking_at": [
                AT(2013, 1, 5),
                AT(2013, 1, 9),
                AT(2013, 1, 20),
                AT(2013, 2, 1),
                AT(2013, 2, 3),
                AT(2013, 2, 9),
            ],
            "detainer_issued": [True, True, True, False, True, True],
            "most_serious_charge_level": ["misdemeanor", "felony", "felony", "misdemeanor", "infraction", "felony"],
            "most_serious_charge_category": ["theft", "traffic", "dui", "public_order", "public_order", "burglary"],
            "jail_decision": ["honor", "honor", "decline", None, "honor", "review"],
            "held": [True, True, False, False, True, False],
            "hold_hours": [48.0, 24.0, 0.0, 0.0, 12.0, 0.0],
            "transferred": [True, False, False, False, True, False],
            "transfer_at": [AT(2013, 1, 7), None, None, None, AT(2013, 3, 2), None],
            "removed": [True, False, False, False, True, False],
            "removal_at": [AT(2013, 2, 20), None, None, None, AT(2013, 4, 1), None],
            "ice_level": ["level_3", "level_2", "level_1", "non_criminal", "non_criminal", "level_2"],
            "removal_level": ["level_3", "level_2", "level_1", "non_criminal", "non_criminal", "level_2"],
            "known_convictions": [1, 2, 3, 0, 0, 2],
        },
        schema_overrides={"most_serious_charge_level": pl.Enum(schema.LEVELS)},
    )


def _segments() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "fips": ["09001", "09001"],
            "segment_start": [dt.date(2013, 1, 1), dt.date(2013, 2, 1)],
            "bookings": [300, 280],
            "fingerprints_checked": [290, 270],
            "field_arrests": [1, 0],
        }
    )


def test_detainers_on_minor_charges_are_counted_from_the_most_serious_charge():
    records = _records()
    # A misdemeanor, a traffic felony and an infraction count; a DUI felony, a burglary and a booking
    # without a detainer do not.
    assert records.select(METRICS[MINOR].period_value(dt.date(2013, 12, 31), load_parameters())).item() == 3
    by_channel = channel_totals(records, dt.date(2013, 12, 31), load_parameters())
    assert by_channel["secure_communities"][MINOR] == 2
    assert by_channel["other_routes"][MINOR] == 1
    months = county_months(_segments(), records, dt.date(2013, 12, 31), load_parameters())
    assert months.get_column(MINOR).to_list() == [2, 1]  # by the month of the booking


def test_a_period_follows_its_bookings_and_counts_removals_by_its_end():
    records = _records()
    period = totals(county_months(_segments(), records, dt.date(2013, 3, 31), load_parameters()))
    assert period["removals"] == 1  # the removal of April 1 is after the period
    assert period["transfers_to_ice"] == 2  # a transfer follows the hold: every transfer of the period's bookings
    assert period["hold_hours"] == 84.0
    assert period["jail_cost_usd"] == pytest.approx(84 / 24 * load_parameters().value("jail_daily_cost_usd"), abs=0.01)
    assert period["ident_matches"] == 4
    assert period["bookings"] == 580
    assert list(period) == list(REPORTED)


def test_sums_of_the_parts_some_columns_make_add_up_to_every_metric(monkeypatch):
    """A population sums once the metrics no policy changes and each policy run the others
    (`record_sums(wanted=...)`): the two add up to the sums of every metric. Counts are made from the cells of
    the few records selected or weighted over all of them, with the same numbers."""
    records, end = _records(), dt.date(2013, 12, 31)
    groups = records.get_column("booking_at").dt.month().to_numpy().astype("int64") - 1
    every = record_sums(records, end, groups, 2)
    made_by_policy = {"jail_decision", "held", "hold_hours", "transferred", "transfer_at", "removed", "removal_at"}
    policy = record_sums(records, end, groups, 2, wanted=lambda columns: bool(columns & made_by_policy))
    unchanged = record_sums(records, end, groups, 2, wanted=lambda columns: not columns & made_by_policy)
    assert set(policy).isdisjoint(unchanged) and set(policy) | set(unchanged) == set(every)
    assert {"ident_matches", "detainers_issued", MINOR} <= set(unchanged) and "removals" in policy
    zero = {name: np.zeros_like(sums) for name, sums in every.items()}
    for name, sums in added(added(zero, unchanged), policy).items():
        assert np.array_equal(sums, every[name]), name
    assert every["detainers_issued"].tolist() == [[3, 0], [0, 2]]  # by channel, then by month
    for sparse_from in (1, 100):  # every count from the weights, then from the cells of those selected
        monkeypatch.setattr(metrics, "SPARSE_FROM", sparse_from)
        for name, sums in record_sums(records, end, groups, 2).items():
            assert np.array_equal(sums, every[name]), name


def test_every_metric_is_declared_once_and_completely():
    for name, metric in METRICS.items():
        assert metric.name == name and metric.label and metric.short_label
        assert (metric.selects is not None) == (metric.source == "records"), name
        assert metric.decimals == (2 if metric.amount or metric.scaled_by else 0), name
    for share in SHARES.values():
        assert share.numerator.targetable and share.denominator.targetable
    assert MINOR in REPORTED and "removals_convicted" not in REPORTED


def test_the_new_metric_reaches_simulate_compare_and_the_report(tmp_path):
    runner = CliRunner()
    simulated = runner.invoke(
        app, ["simulate", "--place", "09001", "--start", "2013-06-01", "--end", "2013-08-31", "--json"]
    )
    assert simulated.exit_code == 0, simulated.output
    report = json.loads(simulated.stdout)
    assert report["total"][MINOR] > 0
    assert report["total"][MINOR] <= report["total"]["detainers_issued"]
    assert MINOR in report["channels"]["other_routes"] and MINOR in report["places"]["09001"]
    table = runner.invoke(
        app,
        [
            "compare", "--place", "09001", "--start", "2013-06-01", "--end", "2013-08-31",
            "--policies", "us/ice-request,ct/trust-act-2013", "--csv", str(tmp_path / "table.csv"),
        ],
    )  # fmt: skip
    assert table.exit_code == 0, table.output
    assert "Detainers on minor charges" in table.stdout
    csv = pl.read_csv(tmp_path / "table.csv")
    assert csv.filter(pl.col("metric") == MINOR).height == 2  # one row per policy
    comparison = compare("09001", dt.date(2013, 6, 1), dt.date(2013, 8, 31), ("us/ice-request",))
    html = render_report(comparison.plan, comparison.summary, comparison.counties, load_parameters())
    assert METRICS[MINOR].label in html


def test_counts_read_the_records_in_any_order():
    """Validation counts its targets on the records in any order (no sort of a national table): the same rows
    as the records in record order, so the same counts."""
    result = simulate("09009", "2012-01-01", "2012-06-30", seed=2)
    unordered = result.records_in_any_order()
    assert unordered.height == result.records.height > 0
    assert unordered.sort("record").equals(result.records)
    assert not unordered.get_column("record").is_sorted()  # those with a detainer come after the others
