"""Cases from a jail extract described by a mapping file (one row per charge, or per case).

Rows sharing the mapping's `case_id` form one case. Each row is classified by its charge
text (a criminal charge, the immigration detainer itself, or another agency's hold); a
charge needs a category and a level, and a row that lacks either is kept in the accounting
as `not_mapped` and reported — its case is decided on what could be mapped and marked
incomplete. The detainer row's release disposition is what actually happened.

Everything is column work in Polars; quality issues are built as frames too, so an extract
of a million rows with many flagged rows costs no Python loop per row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import polars as pl

from securecomm.replay.actual import OUTCOME_OF_CUSTODY
from securecomm.replay.imported import ROWS_SCHEMA, ImportedCases, build_tables, provenance_frame
from securecomm.replay.mapping import LATEST_RELEASE, JailExtractMapping
from securecomm.replay.qa import QaReport, issues_frame, issues_where
from securecomm.replay.source import (
    ROW,
    SourceError,
    SourceTable,
    blank_redactions,
    parse_boolean,
    parse_date,
    parse_datetime,
    parse_integer,
    read_source,
    redactions,
    require_columns,
    text,
)

# Custody endings after which the person was out of local custody on that row: the moment
# the booking would have ended without the detainer, if it is the booking's last such row.
LOCAL_CUSTODY_ENDED: Final = ("released", "cancelled", "to_ice")
CASE: Final = "__case"  # internal names start with "__" so they never meet a source column


def _issues(
    frame: pl.DataFrame, check: str, message: pl.Expr, column: str | None = None, value: pl.Expr | None = None
) -> pl.DataFrame:
    """Issues of one check, one per row of `frame` (which has ROW and the case id)."""
    return issues_where(frame, check, message, row=ROW, case_id=CASE, column=column, value=value)


def _typed(table: SourceTable, mapping: JailExtractMapping) -> pl.DataFrame:
    """The declared columns parsed to their types; a value that does not parse is an error."""
    columns: list[pl.Series] = [table.frame.get_column(ROW)]
    for name, kind in mapping.columns.items():
        if kind.kind == "datetime":
            series = parse_datetime(table, name, kind.format or "")
        elif kind.kind == "date":
            series = parse_date(table, name, kind.format or "")
        elif kind.kind == "integer":
            series = parse_integer(table, name)
        elif kind.kind == "boolean":
            series = table.frame.select(parse_boolean(table, name, kind.true_values, kind.false_values)).to_series()
        else:
            series = table.frame.get_column(name).str.strip_chars()
        columns.append(series.alias(name))
    return pl.DataFrame(columns)


def _classify(data: pl.DataFrame, mapping: JailExtractMapping) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Kind, category, level and felony class of every row; issues for rows that cannot be charges."""
    spec = mapping.charges
    if spec is None:
        blank = [pl.lit(None, dtype=pl.String).alias(name) for name in ("__kind", "__category", "__level", "__class")]
        return data.with_columns(*blank, pl.lit(None, dtype=pl.String).alias("__text")), []
    charge_text = pl.concat_str([pl.col(column) for column in spec.text_columns], separator=" ", ignore_nulls=True)
    data = data.with_columns(charge_text.alias("__text"))
    classified = spec.categories.classify(data.get_column("__text"))
    data = pl.concat(
        [data, classified.select(pl.col("kind").alias("__kind"), pl.col("category").alias("__category"))],
        how="horizontal",
    )

    level = pl.lit(None, dtype=pl.String)
    felony_class = pl.lit(None, dtype=pl.String)
    level_known = pl.lit(False)
    codes = pl.col(spec.level.column).cast(pl.String) if spec.level.column else pl.lit(None, dtype=pl.String)
    if spec.level.column is not None:
        mapped = {code: value for code, value in spec.level.values.items() if value is not None}
        level = codes.replace_strict(
            list(mapped), [v.level for v in mapped.values()], default=None, return_dtype=pl.String
        )
        felony_class = codes.replace_strict(
            list(mapped), [v.felony_class for v in mapped.values()], default=None, return_dtype=pl.String
        )
        level_known = codes.is_in(list(mapped))
    for pattern, value in spec.level.text_rules:
        matches = ~level_known & pl.col("__text").str.to_uppercase().str.contains(pattern).fill_null(False)
        level = pl.when(matches).then(pl.lit(value.level)).otherwise(level)
        felony_class = pl.when(matches).then(pl.lit(value.felony_class, dtype=pl.String)).otherwise(felony_class)
        level_known = level_known | matches
    data = data.with_columns(level.alias("__level"), felony_class.alias("__class"))

    text_columns = ", ".join(spec.text_columns)
    unmapped = _issues(
        data.filter(pl.col("__kind").is_null()),
        "unmapped_charge",
        pl.when(pl.col("__text").is_null())
        .then(pl.lit("no charge text"))
        .otherwise(text("no rule of the category map recognises '{}'", pl.col("__text"))),
        text_columns,
        pl.col("__text"),
    )
    column = spec.level.column
    no_criminal_level = [code for code, value in spec.level.values.items() if value is None]
    if column is None:
        reason = pl.lit("no level rule matches the charge text")
    else:
        reason = (
            pl.when(codes.is_null())
            .then(pl.lit(f"column '{column}' is empty"))
            .when(codes.is_in(no_criminal_level))
            .then(text("the source codes it '{}', which the mapping reads as no criminal level", codes))
            .otherwise(text("level code '{}' is not in the mapping's table", codes))
        )
    without_level = _issues(
        data.filter((pl.col("__kind") == "charge") & pl.col("__level").is_null()),
        "charge_without_level",
        text("charge '{}' left out: {}", pl.col("__text"), reason),
        column,
        codes,
    )
    return data, [unmapped, without_level]


def _dispositions(data: pl.DataFrame, mapping: JailExtractMapping) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """How each row's custody and charge ended, by the mapping's disposition table."""
    spec = mapping.dispositions
    if spec is None:
        return data.with_columns(
            pl.lit("unknown").alias("__custody"),
            pl.lit("unknown").alias("__outcome"),
            pl.lit(False).alias("__bond"),
            pl.lit(None, dtype=pl.Datetime("us")).alias("__released"),
            pl.lit(None, dtype=pl.String).alias("__disposition"),
        ), []
    raw = pl.col(spec.column)
    table = spec.values
    codes = list(table)
    data = data.with_columns(
        raw.alias("__disposition"),
        raw.replace_strict(codes, [d.custody for d in table.values()], default="unknown").alias("__custody"),
        raw.replace_strict(codes, [d.charge for d in table.values()], default="unknown").alias("__outcome"),
        raw.replace_strict(codes, [d.bond_posted for d in table.values()], default=False, return_dtype=pl.Boolean)
        .fill_null(False)
        .alias("__bond"),
        (pl.col(spec.released_at) if spec.released_at else pl.lit(None, dtype=pl.Datetime("us"))).alias("__released"),
    )
    unknown = _issues(
        data.filter(raw.is_not_null() & ~raw.is_in(codes)),
        "unknown_disposition",
        text("release disposition '{}' is not in the mapping's table: its meaning is unknown", raw),
        spec.column,
        raw,
    )
    return data, [unknown]


def _date_checks(data: pl.DataFrame, mapping: JailExtractMapping) -> list[pl.DataFrame]:
    booked, released = mapping.booked_at, mapping.released_at
    row_released = mapping.dispositions.released_at if mapping.dispositions else None
    stamp = "%Y-%m-%d %H:%M"

    def out_of_order(later: str, earlier: str, code: str, message: str) -> pl.DataFrame:
        """Rows where the time in `later` comes before the one in `earlier`."""
        return _issues(
            data.filter(pl.col(later) < pl.col(earlier)),
            code,
            text(message, pl.col(later).dt.strftime(stamp), pl.col(earlier).dt.strftime(stamp)),
            later,
            pl.col(later),
        )

    found = []
    if booked and released:
        found.append(
            out_of_order(released, booked, "released_before_booked", "booking released {} before it was booked {}")
        )
    if booked and row_released:
        found.append(
            out_of_order(row_released, booked, "released_before_booked", "row released {} before the booking {}")
        )
    if released and row_released:
        found.append(
            _issues(
                data.filter(pl.col(row_released) > pl.col(released)),
                "released_after_booking_release",
                text(
                    "row released {}, after the booking's release {} (release eligibility is capped at the latter)",
                    pl.col(row_released).dt.strftime(stamp),
                    pl.col(released).dt.strftime(stamp),
                ),
                row_released,
                pl.col(row_released),
            )
        )
    return found


def _duplicates(data: pl.DataFrame, mapping: JailExtractMapping) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Flag rows repeated within a case, and cases that look alike on the mapping's key."""
    found = []
    if mapping.row_duplicate_key:
        key = [CASE, *mapping.row_duplicate_key]
        repeated = data.filter(pl.int_range(pl.len()).over(key) > 0)
        found.append(
            _issues(
                repeated,
                "duplicate_row",
                pl.lit(f"repeats an earlier row of its case in every field of {', '.join(mapping.row_duplicate_key)}"),
            )
        )
    flags = pl.DataFrame(schema={"case_id": pl.String, "duplicate_of": pl.String})
    if mapping.case_duplicate_key:
        key = list(mapping.case_duplicate_key)
        first = data.group_by(CASE, maintain_order=True).agg(pl.col(ROW).first(), *[pl.col(c).first() for c in key])
        alike = first.with_columns(pl.col(CASE).first().over(key).alias("duplicate_of")).filter(
            pl.col("duplicate_of") != pl.col(CASE)
        )
        flags = alike.select(pl.col(CASE).alias("case_id"), "duplicate_of")
        found.append(
            _issues(
                alike,
                "likely_duplicate",
                text(f"same {', '.join(key)} as case {{}}", pl.col("duplicate_of")),
                value=pl.col("duplicate_of"),
            )
        )
    return flags, found


def _cases(data: pl.DataFrame, mapping: JailExtractMapping) -> pl.DataFrame:
    """One row per case: the case fields, provenance and the actual outcome."""
    is_charge = (pl.col("__kind") == "charge") & pl.col("__level").is_not_null()
    is_detainer = pl.col("__kind") == "detainer"
    other = ~is_detainer & pl.col("__released").is_not_null()

    def last_of(column: str, rows: pl.Expr) -> pl.Expr:
        """The value on the last-released row among `rows`."""
        return pl.col(column).filter(rows).sort_by(pl.col("__released").filter(rows)).last()

    aggregations: list[pl.Expr] = [
        pl.col(ROW).alias("source_rows"),
        pl.col("__bond").any().alias("bond_posted"),
        (is_charge & (pl.col("__outcome") == "pending")).any().alias("pending_charges"),
        is_charge.sum().alias("charge_count"),
        is_detainer.sum().alias("detainer_count"),
        last_of("__custody", is_detainer).alias("detainer_custody"),
        last_of("__disposition", is_detainer).alias("actual_detail"),
        pl.col("__released").filter(is_detainer).max().alias("actual_released_at"),
        pl.col("__released").filter(other).max().alias("last_release"),
        last_of("__custody", other).alias("last_custody"),
        last_of("__disposition", other).alias("last_disposition"),
    ]
    if mapping.booked_at:
        aggregations.append(pl.col(mapping.booked_at).min().alias("booked_at"))
    if mapping.released_at:
        aggregations.append(pl.col(mapping.released_at).max().alias("released_at"))
    if isinstance(mapping.release_eligible_at, str) and mapping.release_eligible_at != LATEST_RELEASE:
        aggregations.append(pl.col(mapping.release_eligible_at).drop_nulls().first().alias("release_column"))
    if mapping.age:
        aggregations.append(pl.col(mapping.age).drop_nulls().first().alias("age"))
    if mapping.detainer_form and mapping.detainer_form.column:
        aggregations.append(pl.col(mapping.detainer_form.column).drop_nulls().first().alias("form_raw"))
    for fact, value in mapping.facts.items():
        if isinstance(value, str):
            # true if any row says so, false if a row says no and none says yes, else unknown
            aggregations.append(
                pl.when(pl.col(value).any()).then(True).when((~pl.col(value)).any()).then(False).alias(fact)
            )
    cases = data.group_by(CASE, maintain_order=True).agg(aggregations)

    if mapping.release_eligible_at == LATEST_RELEASE:
        release = pl.when(pl.col("last_custody").is_in(LOCAL_CUSTODY_ENDED)).then(pl.col("last_release"))
    elif isinstance(mapping.release_eligible_at, str):
        release = pl.col("release_column")
    else:
        release = pl.lit(None, dtype=pl.Datetime("us"))
    if mapping.released_at:
        # Rows' release times are often rounded and can fall after the person actually left: a
        # person was eligible for release no later than the moment the booking ended.
        release = pl.when(release.is_not_null()).then(pl.min_horizontal(release, pl.col("released_at")))
    outcome = pl.col("detainer_custody").replace_strict(OUTCOME_OF_CUSTODY, default="other", return_dtype=pl.String)
    recorded = pl.when(pl.col("detainer_count") > 0).then(outcome) if mapping.dispositions else pl.lit(None, pl.String)
    constants = [pl.lit(value).alias(fact) for fact, value in mapping.facts.items() if isinstance(value, bool)]
    return cases.with_columns(release.alias("release_eligible_at"), recorded.alias("actual_outcome"), *constants)


def _case_issues(cases: pl.DataFrame, mapping: JailExtractMapping) -> list[pl.DataFrame]:
    first = cases.with_columns(pl.col("source_rows").list.first().alias(ROW))
    found = [
        _issues(
            first.filter(pl.col("charge_count") == 0),
            "no_charge",
            pl.lit("no criminal charge could be mapped: the case is decided on its other facts alone"),
        )
    ]
    if mapping.charges is not None:
        found.append(
            _issues(
                first.filter(pl.col("detainer_count") == 0),
                "no_detainer_record",
                pl.lit("no row of the case is the immigration detainer"),
            )
        )
    unknown = first.filter(pl.col("release_eligible_at").is_null())
    value = pl.lit(None, dtype=pl.String)
    if mapping.release_eligible_at is None:
        reason = pl.lit("the mapping gives no source of release times")
    elif mapping.release_eligible_at != LATEST_RELEASE:
        reason = pl.lit(f"column '{mapping.release_eligible_at}' is empty")
    else:
        alone = pl.col("last_release").is_null() & (pl.col("detainer_count") > 0)
        reason = (
            pl.when(alone)
            .then(pl.lit("held on the immigration hold alone: no charge or other hold to be released from"))
            .when(pl.col("last_release").is_null())
            .then(pl.lit("no release time recorded"))
            .otherwise(
                text(
                    "the booking's last other row ended in '{}', not a release from local custody",
                    pl.col("last_disposition").fill_null("no disposition"),
                )
            )
        )
        if mapping.booked_at:
            ended = (
                pl.coalesce(pl.col("released_at"), pl.col("actual_released_at"))
                if mapping.released_at
                else (pl.col("actual_released_at"))
            )
            days = (ended - pl.col("booked_at")).dt.total_minutes() / 1440
            value = pl.when(alone).then(text("{} days booked", days.round(1)))
    found.append(_issues(unknown, "release_time_unknown", reason, value=value))
    return found


def _checks_run(mapping: JailExtractMapping) -> list[str]:
    """The checks that apply to what this mapping reads."""
    names = ["unmapped_charge", "charge_without_level"] if mapping.charges else []
    if mapping.dispositions:
        names.append("unknown_disposition")
    if mapping.detainer_form and mapping.detainer_form.column:
        names.append("unknown_value")
    if mapping.redaction_pattern:
        names.append("redacted_value")
    if mapping.row_duplicate_key:
        names.append("duplicate_row")
    if mapping.booked_at or mapping.released_at:
        names += ["released_before_booked", "released_after_booking_release"]
    if mapping.case_duplicate_key:
        names.append("likely_duplicate")
    names += ["no_charge", "no_detainer_record", "release_time_unknown"]
    return names


def _row_roles(data: pl.DataFrame) -> pl.DataFrame:
    """What each row became: a charge, the detainer, another hold, or not mapped (and why)."""
    unmapped = pl.col("__kind").is_null()
    no_level = (pl.col("__kind") == "charge") & pl.col("__level").is_null()
    role = pl.when(unmapped | no_level).then(pl.lit("not_mapped")).otherwise(pl.col("__kind"))
    detail = (
        pl.when(unmapped)
        .then(pl.lit("charge text not recognised"))
        .when(no_level)
        .then(pl.lit("charge level unknown"))
        .when(pl.col("__kind") == "charge")
        .then(pl.concat_str([pl.col("__category"), pl.col("__level")], separator=", "))
        .otherwise(pl.col("__text"))
    )
    return data.select(
        pl.col(ROW).alias("row"), pl.col(CASE).alias("case_id"), role.alias("role"), detail.alias("detail")
    ).cast(ROWS_SCHEMA)


def _detainer_forms(cases: pl.DataFrame, mapping: JailExtractMapping) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    form = mapping.detainer_form
    if form is None:
        return cases, []
    if form.constant is not None:
        return cases.with_columns(pl.lit(form.constant).alias("detainer_form")), []
    known = list(form.values)
    unknown = cases.filter(pl.col("form_raw").is_not_null() & ~pl.col("form_raw").is_in(known)).with_columns(
        pl.col("source_rows").list.first().alias(ROW)
    )
    issues = _issues(
        unknown,
        "unknown_value",
        text("detainer form '{}' is not in the mapping's table", pl.col("form_raw")),
        form.column,
        pl.col("form_raw"),
    )
    forms = pl.col("form_raw").replace_strict(known, list(form.values.values()), default=None, return_dtype=pl.String)
    return cases.with_columns(forms.alias("detainer_form")), [issues]


def import_extract(mapping: JailExtractMapping, path: Path, format_name: str) -> ImportedCases:
    """Read a source file as the mapping describes and build its cases, with full accounting."""
    table = read_source(
        path,
        delimiter=mapping.delimiter,
        encoding=mapping.encoding,
        null_values=mapping.null_values,
        columns=mapping.columns,
    )
    require_columns(table, mapping.columns, f"the mapping {mapping.display_name}")
    redacted = pl.DataFrame(schema={ROW: pl.UInt32, "column": pl.String, "value": pl.String})
    if mapping.redaction_pattern:
        redacted = redactions(table, list(mapping.columns), mapping.redaction_pattern)
        table = blank_redactions(table, list(mapping.columns), mapping.redaction_pattern)

    data = _typed(table, mapping).with_columns(pl.col(mapping.case_id).cast(pl.String).alias(CASE))
    missing_id = data.filter(pl.col(CASE).is_null())
    if not missing_id.is_empty():
        raise SourceError(f"{table.where(missing_id.item(0, ROW), mapping.case_id)}: no case id (the column is empty)")

    data, issues = _classify(data, mapping)
    data, disposition_issues = _dispositions(data, mapping)
    duplicate_flags, duplicate_issues = _duplicates(data, mapping)
    issues += disposition_issues + duplicate_issues + _date_checks(data, mapping)
    issues.append(
        redacted.join(data.select(ROW, CASE), on=ROW, how="left").select(
            pl.lit("redacted_value").alias("check"),
            pl.col(ROW).alias("row"),
            pl.col(CASE).alias("case_id"),
            "column",
            "value",
            pl.lit("redaction code read as no value").alias("message"),
        )
    )

    cases = _cases(data, mapping)
    issues += _case_issues(cases, mapping)
    cases, form_issues = _detainer_forms(cases, mapping)
    issues += form_issues
    cases = cases.rename({CASE: "case_id"})

    is_charge = (pl.col("__kind") == "charge") & pl.col("__level").is_not_null()
    offence = [
        pl.col(CASE).alias("case_id"),
        pl.col("__category").alias("category"),
        pl.col("__level").alias("level"),
        pl.col("__class").alias("felony_class"),
    ]
    charges = data.filter(is_charge).select(offence)
    # A sentence entered during the booking is a conviction by the time the person would be released.
    convictions = data.filter(is_charge & (pl.col("__outcome") == "convicted")).select(
        *offence,
        pl.lit(0.0).alias("years_ago"),
        pl.when(pl.col("__custody") == "released").then(0.0).otherwise(None).alias("years_since_release"),
    )
    fields = [
        "case_id",
        "release_eligible_at",
        "age",
        "detainer_form",
        "bond_posted",
        "pending_charges",
        *mapping.facts,
    ]
    tables = build_tables(
        cases.select([name for name in dict.fromkeys(fields) if name in cases.columns]), charges, convictions
    )

    all_issues = issues_frame(pl.concat([issues_frame(frame) for frame in issues]))
    report = QaReport.of(_checks_run(mapping), all_issues, rows=table.height, cases=cases.height)
    report = report.with_thresholds(mapping.qa)
    incomplete = sorted(report.incomplete_cases())
    provenance = provenance_frame(
        cases.join(duplicate_flags, on="case_id", how="left", maintain_order="left").with_columns(
            pl.lit(table.name).alias("source_file"),
            pl.col("duplicate_of").is_not_null().alias("likely_duplicate"),
            (~pl.col("case_id").is_in(incomplete)).alias("complete"),
        )
    )
    return ImportedCases(
        source=path,
        format=format_name,
        title=mapping.title,
        tables=tables,
        provenance=provenance,
        rows=_row_roles(data),
        qa=report,
        limitations=mapping.limitations,
        records_outcome=mapping.dispositions is not None,
        place=mapping.place,
    )
