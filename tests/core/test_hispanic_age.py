"""The age table of the community effects (core/data/hispanic_age.parquet): what the build derives from
the Census Bureau's July 1, 2019 county rows, and the share aged 12+ that the effects read."""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path

import polars as pl
import pytest

from securecomm.core.demographics import hispanic_ages, hispanic_share_aged_12_plus
from securecomm.core.places import counties

REPO = Path(__file__).resolve().parents[2]
HEADER = "STNAME,CTYNAME,WA_MALE,WA_FEMALE,BA_MALE,BA_FEMALE,AA_MALE,AA_FEMALE,H_MALE,H_FEMALE"
# The source's own rows for three counties, verbatim (cc-est2019-alldata.csv of henrytan2/ML-Project,
# commit 395870129ed1): all ages, then the eighteen five-year groups 0-4 ... 85+.
SOURCE_ROWS = """\
California,Los Angeles ,3552806,3545503,426817,472349,722516,822929,2434231,2447739
California,Los Angeles ,216355,206718,22799,21812,35186,32633,175409,167988
California,Los Angeles ,227034,217011,24011,23163,35226,32175,189418,181335
California,Los Angeles ,225027,214857,26684,25867,34701,32145,193045,185402
California,Los Angeles ,228139,220347,27391,26845,37938,36968,189936,183734
California,Los Angeles ,245858,242615,30186,30395,44447,43974,198868,195358
California,Los Angeles ,303863,290660,41045,40222,59824,60409,221259,212054
California,Los Angeles ,290503,266763,36296,36848,60328,64658,196133,180957
California,Los Angeles ,262485,243262,29379,31493,54433,61830,178709,169997
California,Los Angeles ,237333,226681,25734,28954,48833,57848,166608,164935
California,Los Angeles ,240797,233140,26586,30260,50023,61259,164738,164888
California,Los Angeles ,235139,226413,28784,33205,46578,56516,151808,149968
California,Los Angeles ,223291,221290,30389,34837,48698,60366,127749,132698
California,Los Angeles ,191127,198935,25878,30837,46558,59110,99307,111273
California,Los Angeles ,148161,162896,18381,23954,39346,50718,70003,83578
California,Los Angeles ,109658,129676,12939,18474,30659,39740,46499,60095
California,Los Angeles ,72570,93150,8922,14149,20471,27092,28949,41751
California,Los Angeles ,47654,66950,6269,10294,14195,20009,18569,29227
California,Los Angeles ,47812,84139,5144,10740,15072,25479,17224,32501
Connecticut,New Haven ,320310,340385,60956,68851,17576,19435,80460,83156
Connecticut,New Haven ,15961,15332,3966,3799,930,832,6966,6863
Connecticut,New Haven ,16646,15681,4354,4214,951,821,7205,6817
Connecticut,New Haven ,17909,16848,4925,4808,1081,1057,7735,7290
Connecticut,New Haven ,20715,20646,5228,4942,1384,1510,7399,7172
Connecticut,New Haven ,21037,20727,5344,5238,1408,1674,6906,6786
Connecticut,New Haven ,21084,20208,5708,5633,1790,1830,7125,6689
Connecticut,New Haven ,20691,20644,4717,5422,1598,1714,6294,6345
Connecticut,New Haven ,19573,19784,3926,4786,1442,1554,6062,6442
Connecticut,New Haven ,17957,18687,3559,4524,1131,1587,5464,6014
Connecticut,New Haven ,19600,20360,3664,4682,1352,1622,4899,5240
Connecticut,New Haven ,22479,23656,3934,4817,1163,1301,4077,4700
Connecticut,New Haven ,24809,26256,3634,4349,986,1136,3349,3962
Connecticut,New Haven ,23443,25628,2863,3453,773,810,2441,2902
Connecticut,New Haven ,19142,21556,1871,2549,526,698,1701,2060
Connecticut,New Haven ,15459,18370,1369,2119,452,586,1287,1592
Connecticut,New Haven ,10472,13220,924,1489,282,368,749,999
Connecticut,New Haven ,6452,9142,543,1041,192,162,431,656
Connecticut,New Haven ,6881,13640,427,986,135,173,370,627
Illinois,Cook ,1674529,1695554,558359,668130,194691,212473,669766,649517
Illinois,Cook ,101550,97591,38030,36746,10736,10176,51280,49897
Illinois,Cook ,100232,95659,38885,37861,10469,10026,54871,52575
Illinois,Cook ,99612,95905,39991,39602,10248,9952,59706,57431
Illinois,Cook ,98260,95707,39682,40071,10021,10109,56535,54913
Illinois,Cook ,101552,102892,40782,43095,12447,13300,52025,51948
Illinois,Cook ,138999,135550,49449,53436,19039,20601,54664,52742
Illinois,Cook ,140673,132559,39345,44788,20668,20784,52643,48168
Illinois,Cook ,127580,120268,34073,42788,17825,18681,52448,48181
Illinois,Cook ,112719,105806,31863,39601,14460,16058,49711,46348
Illinois,Cook ,107824,102334,33169,43749,13490,15069,45897,42868
Illinois,Cook ,106271,102043,33559,42428,11075,12309,38262,35613
Illinois,Cook ,107831,107727,36888,46085,9801,11696,31375,30200
Illinois,Cook ,100725,104964,33217,44449,9464,11624,25222,25178
Illinois,Cook ,80563,87638,24414,36127,8554,10663,17960,18606
Illinois,Cook ,60562,70535,17912,27322,6888,8445,11946,13595
Illinois,Cook ,38547,51063,12465,20318,4617,5685,6938,8948
Illinois,Cook ,25126,37218,8011,14482,2781,3633,4412,6008
Illinois,Cook ,25903,50095,6624,15182,2108,3662,3871,6298
"""
KEYS = pl.DataFrame(
    {
        "fips": ["06037", "09009", "17031"],
        "state_name": ["California", "Connecticut", "Illinois"],
        "name": ["Los Angeles County", "New Haven County", "Cook County"],
    }
)


def _build_script():
    spec = importlib.util.spec_from_file_location("build_effects", REPO / "scripts" / "build_effects_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _source(text: str = SOURCE_ROWS) -> pl.DataFrame:
    return pl.read_csv(io.StringIO(HEADER + "\n" + text))


def _by_hand() -> dict[str, tuple[int, int, int]]:
    """Hispanic residents (H_MALE + H_FEMALE) of all ages, 10+ and 15+, summed here from the rows."""
    rows = list(csv.reader(io.StringIO(SOURCE_ROWS)))
    found = {}
    for fips, start in zip(KEYS["fips"], range(0, len(rows), 19), strict=True):
        hispanic = [int(row[8]) + int(row[9]) for row in rows[start : start + 19]]
        found[fips] = (hispanic[0], sum(hispanic[3:]), sum(hispanic[4:]))
    return found


def test_the_build_derives_each_county_from_its_own_source_rows():
    table = _build_script().derive_ages(_source(), KEYS)
    derived = {row[0]: row[1:4] for row in table.rows()}
    assert derived == _by_hand()
    assert derived["09009"][0] == 80_460 + 83_156  # New Haven: the all-ages row's H_MALE + H_FEMALE
    assert set(table["vintage"]) == {"Census Bureau Vintage 2019 estimates, July 1, 2019 (CC-EST2019-ALLDATA)"}


def test_the_shipped_table_holds_what_the_build_derives_from_those_rows():
    shipped = hispanic_ages().filter(pl.col("fips").is_in(KEYS["fips"].to_list()))
    derived = _build_script().derive_ages(_source(), KEYS)
    assert shipped.sort("fips").equals(derived.sort("fips"))


def test_the_shipped_table_covers_every_current_county():
    shipped = hispanic_ages()
    assert set(shipped["fips"]) == set(counties()["fips"])
    assert shipped.filter(pl.col("hispanic_population") <= 0).height == 0
    assert (shipped["hispanic_aged_15_plus"] <= shipped["hispanic_aged_10_plus"]).all()
    assert (shipped["hispanic_aged_10_plus"] <= shipped["hispanic_population"]).all()
    # the Census Bureau's national Hispanic population of July 1, 2019 (Vintage 2019): 60.6 million
    assert shipped["hispanic_population"].sum() == 60_572_237


def test_a_block_whose_ages_do_not_add_up_or_that_names_another_county_is_refused():
    build = _build_script()
    broken = SOURCE_ROWS.replace("California,Los Angeles ,216355,", "California,Los Angeles ,216356,", 1)
    with pytest.raises(ValueError, match="do not add up"):
        build.derive_ages(_source(broken), KEYS)
    with pytest.raises(ValueError, match="name another county"):
        build.derive_ages(_source(), KEYS.reverse())


def test_the_share_aged_12_plus_lies_between_the_15_plus_and_10_plus_shares():
    hand = _by_hand()["09009"]
    row = {
        split: hispanic_share_aged_12_plus(split).filter(pl.col("fips") == "09009").row(0, named=True)
        for split in (0.0, 0.6, 1.0)
    }
    assert row[0.0]["share_aged_12_plus"] == pytest.approx(hand[2] / hand[0])
    assert row[1.0]["share_aged_12_plus"] == pytest.approx(hand[1] / hand[0])
    assert row[0.6]["hispanic_aged_12_plus"] == pytest.approx(hand[2] + 0.6 * (hand[1] - hand[2]))
    with pytest.raises(ValueError, match="between 0 and 1"):
        hispanic_share_aged_12_plus(1.5)
