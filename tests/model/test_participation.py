"""State participation scenarios (issue 15 item 3): Illinois, New York and Massachusetts tried to leave
Secure Communities in 2011 (docs/facts.md §1.5, §4.7). A participation reform stops the program in a place
from a date (`never`), holds its activation back to a date (`delayed`), or keeps the prints flowing while
the jails decline every detainer (`no-detainers`)."""

import datetime as dt
import json

import polars as pl
import pytest
from typer.testing import CliRunner

from securecomm.cli import app
from securecomm.core.places import resolve_place
from securecomm.model.simulation import DECLINES_EVERY_DETAINER, Participation, simulate
from securecomm.model.stages.bookings import county_segments

ILLINOIS = frozenset(resolve_place("IL"))
OPT_OUT = dt.date(2011, 5, 4)  # Illinois' letter terminating the ISP–ICE MOA (facts.md §4.7)
PLACE, START, END, SEED = "IL,WI", dt.date(2010, 6, 1), dt.date(2012, 6, 30), 3
SC = pl.col("channel") == "secure_communities"


IN_ILLINOIS = pl.col("fips").cast(pl.String).str.starts_with("17")


@pytest.fixture(scope="module")
def historical():
    return simulate(PLACE, START, END, seed=SEED)


@pytest.fixture(scope="module")
def opted_out():
    return simulate(PLACE, START, END, seed=SEED, participation=(Participation(ILLINOIS, "never", OPT_OUT),))


def test_an_illinois_opt_out_leaves_no_ident_check_in_illinois_after_it(historical, opted_out):
    records = opted_out.records
    illinois_sc = records.filter(IN_ILLINOIS & SC)
    # Checked before the opt-out (DuPage and Kane since 2009, 24 more counties since 2010) …
    assert illinois_sc.height > 1000
    # … and never from the day of Illinois' letter: no IDENT match, so no Secure Communities record.
    assert illinois_sc.get_column("booking_at").max() < dt.datetime(2011, 5, 4)
    months = opted_out.county_months.filter(IN_ILLINOIS)
    after = months.filter(pl.col("month") >= dt.date(2011, 6, 1))
    assert after["fingerprints_checked"].sum() == 0 and after["ident_matches"].sum() == 0
    # May 2011 is checked for its first three days only (about 3/31 of a month's checks).
    may = months.filter(pl.col("month") == dt.date(2011, 5, 1))["fingerprints_checked"].sum()
    april = months.filter(pl.col("month") == dt.date(2011, 4, 1))["fingerprints_checked"].sum()
    assert 0 < may < 0.2 * april
    # The months before the opt-out are checked as historically (same expected numbers; other draws).
    before = historical.county_months.filter(IN_ILLINOIS & (pl.col("month") < dt.date(2011, 5, 1)))[
        "fingerprints_checked"
    ].sum()
    assert months.filter(pl.col("month") < dt.date(2011, 5, 1))["fingerprints_checked"].sum() == pytest.approx(
        before, rel=0.02
    )


def test_an_illinois_opt_out_changes_nothing_elsewhere(historical, opted_out):
    """Wisconsin's figures are those of a run without the reform, draw for draw: each state draws from
    streams of its own (state.PlaceStream), so Illinois' fewer matches move nothing in Wisconsin."""
    in_wisconsin = pl.col("fips").cast(pl.String).str.starts_with("55")
    with_reform, without = (result.county_months.filter(in_wisconsin) for result in (opted_out, historical))
    assert with_reform.height > 1000 and with_reform.get_column("detainers_issued").sum() > 100
    assert with_reform.equals(without)
    # Every column of every record but its number in the run (Illinois' records come first).
    records = [
        result.records.filter(in_wisconsin).drop("record").with_columns(pl.col(pl.Enum).cast(pl.String))
        for result in (opted_out, historical)
    ]
    assert records[0].equals(records[1])
    # Illinois itself did change.
    in_illinois = [result.county_months.filter(IN_ILLINOIS) for result in (opted_out, historical)]
    assert not in_illinois[0].equals(in_illinois[1])


def test_an_opt_out_keeps_the_other_ice_routes_at_their_rate_without_the_program(historical, opted_out):
    """Without IDENT, ICE reaches the jail by its other routes (CAP) at the rate of a county not activated."""

    def other_routes(result):
        records = result.records
        after = IN_ILLINOIS & (pl.col("booking_at") >= dt.datetime(2011, 6, 1))
        return records.filter(after & (pl.col("channel") == "other_routes")).height

    assert other_routes(opted_out) > other_routes(historical)


def test_a_delayed_activation_starts_on_the_later_of_the_two_dates():
    delayed = Participation(ILLINOIS, "delayed", dt.date(2012, 1, 1))
    start, end = dt.date(2009, 1, 1), dt.date(2013, 6, 30)
    segments = county_segments(["17043", "17203"], start, end, (delayed.off_program(),))
    first_activated = dict(
        segments.filter(pl.col("activated")).group_by("fips").agg(pl.col("segment_start").min()).iter_rows()
    )
    # DuPage (activated 2009-11-24) waits until 2012-01-01; Woodford (2013-01-22) is later anyway.
    assert first_activated == {"17043": dt.date(2012, 1, 1), "17203": dt.date(2013, 1, 22)}
    assert county_segments(["17203"], start, end).equals(segments.filter(pl.col("fips") == "17203"))
    result = simulate("17043", "2011-06-01", "2012-03-31", seed=SEED, participation=(delayed,))
    checked = result.records.filter(SC).get_column("booking_at")
    assert checked.min() >= dt.datetime(2012, 1, 1) and checked.len() > 0
    december = result.county_months.filter(pl.col("month") == dt.date(2011, 12, 1))
    assert december["fingerprints_checked"].item() == 0


def test_refusing_detainers_keeps_the_prints_and_declines_every_detainer(historical):
    refusing = simulate(PLACE, START, END, seed=SEED, participation=(Participation(ILLINOIS, "no-detainers", OPT_OUT),))
    # The program runs as before: the same population, draw for draw, everywhere.
    for metric in ("bookings", "fingerprints_checked", "ident_matches", "detainers_issued"):
        assert refusing.total[metric] == historical.total[metric], metric
    records = refusing.records.filter(pl.col("detainer_issued"))
    refused = records.filter(IN_ILLINOIS & (pl.col("release_eligible_at") >= dt.datetime(2011, 5, 5)))
    assert refused.height > 100
    assert set(refused["jail_decision"].cast(pl.String)) == {"decline"}
    assert set(refused["jail_policy"].cast(pl.String)) == {DECLINES_EVERY_DETAINER}
    assert refused["held"].sum() == 0
    # Wisconsin's jails decide exactly as they did.
    wisconsin = pl.col("fips").cast(pl.String).str.starts_with("55")
    columns = ["record", "jail_decision", "held", "hold_hours", "removed"]
    assert (
        refusing.records.filter(wisconsin).select(columns).equals(historical.records.filter(wisconsin).select(columns))
    )
    assert refusing.total["detainers_honored"] < historical.total["detainers_honored"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("IL=leave@2011-05-04", "expected PLACE=MODE"),
        ("IL", "expected PLACE=MODE"),
        ("IL=never@May 4", "is not a date"),
        ("IL=delayed", "needs the date"),
        ("ZZ=never", "ZZ"),
    ],
)
def test_a_bad_participation_is_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        Participation.parse(spec)


def test_participation_from_the_command_line():
    runner = CliRunner()
    args = ["--place", "17043", "--start", "2011-01-01", "--end", "2011-12-31", "--seed", "3", "--json"]
    result = runner.invoke(app, ["simulate", *args, "--participation", "IL=never@2011-05-04"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["participation"] == [{"mode": "never", "start": "2011-05-04", "counties": sorted(ILLINOIS)}]
    assert payload["total"]["fingerprints_checked"] > 0
    compared = runner.invoke(
        app,
        [
            "compare",
            *args[:-3],
            "--policies",
            "historical,us/ice-request",
            "--participation",
            "17043=no-detainers",
            "--json",
        ],
    )
    assert compared.exit_code == 0, compared.output
    levels = json.loads(compared.stdout)["policies"]
    # The refusal applies under every policy compared: nothing is honored.
    assert levels["historical"]["detainers_honored"]["median"] == 0
    assert levels["us/ice-request"]["detainers_honored"]["median"] == 0
    assert levels["us/ice-request"]["detainers_issued"]["median"] > 0
    bad = runner.invoke(app, ["simulate", *args, "--participation", "IL=leave"])
    assert bad.exit_code != 0 and "expected PLACE=MODE" in bad.output
