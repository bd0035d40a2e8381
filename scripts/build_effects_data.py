"""Build the effects stage's population table: Hispanic residents by county.

    .venv/bin/python scripts/build_effects_data.py CONTEXT_CSV

CONTEXT_CSV is `election-context-2018.csv` of the MIT Election Data and Science Lab's repository
MEDSL/2018-elections-unoffical (commit aaf8e49dd85b9782b035cacc50ae97d8b62e331f, MIT licence): county
demographics of the 2012-2016 ACS 5-year estimates (IPUMS NHGIS). The script checks the file's
sha256, keeps the county FIPS, the ACS total population and the Hispanic share, and writes
`src/securecomm/core/data/hispanic_population.parquet` (described in `core/data/PROVENANCE_EFFECTS.md`).
Nothing is estimated: a county the file does not have (Alaska's, and codes created since) has no row.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import polars as pl

SOURCE_SHA256 = "9d04bb5bbbb8821692f8dfee2cfa31f91fc933a458af05e52fd0d3b395286513"
SOURCE = "GitHub MEDSL/2018-elections-unoffical, `election-context-2018.csv`, commit aaf8e49dd85b9782b035cacc50ae97d8b62e331f (MIT licence)"
DATA = Path(__file__).resolve().parents[1] / "src" / "securecomm" / "core" / "data"


def build(context_csv: Path, out: Path) -> pl.DataFrame:
    digest = hashlib.sha256(context_csv.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        raise SystemExit(f"{context_csv}: sha256 {digest}, expected {SOURCE_SHA256} (a different file)")
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


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    table = build(Path(sys.argv[1]), DATA)
    print(
        f"hispanic_population.parquet: {table.height} counties, {table['hispanic_population'].sum():,} Hispanic residents"
    )


if __name__ == "__main__":
    main()
