"""Build the table of NPR's detainers by detention facility, mapped to counties (issues 12 and 16).

    git --git-dir <nprapps/sanctuary-cities>.git show \\
        3aba2d33baac42ebf9cf0324fecb92570504ec84:privatefacility/public_detentations_percentages.csv > facilities.csv
    .venv/bin/python scripts/build_npr_facility_counties.py facilities.csv

The source is NPR's per-facility table of every detainer ICE lodged with a facility, FY2008 – Jul 19,
2015 (`det_facility`, `lift_reason`, `count`, `count_all`: one row per facility and outcome; a null
outcome is a detainer never closed), from NPR's FOIA data (GitHub nprapps/sanctuary-cities, code MIT;
the README calls the FOIA data public domain). The table names facilities only (no city, state or
county), so the mapping to counties is by hand, here (`FACILITIES`), for the places whose detainer
volume the calibration holds the model to (`PLACES`): each facility named with its county and why.

The script also sorts every facility name of the table into local jails and police (`LOCAL`: a county,
parish, city, sheriff, police, jail or central booking, and no state or federal marker) and the rest
(state prisons, federal prisons, U.S. Marshals, ICE offices and hold rooms, contract detention), to give
the local share of NPR's detainers: the model puts all of ICE's detainers in county jails, so a county's
model count is compared with its local facilities' count divided by that share
(calibration/county_volumes.py). A rule by name is rough; docs/calibration-declined-share.md gives its
range.

It writes `src/securecomm/core/data/npr_facility_counties.csv` (one row per mapped facility) and
`npr_facility_counties.yaml` (provenance, the local share, the facilities of each place, and the names
that look like a place's but were left out, with the reason). Nothing else reads the source.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
import sys
from pathlib import Path
from typing import Final

import yaml

SOURCE_SHA256: Final = "13513d7ea19f739d8d61a0daa6de23cbab28b60feee33fe42e54821d046eab2c"
SOURCE: Final = (
    "GitHub nprapps/sanctuary-cities, privatefacility/public_detentations_percentages.csv at commit "
    "3aba2d33baac42ebf9cf0324fecb92570504ec84 (2016-12-19; blob d575dd0f8414d424b7b9400d130202381e472a22): "
    "ICE detainers lodged with each facility, FY2008 - Jul 19, 2015, by outcome (NPR FOIA data; code MIT, "
    "the FOIA data public domain per the README)"
)
PERIOD: Final = ("2007-10-01", "2015-07-19")
DECLINED: Final = "Detainer Declined by LEA"
DATA: Final = Path(__file__).resolve().parents[1] / "src" / "securecomm" / "core" / "data"

# The places whose detainer volume is a target: the eight where the model's 2012-2014 declines are
# (docs/calibration-declined-share.md) and three large counties with 287(g) or without a policy.
PLACES: Final = {
    "cook": ("Cook County, IL", ("17031",)),
    "santa_clara": ("Santa Clara County, CA", ("06085",)),
    "new_york_city": ("New York City, NY", ("36005", "36047", "36061", "36081", "36085")),
    "district_of_columbia": ("District of Columbia", ("11001",)),
    "miami_dade": ("Miami-Dade County, FL", ("12086",)),
    "king": ("King County, WA", ("53033",)),
    "connecticut": (
        "Connecticut (state)",
        ("09001", "09003", "09005", "09007", "09009", "09011", "09013", "09015"),
    ),
    "san_francisco": ("San Francisco County, CA", ("06075",)),
    "harris": ("Harris County, TX", ("48201",)),
    "maricopa": ("Maricopa County, AZ", ("04013",)),
    "travis": ("Travis County, TX", ("48453",)),
}

# facility name (as NPR spells it) -> (place, county FIPS, why this county)
FACILITIES: Final = {
    "COOK COUNTY JAIL": ("cook", "17031", "Cook County Department of Corrections, Chicago"),
    "COOK COUNTY SHERIFF": ("cook", "17031", "Cook County Sheriff's Office, which runs the jail"),
    "SANTA CLARA CO MAIN JAIL/": ("santa_clara", "06085", "Santa Clara County Main Jail, San Jose"),
    "SANTA CLARA CO JAIL/MEN'S": ("santa_clara", "06085", "Santa Clara County's men's jail (Elmwood, Milpitas)"),
    "SANTA CLARA COUNTY JAIL": ("santa_clara", "06085", "Santa Clara County's jail"),
    "PALO ALTO COUNTY JAIL": ("santa_clara", "06085", "Palo Alto is in Santa Clara County (no county jail of its own)"),
    "NO COUNTY JAIL/PALO ALTO": ("santa_clara", "06085", "Palo Alto is in Santa Clara County"),
    "RIKERS ISLAND, QUEENS, NY": (
        "new_york_city",
        "36005",
        "NYC Department of Correction (the island is in the Bronx)",
    ),
    "QUEENS CENTRAL BOOKING": ("new_york_city", "36081", "NYPD central booking, Queens"),
    "BROOKLYN CENTRAL BOOKING": ("new_york_city", "36047", "NYPD central booking, Brooklyn (Kings County)"),
    "MANHATTAN CENTRAL BOOKING": ("new_york_city", "36061", "NYPD central booking, Manhattan (New York County)"),
    "BRONX CENTRAL BOOKING": ("new_york_city", "36005", "NYPD central booking, the Bronx"),
    "RICHMOND CENTRAL BOOKING": ("new_york_city", "36085", "NYPD central booking, Staten Island (Richmond County)"),
    "QUEENS HOUSE OF DETENTION": ("new_york_city", "36081", "NYC Department of Correction, Queens"),
    "BROOKLYN HOUSE OF DETENT.": ("new_york_city", "36047", "NYC Department of Correction, Brooklyn"),
    "BRONX HSE OF DET/BRONX NY": ("new_york_city", "36005", "NYC Department of Correction, the Bronx"),
    "NYC POLICE DEPARTMENT": ("new_york_city", "36061", "NYPD (city-wide; placed at its headquarters' county)"),
    "DC DEPT OF CORRECTIONS": ("district_of_columbia", "11001", "D.C. Department of Corrections (the D.C. jail)"),
    "DADE COUNTY CORRECTIONAL": ("miami_dade", "12086", "Miami-Dade Corrections and Rehabilitation"),
    "METRO DADE JAIL": ("miami_dade", "12086", "Miami-Dade's jail"),
    "DADE COUNTY JAIL": ("miami_dade", "12086", "Miami-Dade's jail"),
    "TURNER GUIFORD KNIGHT (TGK) JAIL": ("miami_dade", "12086", "Turner Guilford Knight Correctional Center, Miami"),
    "KING COUNTY ADULT JAIL": ("king", "53033", "King County Correctional Facility, Seattle"),
    "REGIONAL JUSTICE CENTER": ("king", "53033", "King County's Maleng Regional Justice Center, Kent WA"),
    "KING COUNTY SHERIFF": ("king", "53033", "King County Sheriff's Office"),
    "SAN FRANCISCO CO JAIL": ("san_francisco", "06075", "San Francisco Sheriff's Department jails"),
    "HARRIS COUNTY JAIL": ("harris", "48201", "Harris County Sheriff's jail, Houston"),
    "HOUSTON POLICE DEPT.": ("harris", "48201", "Houston Police Department's jail"),
    "HOUSTON POLICE DEPT. (SOUTHEAST)": ("harris", "48201", "Houston Police Department's southeast jail"),
    "SOUTH HOUSTON POLICE DEPT": ("harris", "48201", "South Houston, Harris County"),
    "MARICOPA COUNTY JAIL": ("maricopa", "04013", "Maricopa County Sheriff's jails, Phoenix"),
    "MARICOPA CO LOWER BUCKEYE JAIL": ("maricopa", "04013", "Maricopa County's Lower Buckeye Jail"),
    "MCSO ESTRELLA": ("maricopa", "04013", "Maricopa County Sheriff's Office, Estrella Jail"),
    "MSCO DURANGO FACILITY": ("maricopa", "04013", "Maricopa County Sheriff's Office, Durango Jail"),
    "TRAVIS CTY JAIL": ("travis", "48453", "Travis County Sheriff's jail, Austin"),
    # Connecticut's Department of Correction runs the state's jails and prisons as one system (no county jails)
    "BRIDGEPORT CORR CENTER": ("connecticut", "09001", "CT DOC, Bridgeport (Fairfield County)"),
    "GARNER CORR INST": ("connecticut", "09001", "CT DOC, Newtown (Fairfield County)"),
    "HARTFORD CORR CENTER": ("connecticut", "09003", "CT DOC, Hartford"),
    "ENFIELD CORR INST": ("connecticut", "09003", "CT DOC, Enfield (Hartford County)"),
    "ROBINSON CORR INST": ("connecticut", "09003", "CT DOC, Carl Robinson CI, Enfield (Hartford County)"),
    "WILLARD CORR INST": ("connecticut", "09003", "CT DOC, Willard-Cybulski CI, Enfield (Hartford County)"),
    "WALKER REC CTR": ("connecticut", "09003", "CT DOC, MacDougall-Walker, Suffield (Hartford County)"),
    "NEW HAVEN CORR CENTER": ("connecticut", "09009", "CT DOC, New Haven"),
    "CHESHIRE CORR INSTITUTE": ("connecticut", "09009", "CT DOC, Cheshire (New Haven County)"),
    "MANSON YOUTH INST": ("connecticut", "09009", "CT DOC, Cheshire (New Haven County)"),
    "WEBSTER CORR INST": ("connecticut", "09009", "CT DOC, Cheshire (New Haven County)"),
    "CORRIGAN CORR INST": ("connecticut", "09011", "CT DOC, Corrigan-Radgowski, Uncasville (New London County)"),
    "YORK CORR INST": ("connecticut", "09011", "CT DOC, York CI, Niantic (New London County)"),
    "NIANTIC CORR INST": ("connecticut", "09011", "CT DOC, Niantic (New London County)"),
    "GATES CORR INST": ("connecticut", "09011", "CT DOC, Gates CI, Niantic (New London County)"),
    "OSBORN CORR INST": ("connecticut", "09013", "CT DOC, Somers (Tolland County)"),
    "NORTHERN CORR INST": ("connecticut", "09013", "CT DOC, Somers (Tolland County)"),
    "BROOKLYN CORR CENTER": ("connecticut", "09015", "CT DOC, Brooklyn CI, Brooklyn CT (Windham County)"),
    "BRIDGEPORT POLICE DEPT.": ("connecticut", "09001", "Bridgeport, Fairfield County"),
    "STAMFORD POLICE DEPT.": ("connecticut", "09001", "Stamford, Fairfield County"),
    "NORWALK POLICE DEPT.": ("connecticut", "09001", "Norwalk, Fairfield County"),
    "DANBURY POLICE DEPT.": ("connecticut", "09001", "Danbury, Fairfield County"),
    "STRATFORD POLICE DEPT.": ("connecticut", "09001", "Stratford, Fairfield County"),
    "WESTPORT POLICE DEPT.": ("connecticut", "09001", "Westport, Fairfield County"),
    "TRUMBULL POLICE DEPT.": ("connecticut", "09001", "Trumbull, Fairfield County"),
    "HARTFORD POLICE DEPT.": ("connecticut", "09003", "Hartford"),
    "WALLINGFORD POLICE DEPT.": ("connecticut", "09009", "Wallingford, New Haven County"),
    "NAUGATUCK POLICE DEPT.": ("connecticut", "09009", "Naugatuck, New Haven County"),
    "CHESHIRE POLICE DEPT": ("connecticut", "09009", "Cheshire, New Haven County"),
}

# Names that look like a mapped place's but are left out, and why.
LEFT_OUT: Final = {
    "BROOKLYN MDC": "federal: Metropolitan Detention Center Brooklyn (Bureau of Prisons)",
    "NEW YORK MCC": "federal: Metropolitan Correctional Center New York (Bureau of Prisons)",
    "NYC FIELD OFFICE": "ICE's own office",
    "US MARSHALS, DC": "federal: U.S. Marshals",
    "MIAMI FCI (FORMER MCC)": "federal: Bureau of Prisons",
    "MIAMI FED.DET.CENTER": "federal: Bureau of Prisons",
    "DADE CORRECTIONAL INST": "state: Florida Department of Corrections' prison in Florida City",
    "HARTFORD OFFICE": "ICE's own office",
    "DANBURY FED.CORR.INST.": "federal: Bureau of Prisons",
    "SAN FRANCISCO JUVY HALL": "juvenile hall: the model books adults into county jails",
    "HARRIS COUNTY JUVENILE": "juvenile detention: the model books adults into county jails",
    "FDC HOUSTON": "federal: Bureau of Prisons",
    "HOUSTON FO HOLDROOM": "ICE's own hold room",
    "HOUSTON CONTRACT DET.FAC.": "ICE contract detention",
    "TRAVIS COUNTY STATE JAIL": "state: a Texas Department of Criminal Justice state jail",
    "MARICOPA MEDICAL CENTER": "a hospital, not a jail",
    "KENT CITY JAIL": "ambiguous: Kent, WA (King County) or Kent, OH",
    "ROBINSON CORRECTIONAL": "ambiguous: likely Robinson Correctional Center, Illinois (CT's is ROBINSON CORR INST)",
    "WILLARD DRUG TREATMENT US": "New York State's Willard Drug Treatment Campus, not Connecticut's",
    "MANCHESTER POLICE DEPT.": "ambiguous: Manchester, CT or Manchester, NH",
}

# The local-share rule: local jails and police by name, unless a state or federal marker says otherwise.
LOCAL = re.compile(
    r"COUNTY|\bCOUNT\b|\bCO\b|\bCO\.|\bCTY\b|CNTY|PARISH|SHERIFF|POLICE|\bP\.?D\.?\b|JAIL|CENTRAL BOOKING|"
    r"HOUSE OF DET|HSE OF DET|\bADC\b"
)
NOT_LOCAL = re.compile(
    r"STATE (JAIL|PRISON)|\bFED|\bFCI\b|\bUSP\b|U\.S\.P|\bFDC\b|\bMDC\b|\bMCC\b|MARSHAL|HOLD ?ROOM|HOLDROOM|"
    r"\bICE\b|\bINS\b|CONTRACT|BORDER PATROL|FIELD OFFICE|DISTRICT OFFICE|SUB-OFFICE"
)
# Every mapped facility is a place's jail or police (Connecticut's and D.C.'s departments of correction
# hold the pretrial detainees of their places: local, though not named as jails).
ALWAYS_LOCAL: Final = frozenset(FACILITIES)


def is_local(name: str) -> bool:
    """Whether a facility name is a local jail or police department (the local-share rule)."""
    return name in ALWAYS_LOCAL or (bool(LOCAL.search(name)) and not NOT_LOCAL.search(name))


def read_facilities(path: Path) -> dict[str, dict[str, int]]:
    """Detainers per facility: all, closed (an outcome recorded) and declined by the LEA."""
    facilities: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            entry = facilities.setdefault(row["det_facility"], {"detainers": int(row["count_all"]), "closed": 0})
            if entry["detainers"] != int(row["count_all"]):
                raise SystemExit(f"{row['det_facility']}: count_all differs between its rows")
            if row["lift_reason"]:
                entry["closed"] += int(row["count"])
            if row["lift_reason"] == DECLINED:
                entry["declined"] = int(row["count"])
    for entry in facilities.values():
        entry.setdefault("declined", 0)
    return facilities


def build(source: Path, out: Path) -> dict[str, int]:
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        raise SystemExit(f"{source}: sha256 {digest}, expected {SOURCE_SHA256} (a different file)")
    facilities = read_facilities(source)
    missing = sorted(set(FACILITIES) - set(facilities))
    if missing:
        raise SystemExit(f"mapped facilities not in the source: {missing}")
    total = sum(entry["detainers"] for entry in facilities.values())
    local = sum(entry["detainers"] for name, entry in facilities.items() if is_local(name))
    rows = [
        {
            "facility": name,
            "place": place,
            "place_name": PLACES[place][0],
            "fips": fips,
            "detainers": facilities[name]["detainers"],
            "closed": facilities[name]["closed"],
            "declined": facilities[name]["declined"],
            "basis": basis,
        }
        for name, (place, fips, basis) in sorted(FACILITIES.items(), key=lambda item: (item[1][0], item[0]))
    ]
    with (out / "npr_facility_counties.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    provenance = {
        "source": SOURCE,
        "sha256": SOURCE_SHA256,
        "period": list(PERIOD),
        "built_by": "scripts/build_npr_facility_counties.py",
        "built_on": dt.date.today().isoformat(),
        "facilities": len(facilities),
        "detainers": total,
        "local_facilities": sum(1 for name in facilities if is_local(name)),
        "local_detainers": local,
        "local_share": round(local / total, 4),
        "local_rule": "a facility is local if its name says county, parish, city jail, sheriff, police or central "
        "booking (or it is Connecticut's DOC, the state's jail system) and says nothing of a state prison or jail, "
        "the Bureau of Prisons, the U.S. Marshals or ICE (scripts/build_npr_facility_counties.py: LOCAL, NOT_LOCAL)",
        "places": {
            place: {
                "name": name,
                "fips": list(codes),
                "facilities": [row["facility"] for row in rows if row["place"] == place],
                "detainers": sum(row["detainers"] for row in rows if row["place"] == place),
                "declined": sum(row["declined"] for row in rows if row["place"] == place),
            }
            for place, (name, codes) in PLACES.items()
        },
        "left_out": [
            {"facility": name, "detainers": facilities.get(name, {}).get("detainers", 0), "reason": reason}
            for name, reason in LEFT_OUT.items()
        ],
    }
    (out / "npr_facility_counties.yaml").write_text(
        "# Provenance of npr_facility_counties.csv, written by scripts/build_npr_facility_counties.py: "
        "do not edit by hand.\n" + yaml.safe_dump(provenance, sort_keys=False, allow_unicode=True, width=110),
        encoding="utf-8",
    )
    return {"facilities": len(rows), "detainers": total, "local": local}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    counts = build(Path(sys.argv[1]), DATA)
    print(
        f"{counts['facilities']} facilities mapped; local share {counts['local'] / counts['detainers']:.1%} "
        f"of {counts['detainers']} detainers (npr_facility_counties.yaml)"
    )
