"""`securecomm validate`: the model against every published figure, as a scorecard."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from securecomm.calibration.targets import TargetError, load_place_targets, load_targets
from securecomm.calibration.validate import (
    HeldOutFigure,
    NationalShare,
    Score,
    Scorecard,
    median_count_error,
    validate,
)
from securecomm.cli.common import (
    SchedulerOption,
    TargetsOption,
    WorkersOption,
    errors,
    fail,
    format_count,
    output_console,
    published_text,
    runner_or_default,
    within_mark,
)


def error_text(s: Score) -> str:
    """A score's error beside its tolerance, in the tolerance's own terms."""
    t = s.target
    bound = t.comparison == "at_least"
    if t.tolerance_unit == "points":
        difference = s.model_median - t.published
        return f"{difference:+.2f} ({'≥ −' if bound else '±'}{t.tolerance:.2f})"
    if t.tolerance_unit == "factor":
        ratio = s.model_median / t.published
        return f"×{ratio:.2f} ({'≥ ÷' if bound else '÷/×'}{t.tolerance:g})"
    return f"{s.rel_error:+.1%} ({'≥ −' if bound else '±'}{t.tolerance:.0%})"


def score_cells(s: Score) -> list[str]:
    """The cells a scorecard row ends with: period, published, the model's median and band, error, mark."""
    return [
        f"{s.target.start} → {s.target.end}",
        published_text(s.target),
        format_count(s.model_median),
        f"{format_count(s.low)} – {format_count(s.high)}",
        error_text(s),
        within_mark(s.within),
    ]


def render_places(card: Scorecard, console: Console) -> None:
    """The place scorecard: per place and figure, published vs the model's median and band."""
    table = Table(
        title=f"Place scorecard — {card.replications} replications (seed {card.seed}), parameters: {card.parameters}"
    )
    for column in ("place", "figure", "period", "published", "model median", "90% band", "error (tolerance)", ""):
        justify = "right" if column in ("published", "model median", "90% band", "error (tolerance)") else "left"
        table.add_column(column, justify=justify, overflow="fold")
    previous = None
    for s in sorted(card.scores, key=lambda s: (s.target.place == "US", s.target.place_name, s.target.end)):
        t = s.target
        if previous is not None and t.place_name != previous:
            table.add_section()
        table.add_row(f"{t.place_name} ({t.place})" if t.place_name != previous else "", t.metric, *score_cells(s))
        previous = t.place_name
    console.print(table)
    render_national_shares(card.national_shares, console)
    local = [s for s in card.scores if s.target.place != "US"]
    console.print(
        f"[bold]{card.within} of {len(card.scores)} place figures within tolerance; "
        f"{sum(s.within for s in local)} of {len(local)} outside the national rows[/]",
        highlight=False,
    )


def render(card: Scorecard, console: Console) -> None:
    table = Table(
        title=f"Validation scorecard — {card.replications} replications (seed {card.seed}), parameters: {card.parameters}"
    )
    for column in ("target", "use", "metric", "place", "period", "published", "model median", "90% band", "error", ""):
        justify = "right" if column in ("published", "model median", "90% band", "error") else "left"
        table.add_column(column, justify=justify, overflow="fold")
    for s in card.scores:
        t = s.target
        table.add_row(
            t.id,
            t.use,
            t.metric + ("" if t.channel == "secure_communities" else f" ({t.channel} routes)"),
            t.place,
            *score_cells(s),
        )
    console.print(table)
    for result in card.series:
        console.print(
            f"{within_mark(result.within)} {result.check.description}: {result.check.statistic} correlation of the medians with the "
            f"published series {result.value:.3f} (at least {result.check.at_least})",
            highlight=False,
        )
    render_national_shares(card.national_shares, console)
    if card.place_figures is not None and card.program is not None:
        figures = Table(title=f"The model's figures for {card.place}, {card.program[0]} → {card.program[1]}")
        figures.add_column("metric")
        figures.add_column("channel")
        figures.add_column("median", justify="right")
        figures.add_column("90% band", justify="right")
        for key, value in card.place_figures.items():
            metric, channel = key.split(":")
            figures.add_row(
                metric,
                "Secure Communities" if channel == "secure_communities" else "all routes",
                format_count(value["median"]),
                f"{format_count(value['low'])} – {format_count(value['high'])}",
            )
        console.print(figures)
        for fit in card.field_offices or []:
            informed = (
                f"{fit.place_figures} place figure{'s' if fit.place_figures != 1 else ''} in its area to fit it to"
                if fit.place_figures
                else "no place figure in its area: it stays at the nation's rates"
            )
            if fit.factor == 1:
                informed += " (the nation's value: not moved by the calibrated parameters)"
            bound = (
                " — at the bound of its range: the figures pull further than the assumed range" if fit.at_bound else ""
            )
            console.print(
                f"How far to trust it: ICE field office {fit.office} ({fit.counties} of the place's counties) finds "
                f"×{fit.ident:.2f} the nation's IDENT matches per submission, issues "
                f"×{fit.factor:.2f} the nation's detainers per match (range ×{fit.low:.2f} – ×{fit.high:.2f}) and "
                f"removes ×{fit.removal_convicted:.2f} of the nation's share of those it takes with a conviction "
                f"on record, ×{fit.removal_non_criminal:.2f} of those without, "
                f"{informed}{bound}. Place figures within tolerance: the scorecard above.",
                highlight=False,
            )
        render_held_out(card.held_out, console)
    colour = "green" if card.within == len(card.scores) else "yellow"
    console.print(f"[bold {colour}]{card.summary()}[/]", highlight=False)


def render_national_shares(shares: list[NationalShare] | None, console: Console) -> None:
    """The published shares of the nation's removals without a conviction, each against the model within
    the points of issue 16's test, and what consecutive cumulative figures imply for the removals between."""
    if not shares:
        return
    points = shares[0].points
    table = Table(
        title=f"The nation's share of removals without a conviction: the model within {points * 100:g} points of each "
        "published figure"
    )
    for column in ("figure", "source", "period", "published", "model median", "points", "", "implied since the last"):
        table.add_column(column, justify="left" if column in ("figure", "source", "") else "right", overflow="fold")
    for share in shares:
        t = share.target
        implied = (
            ""
            if share.published_since_previous is None or share.model_since_previous is None
            else f"{share.published_since_previous:.2f} published, {share.model_since_previous:.2f} model"
        )
        table.add_row(
            t.id,
            t.source,
            f"{t.start} → {t.end}",
            published_text(t),
            f"{share.model_median:.3f}",
            f"{share.difference * 100:+.1f}",
            within_mark(share.within),
            implied,
        )
    console.print(table)
    console.print(
        f'{sum(share.within for share in shares)} of {len(shares)} within {points * 100:g} points. "Implied since the '
        'last": the share of the removals between a cumulative figure and the one before it that the two published '
        "figures imply, weighted by the model's removals to each date. Figures that count the same way imply shares "
        "near each other's; one far from its neighbours says two figures count differently (docs/validation.md, "
        '"What ICE\'s two 20% figures count").',
        highlight=False,
    )


def render_held_out(figures: list[HeldOutFigure] | None, console: Console) -> None:
    """The place's figures as the shipped calibration predicted them with the place left out of its fit."""
    if figures is None:
        console.print("Leave one place out: not shown for parameters other than the shipped calibration.")
        return
    if not figures:
        console.print(
            "Leave one place out: the shipped calibration has no prediction of this place with it left out (no "
            "figure of it was fitted, its counties lie in several field offices, or the overlay was written "
            "without --leave-one-out).",
            highlight=False,
        )
        return
    table = Table(title="Leave one place out: the shipped fit's expected values, with the place's figures and without")
    for column in ("figure", "published", "joint fit", "place left out", "error left out", ""):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for f in figures:
        table.add_row(
            f.target.id,
            published_text(f.target),
            format_count(f.fitted),
            format_count(f.held_out),
            f"{f.held_out - f.target.published:+.2f}"
            if f.target.tolerance_unit == "points"
            else f"{f.relative_error:+.0%}",
            within_mark(f.within_held_out),
        )
    console.print(table)
    error = median_count_error(figures)
    console.print(
        f"How well the model predicts this place unseen: {sum(f.within_held_out for f in figures)} of {len(figures)} "
        "figures within tolerance with the place left out"
        + ("" if error is None else f"; median absolute error of its counts {error:.0%}")
        + ' (every place: docs/validation.md, "Joint fit and leave-one-place-out").',
        highlight=False,
    )


def validate_command(
    place: Annotated[
        str | None,
        typer.Option(
            help="Only the targets of this place (US, a state, a county FIPS; national and place tables), its "
            "figures over the program and its ICE field office's fit."
        ),
    ] = None,
    places: Annotated[
        bool,
        typer.Option(
            "--places",
            help="The place scorecard: the published figures of states, counties and cities "
            "(calibration/place_targets.csv) against the model.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    replications: Annotated[
        int | None, typer.Option(help="Replications, each with parameters drawn from their ranges (default: settings).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the replications (default: calibration/settings.yaml).")
    ] = None,
    vary_parameters: Annotated[
        bool, typer.Option(help="Draw parameters from their uncertainty ranges in each replication.")
    ] = True,
    targets_file: TargetsOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Score the model against every published figure (the validation scorecard).

    Per target: published value, model median and 90% band over replications, relative error,
    and whether it is within tolerance. Replications run on calibration/settings.yaml's number of
    local workers unless --workers or --scheduler says otherwise; the numbers do not depend on it.
    """
    runner = runner_or_default(workers, scheduler)
    try:
        if places and targets_file is not None:
            raise ValueError("--places scores the shipped place targets; --targets names another table")
        targets = load_place_targets() if places else None if targets_file is None else load_targets(targets_file)
        with Progress(
            TextColumn("replications"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=errors,
            transient=True,
        ) as bar:
            task = bar.add_task("replications", total=replications)
            card = validate(
                targets,
                place=place,
                replications=replications,
                seed=seed,
                vary_parameters=vary_parameters,
                runner=runner,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except (TargetError, ValueError, OSError) as error:
        raise fail(str(error)) from None
    if as_json:
        sys.stdout.write(json.dumps(card.to_dict(), indent=2) + "\n")
        return
    if places:
        render_places(card, output_console(200))
    else:
        render(card, output_console(200))
