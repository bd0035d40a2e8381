"""Build the place targets: published Secure Communities figures for states, counties and cities.

    .venv/bin/python scripts/build_place_targets.py [FIGURES_CSV]

FIGURES_CSV (default: the workspace's `../shared/data/place_figures/figures.csv`, described in its
SOURCE.md) holds figures newspapers, advocacy groups and research centres quoted from ICE's monthly
IDENT/IAFIS Interoperability Statistics for particular places, 2009–2015. The script reads every row
with `securecomm.calibration.place_figures.read_place_figures` (a target, or a skipped row and its
reason), checks the result as a targets table, and writes `src/securecomm/calibration/place_targets.csv`
and `place_targets.yaml` (provenance: the source file and its sha256, every skipped row and why).

It then adds the detainer volume of the places of NPR's facility table (src/securecomm/core/data/
npr_facility_counties.csv, built by scripts/build_npr_facility_counties.py), one target per place over
2008-2014 (securecomm.calibration.county_volumes), scaled by NPR's detainers by year (the workspace's
`../shared/data/npr_detainers/detainers_by_year.csv`). The package reads only the two written files.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import sys
from pathlib import Path

import yaml

from securecomm.calibration.county_volumes import county_volume_targets
from securecomm.calibration.place_figures import (
    COUNT_FACTOR,
    SHARE_POINTS,
    SMALL_COUNT,
    SMALL_COUNT_FACTOR,
    read_place_figures,
)
from securecomm.calibration.targets import TARGET_COLUMNS, parse_targets

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "place_figures" / "figures.csv"
NATIONAL_BY_YEAR = REPO.parent / "shared" / "data" / "npr_detainers" / "detainers_by_year.csv"
FACILITIES = REPO / "src" / "securecomm" / "core" / "data" / "npr_facility_counties"
OUT = REPO / "src" / "securecomm" / "calibration"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(source: Path, out: Path) -> tuple[int, int]:
    text = source.read_text(encoding="utf-8")
    rows, skipped = read_place_figures(text, source.name)
    total = sum(1 for _ in csv.DictReader(io.StringIO(text)))
    if len(rows) + len(skipped) != total:
        raise SystemExit(f"{source}: {total} rows, {len(rows)} used and {len(skipped)} skipped")
    facilities_csv = FACILITIES.with_suffix(".csv")
    facilities = yaml.safe_load(FACILITIES.with_suffix(".yaml").read_text(encoding="utf-8"))
    national = {int(r["year"]): int(r["count"]) for r in csv.DictReader(NATIONAL_BY_YEAR.open(encoding="utf-8"))}
    volumes, volumes_skipped = county_volume_targets(facilities_csv.read_text(encoding="utf-8"), facilities, national)
    if len(volumes) + len(volumes_skipped) != len(facilities["places"]):
        raise SystemExit(f"{facilities_csv}: {len(facilities['places'])} places, not all accounted for")
    rows += volumes
    table = io.StringIO()
    writer = csv.DictWriter(table, TARGET_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    parse_targets(table.getvalue(), "place_targets.csv")  # the same checks as the shipped national table
    (out / "place_targets.csv").write_text(table.getvalue(), encoding="utf-8")
    provenance = {
        "source": "shared/data/place_figures/figures.csv (its SOURCE.md: figures quoted from ICE's IDENT/IAFIS "
        "Interoperability Statistics by newspapers, advocacy groups and research centres, 2009-2015)",
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "built_by": "scripts/build_place_targets.py (securecomm.calibration.place_figures.read_place_figures)",
        "built_on": dt.date.today().isoformat(),
        "tolerance": {
            "counts": f"within a factor {COUNT_FACTOR} ({SMALL_COUNT_FACTOR} under {SMALL_COUNT})",
            "shares": f"within ±{SHARE_POINTS:g} (points)",
        },
        "rows": total,
        "used": len(rows) - len(volumes),
        "skipped": [
            {"line": s.line, "place": s.place_name, "metric": s.metric, "value": s.value, "reason": s.reason}
            for s in skipped
        ],
        "county_volumes": {
            "source": "src/securecomm/core/data/npr_facility_counties.csv (its .yaml: NPR's detainers by facility, "
            "FY2008 - Jul 2015, nprapps/sanctuary-cities @ 3aba2d3, the facilities of each place mapped by hand) and "
            "shared/data/npr_detainers/detainers_by_year.csv (NPR's detainers by calendar year)",
            "sha256": {"facilities": _sha256(facilities_csv), "detainers_by_year": _sha256(NATIONAL_BY_YEAR)},
            "built_by": "securecomm.calibration.county_volumes.county_volume_targets",
            "tolerance": f"within a factor {COUNT_FACTOR}",
            "places": len(facilities["places"]),
            "used": [row["id"] for row in volumes],
            "skipped": [{"place": s.place_name, "reason": s.reason} for s in volumes_skipped],
        },
    }
    (out / "place_targets.yaml").write_text(
        "# Provenance of place_targets.csv, written by scripts/build_place_targets.py: do not edit by hand.\n"
        + yaml.safe_dump(provenance, sort_keys=False, allow_unicode=True, width=110),
        encoding="utf-8",
    )
    return len(rows), len(skipped) + len(volumes_skipped)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE
    used, dropped = build(path, OUT)
    print(f"{path}: {used} targets, {dropped} rows skipped (place_targets.yaml says why)")
