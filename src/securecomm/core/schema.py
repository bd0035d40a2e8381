"""The case schema (docs/design.md §2): fields, types and vocabularies — the one source of truth.

Every other module reads its column names and allowed values from here.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final, Self

CATEGORIES: Final = (
    "homicide",
    "sexual_assault",
    "kidnapping",
    "robbery",
    "aggravated_assault",
    "simple_assault",
    "domestic_violence",
    "weapons",
    "arson",
    "burglary",
    "theft",
    "fraud",
    "drug_trafficking",
    "drug_possession",
    "dui",
    "hit_and_run",
    "traffic",
    "public_order",
    "immigration",
    "other",
)
LEVELS: Final = ("felony", "misdemeanor", "infraction")
FELONY_CLASSES: Final = ("A", "B", "C", "D", "E", "unclassified")
DETAINER_FORMS: Final = ("I-247", "I-247D", "I-247N", "I-247X", "I-247A")
NCIC_HITS: Final = ("none", "criminal_warrant", "ice_administrative_warrant")
# The U.S. IANA time zones a record's `time_zone` may name (places.py gives every county one of them).
# U.S. zones change daylight time only early on Sunday mornings, so a business day is always 24 hours.
TIME_ZONES: Final = (
    "America/New_York",
    "America/Detroit",
    "America/Kentucky/Louisville",
    "America/Kentucky/Monticello",
    "America/Indiana/Indianapolis",
    "America/Indiana/Vincennes",
    "America/Indiana/Winamac",
    "America/Indiana/Marengo",
    "America/Indiana/Petersburg",
    "America/Indiana/Vevay",
    "America/Chicago",
    "America/Indiana/Tell_City",
    "America/Indiana/Knox",
    "America/Menominee",
    "America/North_Dakota/Center",
    "America/North_Dakota/New_Salem",
    "America/North_Dakota/Beulah",
    "America/Denver",
    "America/Boise",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "America/Juneau",
    "America/Sitka",
    "America/Metlakatla",
    "America/Yakutat",
    "America/Nome",
    "America/Adak",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
)

# Booleans of a detainer case: missing means false (docs/design.md §2).
CASE_FLAGS: Final = (
    "held_to_answer",
    "bond_posted",
    "pending_charges",
    "outstanding_warrant",
    "federal_felony_warrant",
    "gang_database",
    "terrorist_watchlist",
    "sex_or_arson_registrant",
    "aggravated_felony",
    "judicial_warrant",
    "final_order",
    "prior_removal",
    "ice_reimbursement",
)
# The one three-valued fact: null means "not determined".
THREE_VALUED_FLAG: Final = "public_safety_risk"

# Booleans of a field-encounter record (New Haven General Order 06-2).
FIELD_FLAGS: Final = ("investigating_criminal_activity",)

# Plain-English phrases for facts, used in explanations and `policies show`.
FACT_PHRASES: Final[dict[str, str]] = {
    "held_to_answer": "a magistrate found probable cause on a current felony charge (held to answer)",
    "bond_posted": "bond has been posted",
    "pending_charges": "has a pending criminal case in this state",
    "outstanding_warrant": "has an outstanding criminal arrest warrant in this state",
    "federal_felony_warrant": "is the subject of an outstanding federal felony arrest warrant",
    "gang_database": "is listed as a known gang member in NCIC or a similar database",
    "terrorist_watchlist": "is a possible match in the Terrorist Screening Database",
    "sex_or_arson_registrant": "is a current sex or arson registrant",
    "aggravated_felony": "has been convicted of an aggravated felony (8 U.S.C. 1101(a)(43))",
    "judicial_warrant": "the detainer comes with a warrant signed by a judge",
    "final_order": "is subject to a final order of removal",
    "prior_removal": "was previously removed and re-entered",
    "ice_reimbursement": "a written agreement by which ICE reimburses the costs is in force",
    "public_safety_risk": "an official has determined the person presents an unacceptable risk to public safety",
    "investigating_criminal_activity": "the officer is investigating criminal activity",
}

VALUE_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "detainer_form": DETAINER_FORMS,
    "ncic_hit": NCIC_HITS,
}
VALUE_PHRASES: Final[dict[str, str]] = {
    "detainer_form": "the detainer form is",
    "ncic_hit": "the NCIC check returned",
}

# Top-level fields of each record kind, for strict input validation.
CASE_FIELDS: Final = (
    "case_id",
    "release_eligible_at",
    "age",
    "current_charges",
    "convictions",
    "detainer_form",
    "time_zone",
    THREE_VALUED_FLAG,
    *CASE_FLAGS,
)
CHARGE_FIELDS: Final = ("category", "level", "felony_class")
CONVICTION_FIELDS: Final = (
    "category",
    "level",
    "felony_class",
    "years_ago",
    "years_since_release",
    "currently_in_custody",
)
FIELD_RECORD_FIELDS: Final = ("case_id", *FIELD_FLAGS, "ncic_hit")


# --- codes of the simulated pipeline ------------------------------------------------------------
# The simulation keeps these as integer codes in arrays (fast comparisons, indexes into tables of
# parameters) and as labels in tables and files. The order of the members is the order of the codes.


class Vocabulary(IntEnum):
    """An integer code with a label: `Status.NATIVE.label == "native"`."""

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def labels(cls) -> tuple[str, ...]:
        return tuple(member.label for member in cls)

    @classmethod
    def of(cls, label: str) -> Self:
        return cls[label.upper()]


class Status(Vocabulary):
    """A booked person's true immigration status; the statuses before NATURALIZED are noncitizens."""

    UNAUTHORIZED = 0
    LAWFUL_PERMANENT_RESIDENT = 1
    OTHER_LAWFUL = 2
    NATURALIZED = 3
    NATIVE = 4

    @property
    def noncitizen(self) -> bool:
        return self < Status.NATURALIZED


STATUSES: Final = Status.labels()
NONCITIZEN_STATUSES: Final = tuple(status.label for status in Status if status.noncitizen)


class Channel(Vocabulary):
    """How a detainer reaches the jail: a Secure Communities fingerprint match, or another ICE route
    (the Criminal Alien Program, 287(g))."""

    SECURE_COMMUNITIES = 0
    OTHER_ROUTES = 1


class Decision(Vocabulary):
    """A jail's decision on a detainer, from the strictest: where several policies apply, the lowest code governs."""

    DECLINE = 0
    REVIEW = 1
    HONOR = 2
