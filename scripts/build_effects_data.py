"""Build the effects stage's population tables: Hispanic residents by county, and by age.

    .venv/bin/python scripts/build_effects_data.py CONTEXT_CSV
    .venv/bin/python scripts/build_effects_data.py --ages AGE_CSV

CONTEXT_CSV is `election-context-2018.csv` of the MIT Election Data and Science Lab's repository
MEDSL/2018-elections-unoffical (commit aaf8e49dd85b9782b035cacc50ae97d8b62e331f, MIT licence): county
demographics of the 2012-2016 ACS 5-year estimates (IPUMS NHGIS). The script checks the file's
sha256, keeps the county FIPS, the ACS total population and the Hispanic share, and writes
`src/securecomm/core/data/hispanic_population.parquet`. Nothing is estimated: a county the file does not
have (Alaska's, and codes created since) has no row.

AGE_CSV is `cc-est2019-alldata.csv` of the public GitHub repository henrytan2/ML-Project (commit
395870129ed10441e118332324cdec456c1bcc75): the rows of July 1, 2019 (YEAR 12) of the Census Bureau's
Vintage 2019 county characteristics (CC-EST2019-ALLDATA), with the county codes, YEAR and AGEGRP columns
dropped. Each county is a block of nineteen rows in the Bureau's order: all ages (AGEGRP 0), then 0-4,
5-9, 10-14, ... 85+ (AGEGRP 1-18); the counties come in the order of their FIPS codes. The script checks
the file's sha256, that every block's eighteen age rows add up to its all-ages row, and that the blocks
name, in order, the current counties of the package's own county table (core/data/counties.parquet, the
same 3,142 counties); it then writes `src/securecomm/core/data/hispanic_age.parquet`: per county the
Hispanic residents (H_MALE + H_FEMALE) of all ages, aged 10 and over and aged 15 and over. Nothing is
estimated here either: the count aged 12 and over lies between the last two and is derived where it is
used (core/demographics.py), with the split of the 10-14 group the effects' parameters state.

Both tables are described in `core/data/PROVENANCE_EFFECTS.md`.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import polars as pl

SOURCE_SHA256 = "9d04bb5bbbb8821692f8dfee2cfa31f91fc933a458af05e52fd0d3b395286513"
SOURCE = "GitHub MEDSL/2018-elections-unoffical, `election-context-2018.csv`, commit aaf8e49dd85b9782b035cacc50ae97d8b62e331f (MIT licence)"
AGES_SHA256 = "3f6ae43ed4bba26986b777e53f8a28cc78e821d20f13d2c3c55027bb9182a643"
VINTAGE = "Census Bureau Vintage 2019 estimates, July 1, 2019 (CC-EST2019-ALLDATA)"
ROWS_PER_COUNTY = 19  # AGEGRP 0 (all ages), then 1-18: 0-4, 5-9, 10-14, ..., 85+
AGED_10_PLUS_FROM = 3  # AGEGRP 3 is 10-14
AGED_15_PLUS_FROM = 4  # AGEGRP 4 is 15-19
COUNTS = ("WA_MALE", "WA_FEMALE", "BA_MALE", "BA_FEMALE", "AA_MALE", "AA_FEMALE", "H_MALE", "H_FEMALE")
AGE_COLUMNS = {
    "fips": pl.String,
    "hispanic_population": pl.Int64,
    "hispanic_aged_10_plus": pl.Int64,
    "hispanic_aged_15_plus": pl.Int64,
    "vintage": pl.String,
}
DATA = Path(__file__).resolve().parents[1] / "src" / "securecomm" / "core" / "data"


def _checked(path: Path, expected: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise SystemExit(f"{path}: sha256 {digest}, expected {expected} (a different file)")


def build(context_csv: Path, out: Path) -> pl.DataFrame:
    _checked(context_csv, SOURCE_SHA256)
    raw = pl.read_csv(context_csv, null_values=["NA"], infer_schema_length=None)
    table = (
        raw.select(
            pl.col("fips").cast(pl.Int64).cast(pl.String).str.zfill(5).alias("fips"),
            pl.col("total_population").cast(pl.Int64).alias("acs_population"),
            (pl.col("hispanic_pct") / 100).alias("hispanic_share"),
        )
        .filter(pl.col("acs_population").is_not_null() & pl.col("hispanic_share").is_not_null())
        .with_columns(hispanic_population=(pl.col("acs_population") * pl.col("hispanic_share")).round(0).cast(pl.Int64))
        .sort("fips")
    )
    table.write_parquet(out / "hispanic_population.parquet", compression="zstd")
    return table


def read_ages(path: Path) -> pl.DataFrame:
    """The source file as the Bureau wrote it (Latin-1: Doña Ana County)."""
    return pl.read_csv(path, encoding="latin1", infer_schema_length=None)


def derive_ages(source: pl.DataFrame, counties: pl.DataFrame) -> pl.DataFrame:
    """The age table from the source rows and the counties they belong to (fips, state_name, name, in the
    source's order): one block of nineteen rows per county. Fails when a block's ages do not add up to its
    all-ages row or when a block does not name its county."""
    if source.height != ROWS_PER_COUNTY * counties.height:
        raise ValueError(f"{source.height} rows for {counties.height} counties of {ROWS_PER_COUNTY} rows each")
    rows = source.with_row_index("row").with_columns(
        block=pl.col("row") // ROWS_PER_COUNTY, agegrp=pl.col("row") % ROWS_PER_COUNTY
    )
    totals = rows.filter(pl.col("agegrp") == 0).sort("block")
    ages = rows.filter(pl.col("agegrp") > 0).group_by("block").agg(pl.col(COUNTS).sum()).sort("block")
    unequal = totals.join(ages, on="block", suffix="_ages").filter(
        pl.any_horizontal([pl.col(count) != pl.col(f"{count}_ages") for count in COUNTS])
    )
    if unequal.height:
        raise ValueError(f"{unequal.height} counties whose age rows do not add up to their all-ages row")
    named = totals.select("block", "STNAME", "CTYNAME").join(counties.with_row_index("block"), on="block")
    misnamed = named.filter(
        (pl.col("STNAME") != pl.col("state_name"))
        | ~pl.col("name").str.starts_with(pl.col("CTYNAME").str.strip_chars())
    )
    if misnamed.height:
        first = misnamed.row(0, named=True)
        raise ValueError(
            f"{misnamed.height} blocks name another county than the table's, the first "
            f"{first['CTYNAME'].strip()}, {first['STNAME']} for {first['fips']} ({first['name']})"
        )
    hispanic = pl.col("H_MALE") + pl.col("H_FEMALE")
    return (
        rows.group_by("block")
        .agg(
            hispanic.filter(pl.col("agegrp") == 0).sum().alias("hispanic_population"),
            hispanic.filter(pl.col("agegrp") >= AGED_10_PLUS_FROM).sum().alias("hispanic_aged_10_plus"),
            hispanic.filter(pl.col("agegrp") >= AGED_15_PLUS_FROM).sum().alias("hispanic_aged_15_plus"),
        )
        .join(counties.with_row_index("block").select("block", "fips"), on="block")
        .sort("block")
        .select(
            "fips", "hispanic_population", "hispanic_aged_10_plus", "hispanic_aged_15_plus", vintage=pl.lit(VINTAGE)
        )
        .cast(AGE_COLUMNS)
    )


def build_ages(age_csv: Path, out: Path) -> pl.DataFrame:
    _checked(age_csv, AGES_SHA256)
    counties = (
        pl.read_parquet(DATA / "counties.parquet")
        .filter(pl.col("current"))
        .select("fips", "state_name", "name")
        .sort("fips")
    )
    table = derive_ages(read_ages(age_csv), counties)
    table.write_parquet(out / "hispanic_age.parquet", compression="zstd")
    return table


def main() -> None:
    arguments = sys.argv[1:]
    if len(arguments) == 1:
        table = build(Path(arguments[0]), DATA)
        print(
            f"hispanic_population.parquet: {table.height} counties, "
            f"{table['hispanic_population'].sum():,} Hispanic residents"
        )
    elif len(arguments) == 2 and arguments[0] == "--ages":
        table = build_ages(Path(arguments[1]), DATA)
        print(
            f"hispanic_age.parquet: {table.height} counties, {table['hispanic_population'].sum():,} Hispanic "
            f"residents, {table['hispanic_aged_10_plus'].sum():,} aged 10+, "
            f"{table['hispanic_aged_15_plus'].sum():,} aged 15+"
        )
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
