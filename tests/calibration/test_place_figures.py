"""The place-figure importer (calibration/place_figures.py) on a hand-made file: every row is a target
or a skipped row with its reason; and the shipped place targets account for every row of their source."""

import datetime as dt
import math

import pytest
import yaml

from securecomm.calibration.place_figures import PlaceFigureError, first_activation, read_place_figures
from securecomm.calibration.targets import TARGET_COLUMNS, data_path, load_place_targets, parse_targets
from securecomm.core.places import activation_date

HEADER = "place_name,fips,start,end,metric,value,unit,source,quote"
SOURCE = '"A paper 2011-03-01 https://example.org/a"'
ROWS = [
    # 2: a county count over exact dates: ×1.5
    f'"New Haven County, CT",09009,2010-01-01,2010-12-31,removals,900,count,{SOURCE},"900 removed"',
    # 3: a lower bound under 500, month dates: ×2, at_least, first and last day of the months
    f'"New Haven County, CT",09009,2010-02,2010-06,removals_level1,120,count,{SOURCE},"more than 120 [lower bound]"',
    # 4: a state (two-digit FIPS) from its activation, an end in the later of two months
    f'"Connecticut (state)",09,activation,~2011-05/06,matches,4000,count,{SOURCE},"4,000 matched"',
    # 5: a share: ±12 points; a group of counties
    f'"Two counties",09001/09003,2011-01-01,2011-12-31,share_removals_noncriminal,0.4,share,{SOURCE},"40%"',
    # 6: a metric the model has no count of
    f'"New Haven County, CT",09009,2010-01-01,2010-12-31,matches_level1,50,count,{SOURCE},"50 Level 1"',
    # 7: a metric the importer does not know
    f'"New Haven County, CT",09009,2010-01-01,2010-12-31,hearings,5,count,{SOURCE},"5 hearings"',
    # 8, 9: overlapping shares of one place that conflict (0.7 vs 0.3): both skipped
    f'"Hartford County, CT",09003,2010-01-01,2010-10-31,share_removals_noncriminal,0.7,share,{SOURCE},"70%"',
    f'"Hartford County, CT",09003,2010-01-01,2010-12-31,share_removals_noncriminal,0.3,share,{SOURCE},"30%"',
    # 10, 11: counts of one place over nested but different windows: not a conflict
    f'"Hartford County, CT",09003,2010-06-08,2010-06-17,submissions,694,count,{SOURCE},"694 sets"',
    f'"Hartford County, CT",09003,2010-06-08,2010-06-29,submissions,1557,count,{SOURCE},"1,557 sets"',
    # 12: the nation; a year as the end
    f'"United States (national)",US,2008-10-27,~2012,removals,169000,count,{SOURCE},"169,000"',
]


def test_every_row_of_a_hand_made_file_is_used_or_reported():
    rows, skipped = read_place_figures("\n".join([HEADER, *ROWS]) + "\n", "hand.csv")
    assert len(rows) + len(skipped) == len(ROWS)
    by_line = {int(row["id"][4:7]): row for row in rows}
    assert sorted(by_line) == [2, 3, 4, 5, 10, 11, 12]
    assert {s.line for s in skipped} == {6, 7, 8, 9}
    reasons = {s.line: s.reason for s in skipped}
    assert reasons[6].startswith("ambiguous metric")
    assert reasons[7].startswith("no model count")
    assert reasons[8] == reasons[9].replace("line 8", "line 9") and "overlapping conflict" in reasons[8]
    assert all(tuple(row) == TARGET_COLUMNS for row in rows)

    targets = {t.id: t for t in parse_targets("\n".join([",".join(TARGET_COLUMNS), *_lines(rows)]))}
    county = targets["line002_removals"]
    assert (county.place, county.metric, county.published) == ("09009", "removals", 900)
    assert (county.tolerance, county.tolerance_unit, county.comparison) == (1.5, "factor", "approx")
    assert county.url == "https://example.org/a" and county.source == "A paper 2011-03-01"
    small = targets["line003_removals_level1"]
    assert (small.start, small.end) == (dt.date(2010, 2, 1), dt.date(2010, 6, 30))
    assert (small.tolerance, small.comparison) == (2.0, "at_least")
    state = targets["line004_matches"]
    assert state.place == "CT" and state.metric == "ident_matches"
    assert state.start == min(activation_date(code) for code in state.counties())
    assert state.end == dt.date(2011, 6, 30)
    share = targets["line005_share_removals_noncriminal"]
    assert (share.place, share.metric) == ("09001,09003", "removals_noncriminal_share")
    assert (share.tolerance, share.tolerance_unit) == (0.12, "points")
    assert targets["line012_removals"].end == dt.date(2012, 12, 31)


def _lines(rows):
    return [",".join(f'"{row[column]}"' for column in TARGET_COLUMNS) for row in rows]


def test_a_malformed_row_names_its_line():
    bad = f'"Somewhere",9,2010-01-01,2010-12-31,removals,10,count,{SOURCE},"10"'
    with pytest.raises(PlaceFigureError, match="line 2"):
        read_place_figures(f"{HEADER}\n{bad}\n")
    backwards = f'"New Haven County, CT",09009,2011-01-01,2010-12-31,removals,10,count,{SOURCE},"10"'
    with pytest.raises(PlaceFigureError, match="before the start"):
        read_place_figures(f"{HEADER}\n{backwards}\n")


def test_tolerances_of_place_figures():
    rows, _ = read_place_figures("\n".join([HEADER, ROWS[0], ROWS[3]]) + "\n")
    count, share = parse_targets("\n".join([",".join(TARGET_COLUMNS), *_lines(rows)]))
    assert count.within(900 * 1.5) and count.within(900 / 1.5) and not count.within(900 * 1.51)
    assert count.misfit(900 * 1.5) == pytest.approx(1) and count.misfit(0) == -math.inf
    assert share.within(0.52) and share.within(0.28) and not share.within(0.53)
    assert share.misfit(0.46) == pytest.approx(0.5)


def test_the_shipped_place_targets_account_for_every_source_row():
    provenance = yaml.safe_load(data_path("place_targets.yaml").read_text(encoding="utf-8"))
    # the detainer volumes of NPR's facility table follow the figures (tests/calibration/test_county_volumes.py)
    targets = [t for t in load_place_targets() if t.id not in provenance["county_volumes"]["used"]]
    assert provenance["used"] == len(targets)
    assert provenance["used"] + len(provenance["skipped"]) == provenance["rows"]
    assert all(entry["reason"] for entry in provenance["skipped"])
    lines = {int(t.id[4:7]) for t in targets} | {entry["line"] for entry in provenance["skipped"]}
    assert lines == set(range(2, provenance["rows"] + 2))
    assert all(t.tolerance_unit in ("factor", "points") for t in targets)
    assert all(t.fitted == (t.place != "US") for t in targets)
    assert first_activation(["48201"]) == dt.date(2008, 10, 27)
