"""Cases from the Deportation Data Project's ICE detainer table (one case per detainer record).

The DDP publishes ICE's detainer records with cleaned column names (its schema and sample
records are in ddp_ice_schema/ of the workspace's upstream data folder, ../shared/data). This
importer reads those columns (or the raw FOIA names, compared in lower case) and maps them as
the table in docs/replay.md says. ICE records the most
serious conviction but not its level; the level is taken only where the record implies it
(a sentence over a year; ICE threat level 3 for a convicted person), and a conviction whose
level cannot be told is reported, not guessed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import polars as pl

from securecomm.core.units import DAYS_PER_YEAR
from securecomm.replay.charges import ChargeMap, load_charge_map
from securecomm.replay.imported import ROWS_SCHEMA, ImportedCases, build_tables, provenance_frame
from securecomm.replay.qa import QaReport, issues_frame, issues_where
from securecomm.replay.source import (
    ROW,
    SourceTable,
    blank_redactions,
    parse_boolean,
    parse_date,
    parse_integer,
    parse_number,
    read_source,
    redactions,
    require_columns,
    text,
    years_between,
)

TITLE: Final = "Deportation Data Project: ICE detainer records"
# FOIA exemption codes ICE prints in place of withheld values: "(b)(6)", "(b)(7)(C)", …
REDACTION: Final = r"^\s*\(b\)\s*\(\d"
NULL_VALUES: Final = ("", "NA", "N/A")
DATE_FORMAT: Final = "%Y-%m-%d"

# Case field → the column names it may have (DDP's cleaned names first, then raw FOIA names).
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "prepare_date": ("detainer_prepare_date", "prepare_date"),
    "criminality": ("detainer_prepared_criminality", "detainer_criminality"),
    "threat_level": ("detainer_prep_threat_level", "detainer_threat_level"),
    "birth_year": ("birth_year",),
    "msc_charge": ("most_serious_conviction_charge", "msc_charge", "detainer_most_serious_conviction_charge"),
    "msc_conviction_date": ("msc_conviction_date", "detainer_most_serious_conviction_conviction_date"),
    "msc_sentence_days": ("msc_sentence_days", "detainer_most_serious_conviction_sentence_days"),
    "msc_sentence_months": ("msc_sentence_months", "detainer_most_serious_conviction_sentence_months"),
    "msc_sentence_years": ("msc_sentence_years", "detainer_most_serious_conviction_sentence_years"),
    "final_order": ("final_order_yes_no",),
    "aggravated_felony": ("aggravated_felony_yes_no",),
    "gang": ("criminal_street_gang_yes_no",),
    "case_category": ("case_category",),
    "detainer_type": ("detainer_type",),
    "lift_reason": ("detainer_lift_reason",),
}
OPTIONAL: Final[dict[str, tuple[str, ...]]] = {
    "felon": ("felon",),
    "prior_deport": ("prior_deport_yes_no",),
    "projected_release": ("projected_release_date",),
    "person": ("unique_identifier", "anonymized_identifier", "alien_number_unique_identifier"),
    "facility": ("detention_facility_code", "detainer_facility_code", "detainer_detention_facility_code"),
    "duplicate_likely": ("duplicate_likely",),
    "sheet_original": ("sheet_original",),
    "row_original": ("row_original",),
}
YES: Final = ("yes", "y", "true", "1")
NO: Final = ("no", "n", "false", "0")

# ICE's detainer lift reasons (DDP and NPR releases) → what actually happened.
LIFT_REASONS: Final[dict[str, str]] = {
    "Booked into Detention": "to_ice",
    "Detainer Declined by LEA": "declined",
    "No longer in State, Local, or Federal Custody": "released",
    "Early Release": "released",
    "Transferred": "transferred",
    "Case Closed": "cancelled",
    "Lifted": "cancelled",
    "Lifted - Lack of Space": "cancelled",
    "Lifted - Lack of Funds": "cancelled",
    "Prosecutorial Discretion": "cancelled",
    "United States Citizen Interviewed": "cancelled",
    "Alien Not Subject to Deportation": "cancelled",
    "Died": "other",
}
# The detainer form is the first word of ICE's description ("I247A - Immigration Detainer - …").
FORM_PATTERN: Final = r"^\s*I-?247([ADNX]?)\b"
# ICE's case category "[16] Reinstated Final Order": reinstatement (INA § 241(a)(5)) presupposes a
# prior removal and an illegal re-entry; "[3]", "[8C]" and "[16]" are final orders.
REINSTATED: Final = r"^\[16\]"
FINAL_ORDER_CATEGORY: Final = r"^\[(3|8C|16)\]"
DAYS_PER_MONTH: Final = DAYS_PER_YEAR / 12

CHECKS_RUN: Final = (
    "unmapped_conviction",
    "conviction_level_unknown",
    "unknown_value",
    "redacted_value",
    "conflicting_fields",
    "likely_duplicate",
    "release_time_unknown",
    "age_uncertain",
)
LIMITATIONS: Final = (
    "The records give no release date, so no hold deadline or hold-hours can be computed "
    "(a `projected_release_date` column, where a release has one, is used).",
    "Current charges are not recorded: for a person with pending charges the offence is unknown, "
    "so policies that look at current charges see none.",
    "Only the most serious conviction is recorded, without its level; it is a felony where the sentence "
    "exceeded a year and a misdemeanor where ICE's threat level is 3 for a convicted person, and otherwise "
    "left out (reported). Other convictions are unknown, so policies that count convictions are understated.",
    "The aggravated-felony and criminal-street-gang flags are read as recorded, though the Deportation Data "
    "Project is unsure how ICE uses them; no public-safety determination or judicial warrant is recorded.",
)


def _resolve(table: SourceTable) -> dict[str, str | None]:
    """The column used for each field: the first present candidate (required ones must exist)."""
    present = set(table.header)
    chosen: dict[str, str | None] = {}
    for field, candidates in REQUIRED.items():
        found = next((name for name in candidates if name in present), None)
        if found is None:
            require_columns(table, [candidates[0]], f"the ddp format's {field.replace('_', ' ')}")
        chosen[field] = found
    for field, candidates in OPTIONAL.items():
        chosen[field] = next((name for name in candidates if name in present), None)
    return chosen


def _dates_only(table: SourceTable, columns: list[str]) -> SourceTable:
    """Dates written as date-times at midnight (as Parquet exports do) become plain dates."""
    frame = table.frame.with_columns(pl.col(column).str.replace(r"[ T]00:00:00(\.0+)?$", "") for column in columns)
    return SourceTable(table.path, frame, table.first_row, table.header)


def import_ddp(path: Path, charge_map: ChargeMap | None = None) -> ImportedCases:
    """Read a DDP detainer table (.csv or .parquet) into cases, one per record."""
    charge_map = charge_map or load_charge_map()
    names = [name for candidates in (*REQUIRED.values(), *OPTIONAL.values()) for name in candidates]
    table = read_source(path, null_values=NULL_VALUES, lowercase_columns=True, columns=names)
    columns = _resolve(table)
    used = [name for name in columns.values() if name is not None]
    issues: list[pl.DataFrame] = []
    found = redactions(table, used, REDACTION)
    table = blank_redactions(table, used, REDACTION)
    dated = [columns[field] for field in ("prepare_date", "msc_conviction_date", "projected_release") if columns[field]]
    table = _dates_only(table, dated)

    c = columns
    frame = table.frame
    data = pl.DataFrame(
        {
            ROW: frame.get_column(ROW),
            "prepare_date": parse_date(table, c["prepare_date"], DATE_FORMAT),
            "conviction_date": parse_date(table, c["msc_conviction_date"], DATE_FORMAT),
            "birth_year": parse_integer(table, c["birth_year"]),
            "days": parse_number(table, c["msc_sentence_days"]),
            "months": parse_number(table, c["msc_sentence_months"]),
            "years": parse_number(table, c["msc_sentence_years"]),
            "criminality": frame.get_column(c["criminality"]),
            "threat_level": frame.get_column(c["threat_level"]).str.strip_chars(),
            "msc": frame.get_column(c["msc_charge"]),
            "case_category": frame.get_column(c["case_category"]),
            "detainer_type": frame.get_column(c["detainer_type"]),
            "lift_reason": frame.get_column(c["lift_reason"]).str.strip_chars(),
        }
    )
    flags = frame.select(
        parse_boolean(table, c[name], YES, NO).alias(name) for name in ("final_order", "aggravated_felony", "gang")
    )
    data = pl.concat([data, flags], how="horizontal")
    optional = {
        name: frame.get_column(c[name]) if c[name] else pl.Series(name, [None] * frame.height, dtype=pl.String)
        for name in ("felon", "person", "facility", "sheet_original", "row_original")
    }
    data = data.with_columns(pl.Series(name, values, dtype=pl.String) for name, values in optional.items())
    data = data.with_columns(
        (parse_boolean(table, c["prior_deport"], YES, NO) if c["prior_deport"] else pl.lit(None, pl.Boolean)).alias(
            "prior_deport"
        ),
        (parse_boolean(table, c["duplicate_likely"], YES, NO) if c["duplicate_likely"] else pl.lit(False)).alias(
            "ddp_duplicate"
        ),
        (
            parse_date(table, c["projected_release"], DATE_FORMAT).cast(pl.Datetime("us"))
            if c["projected_release"]
            else pl.lit(None, pl.Datetime("us"))
        ).alias("release_eligible_at"),
    )

    # The case id is ICE's own place for the record when the DDP kept it ("FY2026:328"), else our row.
    original = pl.concat_str([pl.col("sheet_original"), pl.col("row_original")], separator=":")
    data = data.with_columns(
        pl.when(original.is_not_null()).then(original).otherwise(text("row {}", pl.col(ROW))).alias("case_id")
    )
    data = data.with_columns(
        pl.when(pl.col("case_id").is_duplicated())
        .then(text("{}@row {}", pl.col("case_id"), pl.col(ROW)))
        .otherwise(pl.col("case_id"))
        .alias("case_id")
    )
    issues.append(
        found.join(data.select(ROW, "case_id"), on=ROW, how="left").select(
            pl.lit("redacted_value").alias("check"),
            pl.col(ROW).alias("row"),
            "case_id",
            "column",
            "value",
            pl.lit("redaction code read as no value").alias("message"),
        )
    )

    data = _convictions(data, charge_map)
    data = _facts(data)
    issues += _issues(data, columns)

    convictions = data.filter(pl.col("conviction_used")).select(
        "case_id",
        pl.col("msc_category").alias("category"),
        pl.col("msc_level").alias("level"),
        pl.lit(None, dtype=pl.String).alias("felony_class"),
        "years_ago",
        pl.lit(None, dtype=pl.Float64).alias("years_since_release"),
    )
    records = data.select(
        "case_id",
        "release_eligible_at",
        "age",
        "detainer_form",
        "pending_charges",
        "final_order",
        "aggravated_felony",
        pl.col("gang").alias("gang_database"),
        "prior_removal",
    )
    tables = build_tables(records, pl.DataFrame(schema={"case_id": pl.String}), convictions)

    duplicates = _duplicates(data)
    issues.append(issues_where(duplicates, "likely_duplicate", pl.col("reason"), row=ROW, case_id="case_id"))
    all_issues = issues_frame(pl.concat([issues_frame(frame) for frame in issues]))
    report = QaReport.of(CHECKS_RUN, all_issues, rows=table.height, cases=data.height)
    incomplete = report.incomplete_cases()
    provenance = provenance_frame(
        data.join(duplicates.select("case_id", "duplicate_of"), on="case_id", how="left", maintain_order="left").select(
            "case_id",
            pl.lit(table.name).alias("source_file"),
            pl.concat_list(pl.col(ROW)).alias("source_rows"),
            "release_eligible_at",
            "actual_outcome",
            pl.col("lift_reason").alias("actual_detail"),
            (pl.col("duplicate_of").is_not_null() | pl.col("ddp_duplicate").fill_null(False)).alias("likely_duplicate"),
            "duplicate_of",
            (~pl.col("case_id").is_in(sorted(incomplete))).alias("complete"),
        )
    )
    rows = data.select(
        pl.col(ROW).alias("row"),
        "case_id",
        pl.lit("detainer").alias("role"),
        pl.lit("one detainer record").alias("detail"),
    ).cast(ROWS_SCHEMA)
    return ImportedCases(
        source=path,
        format="ddp",
        title=TITLE,
        tables=tables,
        provenance=provenance,
        rows=rows,
        qa=report,
        limitations=LIMITATIONS,
        records_outcome=True,
    )


def _convictions(data: pl.DataFrame, charge_map: ChargeMap) -> pl.DataFrame:
    """The most serious conviction: category from the charge map, level only where the record implies it."""
    classified = charge_map.classify(data.get_column("msc"))
    sentence_days = pl.sum_horizontal(
        pl.col("days"), pl.col("months") * DAYS_PER_MONTH, pl.col("years") * DAYS_PER_YEAR
    )
    has_sentence = pl.any_horizontal(pl.col(name).is_not_null() for name in ("days", "months", "years"))
    convicted = pl.col("criminality").str.to_lowercase().str.contains("convicted").fill_null(False)
    level = (
        # A sentence longer than a year can only follow an offence punishable by more than a year.
        pl.when(has_sentence & (sentence_days > DAYS_PER_YEAR))
        .then(pl.lit("felony"))
        # ICE Level 3: convicted only of crimes punishable by less than a year (2011 ICE memo, via DDP).
        .when(convicted & (pl.col("threat_level") == "3"))
        .then(pl.lit("misdemeanor"))
        .otherwise(None)
    )
    data = pl.concat(
        [data, classified.select(pl.col("kind").alias("msc_kind"), pl.col("category").alias("msc_category"))],
        how="horizontal",
    )
    years_ago = years_between(pl.col("prepare_date"), pl.col("conviction_date"))
    return data.with_columns(level.alias("msc_level"), years_ago.alias("years_ago")).with_columns(
        (
            pl.col("msc").is_not_null()
            & (pl.col("msc_kind") == "charge")
            & pl.col("msc_level").is_not_null()
            & (pl.col("years_ago") >= 0).fill_null(False)
        ).alias("conviction_used")
    )


def _facts(data: pl.DataFrame) -> pl.DataFrame:
    lower_age = pl.col("prepare_date").dt.year() - pl.col("birth_year") - 1
    form_letter = pl.col("detainer_type").str.extract(FORM_PATTERN, 1)
    return data.with_columns(
        # Born in year Y, on a date in year D the person is D−Y−1 or D−Y: the lower bound, when adult.
        pl.when(lower_age >= 18).then(lower_age).otherwise(None).alias("age"),
        pl.when(form_letter.is_not_null()).then(text("I-247{}", form_letter)).otherwise(None).alias("detainer_form"),
        pl.col("criminality").str.to_lowercase().str.contains("pending").fill_null(False).alias("pending_charges"),
        (
            pl.col("case_category").str.contains(REINSTATED).fill_null(False) | pl.col("prior_deport").fill_null(False)
        ).alias("prior_removal"),
        pl.col("lift_reason")
        .replace_strict(LIFT_REASONS, default="other", return_dtype=pl.String)
        .fill_null("open")
        .alias("actual_outcome"),
    )


def _number_text(value: pl.Expr) -> pl.Expr:
    """74.0 → "74", 2.5 → "2.5"."""
    whole = value == value.floor()
    return pl.when(whole).then(value.cast(pl.Int64).cast(pl.String)).otherwise(value.cast(pl.String))


def _issues(data: pl.DataFrame, columns: dict[str, str | None]) -> list[pl.DataFrame]:
    """Every record the importer could not map in full, with the reason (column work, no row loop)."""
    c = columns

    def where(
        condition: pl.Expr, check: str, message: pl.Expr, column: str | None, value: pl.Expr | None = None
    ) -> pl.DataFrame:
        return issues_where(
            data.filter(condition.fill_null(False)),
            check,
            message,
            row=ROW,
            case_id="case_id",
            column=column,
            value=value,
        )

    msc = pl.col("msc")
    recognised = pl.col("msc_kind") == "charge"
    sentence = pl.concat_str(
        [text("{} " + unit, _number_text(pl.col(unit))) for unit in ("years", "months", "days")],
        separator=", ",
        ignore_nulls=True,
    )
    sentence = pl.when(sentence == "").then(pl.lit("no sentence")).otherwise(sentence)
    felon = pl.col("felon").str.to_lowercase().str.starts_with("not")
    return [
        where(
            msc.is_not_null() & ~recognised.fill_null(False),
            "unmapped_conviction",
            text("conviction '{}' left out: no rule of the category map recognises it", msc),
            c["msc_charge"],
            msc,
        ),
        where(
            msc.is_not_null() & recognised & pl.col("msc_level").is_null(),
            "conviction_level_unknown",
            text(
                "conviction '{}' left out: its level cannot be told ({}; threat level {})",
                msc,
                sentence,
                pl.col("threat_level").fill_null("none"),
            ),
            c["msc_charge"],
            msc,
        ),
        where(
            msc.is_not_null() & recognised & pl.col("msc_level").is_not_null() & pl.col("years_ago").is_null(),
            "unmapped_conviction",
            text("conviction '{}' left out: no conviction date", msc),
            c["msc_conviction_date"],
        ),
        where(
            msc.is_not_null() & recognised & pl.col("msc_level").is_not_null() & (pl.col("years_ago") < 0),
            "unmapped_conviction",
            text("conviction '{}' left out: dated after the detainer was prepared", msc),
            c["msc_conviction_date"],
            pl.col("conviction_date"),
        ),
        where(
            pl.col("release_eligible_at").is_null(),
            "release_time_unknown",
            pl.lit("no release date in the record" if c["projected_release"] else "the source has no release date"),
            c["projected_release"],
        ),
        where(
            pl.col("birth_year").is_not_null() & pl.col("age").is_null(),
            "age_uncertain",
            text("born {}: may be under 18, so the age is left unknown", pl.col("birth_year")),
            c["birth_year"],
            pl.col("birth_year"),
        ),
        where(
            pl.col("detainer_type").is_not_null() & pl.col("detainer_form").is_null(),
            "unknown_value",
            text("detainer type '{}' names no I-247 form", pl.col("detainer_type")),
            c["detainer_type"],
            pl.col("detainer_type"),
        ),
        where(
            pl.col("lift_reason").is_not_null() & ~pl.col("lift_reason").is_in(list(LIFT_REASONS)),
            "unknown_value",
            text("lift reason '{}' is not in the importer's table", pl.col("lift_reason")),
            c["lift_reason"],
            pl.col("lift_reason"),
        ),
        where(
            pl.col("aggravated_felony") & felon,
            "conflicting_fields",
            text("aggravated_felony_yes_no is YES but felon says '{}'; the yes/no flag is used", pl.col("felon")),
            c["felon"],
            pl.col("felon"),
        ),
        where(
            pl.col("final_order").not_() & pl.col("case_category").str.contains(FINAL_ORDER_CATEGORY),
            "conflicting_fields",
            text(
                "final_order_yes_no is NO but the case category is '{}'; final_order_yes_no is used",
                pl.col("case_category"),
            ),
            c["case_category"],
            pl.col("case_category"),
        ),
    ]


def _duplicates(data: pl.DataFrame) -> pl.DataFrame:
    """Records that repeat ICE's own row, records of one person, day and facility, and DDP's own flag."""

    def repeats(key: list[str], what: str) -> pl.DataFrame:
        known = pl.all_horizontal(pl.col(column).is_not_null() for column in key)
        first = pl.when(known).then(pl.col("case_id").first().over(key)).alias("duplicate_of")
        found = data.with_columns(first).filter(pl.col("duplicate_of").is_not_null())
        return found.filter(pl.col("duplicate_of") != pl.col("case_id")).select(
            ROW, "case_id", "duplicate_of", text(f"same {what} as {{}}", pl.col("duplicate_of")).alias("reason")
        )

    flagged_by_ddp = data.filter(pl.col("ddp_duplicate").fill_null(False)).select(
        ROW,
        "case_id",
        pl.lit(None, dtype=pl.String).alias("duplicate_of"),
        pl.lit("the Deportation Data Project flags it duplicate_likely").alias("reason"),
    )
    return pl.concat(
        [
            repeats(["sheet_original", "row_original"], "original ICE sheet and row"),
            repeats(["person", "prepare_date", "facility"], "person, prepare date and facility"),
            flagged_by_ddp,
        ]
    ).unique(subset=["case_id"], keep="first", maintain_order=True)
