"""The calibration surrogate: expected values of targets under candidate parameters, from one
simulated population (docs/validation.md, "How the fit works", steps 2–3).

The population is simulated with the fitted Bernoulli stages *saturated* (`saturated`): ICE issues
a detainer to everyone it could, picks up everyone held and removes everyone it can, so that every
record carries the furthest stage it could reach. A target's expected value under candidate
parameters is then a weighted count of records: a record's weight is the product of the chances of
the stages the target needs, times the likelihood ratio of the record being there at all (candidate
over simulated). Both are the stage modules' own probability functions; records that share every
input of those functions form a cell, so an evaluation is a few small dot products.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from securecomm.calibration.targets import COUNTS, SHARES, Target, count_mask, evaluate_targets
from securecomm.core.places import counties as county_table
from securecomm.core.schema import Channel, Status
from securecomm.model.metrics import Metric
from securecomm.model.parameters import Parameters
from securecomm.model.stages import bookings, iafis, ident, issuance, jail, lesc, other_routes, removal

# The parameters whose effect the reweighting knows: those the probability functions below read.
REWEIGHTED = (
    bookings.NONCITIZEN_BOOKING_RATIO,
    ident.SUBMISSION_SHARE,
    ident.RECORD_PROBABILITY,
    ident.FIELD_OFFICE_FACTOR,
    iafis.RECORD_RATIO,
    other_routes.RATE,
    issuance.ERAS,
    issuance.FIELD_OFFICE_FACTOR,
    issuance.COUNTY_FACTOR,
    issuance.RAMP_START,
    issuance.RAMP_MONTHS,
    jail.PICKUP_PROBABILITY,
    removal.BY_STATUS,
    removal.FIELD_OFFICE_CONVICTED,
    removal.FIELD_OFFICE_NON_CRIMINAL,
)
# The Bernoulli stages simulated at certainty and reweighted afterwards.
SATURATED = (
    issuance.ERAS,
    issuance.FIELD_OFFICE_FACTOR,
    issuance.COUNTY_FACTOR,  # 1: every other-route detainer kept
    issuance.RAMP_START,  # 1: no ramp-up after activation
    jail.PICKUP_PROBABILITY,
    removal.BY_STATUS,
    removal.LEVEL_1_PROBABILITY,
    removal.FIELD_OFFICE_CONVICTED,
    removal.FIELD_OFFICE_NON_CRIMINAL,
)
# The one segment count that a reweighted parameter moves, and the chance that moves it.
FINGERPRINTS_CHECKED = "fingerprints_checked"
# Cells keep the whole months since a county's activation up to this many (later ones share a cell): the
# reweighting is exact for a ramp-up after activation of at most this many months (the fit's range of
# activation_ramp_months reaches 12).
RAMP_MONTHS_KEPT = 12


def saturated(parameters: Parameters) -> Parameters:
    """The fitted Bernoulli stages set to certainty: every possible detainer, pickup and removal."""

    def ones(value: Any) -> Any:
        if isinstance(value, Mapping) and "classification" in value:
            return {**value, "probability": dict.fromkeys(value["probability"], 1.0)}
        if isinstance(value, Mapping):
            return {key: (1.0 if v > 0 else 0.0) for key, v in value.items()}
        return 1.0

    return parameters.replace_values(
        {name: tuple((start, ones(v)) for start, v in parameters[name].dated_values) for name in SATURATED},
        f"{parameters.label} (saturated)",
    )


def _ratio(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """new / old, 0 where the simulated chance was 0 (no record there to reweight)."""
    return np.divide(new, old, out=np.zeros_like(new, dtype=np.float64), where=old > 0)


class StageVector(NamedTuple):
    """The records a count selects, by cell, and the pipeline stage they have reached."""

    stage: str
    counts: np.ndarray


@dataclass
class Surrogate:
    """Expected values of targets under candidate parameters, from one saturated population."""

    base: Parameters  # the (unsaturated) parameters the population was drawn with
    # One row per cell, the inputs of the stages' probability functions: status, sc (an IDENT
    # match), activated, with_conviction (a prior conviction), booking_day and release_day (each the
    # first day of the value in force of the dated parameters read on that day), issuance_label,
    # field_office (the county's ICE area of responsibility), county (the county, where it has a factor of
    # its own; "" elsewhere), level_1, ramp_month (whole months since the county's activation, at most
    # RAMP_MONTHS_KEPT; RAMP_MONTHS_KEPT for other routes), non_criminal (no conviction on record at the match).
    cells: pl.DataFrame
    targets: list[Target]
    constants: dict[str, float]  # targets evaluated on the segments (stocks, segment counts)
    vectors: dict[str, tuple[StageVector, StageVector | None]] = field(default_factory=dict)
    # The vectors stacked by stage as sparse matrices (a place's target counts few cells), made on first use.
    _stacked: tuple[dict[str, Any], dict[str, tuple[tuple[str, int], tuple[str, int] | None]]] | None = field(
        default=None, repr=False
    )

    @classmethod
    def build(
        cls,
        base: Parameters,
        segments: pl.DataFrame,
        records: pl.DataFrame,
        targets: Sequence[Target],
        simulated: list[str],
    ) -> Surrogate:
        activation = county_table().select(pl.col("fips"), pl.col("sc_activation_date"))
        frame = records.with_columns(pl.col("fips").cast(pl.String).alias("fips_code")).join(
            activation.rename({"fips": "fips_code"}), on="fips_code", how="left"
        )
        booking_days = frame.get_column("booking_at").to_numpy().astype("datetime64[D]")
        release_days = frame.get_column("release_eligible_at").to_numpy().astype("datetime64[D]")
        keys = pl.DataFrame(
            {
                "status": frame.get_column("status").to_physical().cast(pl.Int64),
                "sc": frame.get_column("channel") == Channel.SECURE_COMMUNITIES.label,
                "activated": (
                    frame.get_column("booking_at").dt.date() >= frame.get_column("sc_activation_date")
                ).fill_null(False),
                # only an unauthorized IDENT match's prior conviction moves its weight
                "with_conviction": (
                    (frame.get_column("channel") == Channel.SECURE_COMMUNITIES.label)
                    & (frame.get_column("status") == Status.UNAUTHORIZED.label)
                    & (frame.get_column("true_convictions") > 0)
                ),
                "other_route_day": base.value_starts(other_routes.RATE, booking_days),
                "era_day": base.value_starts(issuance.ERAS, booking_days),
                "issuance_label": frame.get_column("issuance_label").fill_null(""),  # "": no label, no detainer
                "field_office": issuance.field_offices_of(frame.get_column("fips_code")),
                "county": frame.get_column("fips_code").replace_strict(
                    {code: code for code in base.value(issuance.COUNTY_FACTOR)}, default=""
                ),
                "ramp_month": np.where(
                    (frame.get_column("channel") == Channel.SECURE_COMMUNITIES.label).to_numpy(),
                    np.minimum(
                        np.nan_to_num(
                            issuance.months_since_activation(
                                booking_days, issuance.activation_days_of(frame.get_column("fips_code"))
                            ),
                            nan=RAMP_MONTHS_KEPT,
                        ),
                        RAMP_MONTHS_KEPT,
                    ),
                    RAMP_MONTHS_KEPT,
                ),
                "level_1": frame.get_column("ice_level") == lesc.LEVEL_1,
                "non_criminal": frame.get_column("ice_level") == lesc.NON_CRIMINAL,
                "release_day": base.value_starts(jail.PICKUP_PROBABILITY, release_days),
            }
        )
        cells = keys.unique(maintain_order=True).with_row_index("cell")
        cell_of = (
            keys.join(cells, on=list(keys.columns), how="left", maintain_order="left").get_column("cell").to_numpy()
        )
        surrogate = cls(base, cells.drop("cell"), list(targets), {})
        record_targets = [t for t in targets if t.metric in COUNTS or t.metric in SHARES]
        constant_targets = [t for t in targets if t not in record_targets]
        surrogate.constants = evaluate_targets(constant_targets, segments, records, simulated)
        size = cells.height

        def vector(target: Target, count: Metric) -> StageVector:
            codes = target.counties()
            chosen = None if len(codes) == len(simulated) else codes
            mask = count_mask(records, count, target.channel, chosen, target.start, target.end)
            return StageVector(count.stage, np.bincount(cell_of[mask], minlength=size).astype(np.float64))

        for target in record_targets:
            if target.metric in COUNTS:
                surrogate.vectors[target.id] = (vector(target, COUNTS[target.metric]), None)
            else:
                share = SHARES[target.metric]
                surrogate.vectors[target.id] = (vector(target, share.numerator), vector(target, share.denominator))
        return surrogate

    def _presence(self, candidate: Parameters) -> np.ndarray:
        """Each cell's likelihood ratio of being in the population at all, candidate over simulated."""
        base, cells = self.base, self.cells
        status = cells.get_column("status").to_numpy()
        sc = cells.get_column("sc").to_numpy()
        activated = cells.get_column("activated").to_numpy()
        booked = _ratio(bookings.booking_weight(status, candidate), bookings.booking_weight(status, base))
        offices = cells.get_column("field_office")
        match_new = ident.submission_probability(candidate) * ident.match_probability(
            status, ident.field_office_factor(offices, candidate), candidate
        )
        match_old = ident.submission_probability(base) * ident.match_probability(
            status, ident.field_office_factor(offices, base), base
        )
        # An unauthorized IDENT match is more likely to have a prior conviction (iafis); the split of
        # the matched between with and without one moves with the candidate.
        with_new = iafis.ident_match_share_with_conviction(ident.unauthorized_match_probability(candidate), candidate)
        with_old = iafis.ident_match_share_with_conviction(ident.unauthorized_match_probability(base), base)
        with_conviction = cells.get_column("with_conviction").to_numpy()
        enriched = sc & (status == Status.UNAUTHORIZED)
        record_ratio = np.where(
            enriched,
            np.where(
                with_conviction,
                with_new / with_old if with_old > 0 else 0.0,
                (1 - with_new) / (1 - with_old) if with_old < 1 else 0.0,
            ),
            1.0,
        )
        # In an activated county an other-route record is a noncitizen IDENT did not match:
        # submitted and missed, or never submitted. Elsewhere nobody is checked.
        not_matched = np.where(activated, _ratio(1 - match_new, 1 - match_old), 1.0)
        days = cells.get_column("other_route_day").to_numpy()
        routed = _ratio(
            other_routes.detainer_probability(days, activated, candidate),
            other_routes.detainer_probability(days, activated, base),
        )
        return booked * record_ratio * np.where(sc, _ratio(match_new, match_old), not_matched * routed)

    def stage_weights(self, candidate: Parameters) -> dict[str, np.ndarray]:
        """Each cell's weight at each pipeline stage under candidate parameters."""
        cells = self.cells
        sc = cells.get_column("sc").to_numpy()
        era_days = cells.get_column("era_day").to_numpy()
        labels = cells.get_column("issuance_label")
        labels = labels.cast(pl.Enum(labels.unique().sort().to_list()))
        county = issuance.county_factor(cells.get_column("county"), candidate)
        chance = (
            issuance.detainer_probability(era_days, labels, candidate)
            * issuance.field_office_factor(cells.get_column("field_office"), candidate)
            * county
        )
        if candidate.value(issuance.RAMP_MONTHS) > RAMP_MONTHS_KEPT:
            raise ValueError(f"a ramp-up after activation longer than {RAMP_MONTHS_KEPT} months: cells keep fewer")
        chance = chance * issuance.activation_ramp(cells.get_column("ramp_month").to_numpy(), candidate)
        issue = np.where(sc, np.minimum(chance, 1.0), np.minimum(county, 1.0))
        pickup = jail.pickup_probability(cells.get_column("release_day").to_numpy(), candidate)
        removed = removal.removal_chance(
            cells.get_column("status").to_numpy(),
            cells.get_column("level_1").to_numpy(),
            cells.get_column("non_criminal").to_numpy(),
            cells.get_column("field_office"),
            candidate,
        )
        weights = {"match": self._presence(candidate)}
        weights["issue"] = weights["match"] * issue
        weights["hold"] = weights["issue"]  # the jail's policies, not a fitted chance, decide the hold
        weights["pickup"] = weights["hold"] * np.clip(pickup, 0, 1)
        weights["removal"] = weights["pickup"] * removed
        return weights

    def _stack(self) -> tuple[dict[str, Any], dict[str, tuple[tuple[str, int], tuple[str, int] | None]]]:
        """Every vector as a row of one sparse matrix per stage, and each target's rows."""
        from scipy import sparse

        if self._stacked is None:
            rows: dict[str, list[Any]] = {}

            def slot(vector: StageVector) -> tuple[str, int]:
                stage_rows = rows.setdefault(vector.stage, [])
                stage_rows.append(sparse.csr_matrix(vector.counts.reshape(1, -1)))
                return vector.stage, len(stage_rows) - 1

            slots = {
                target_id: (slot(numerator), None if denominator is None else slot(denominator))
                for target_id, (numerator, denominator) in self.vectors.items()
            }
            self._stacked = ({stage: sparse.vstack(r, format="csr") for stage, r in rows.items()}, slots)
        return self._stacked

    def values(self, candidate: Parameters) -> dict[str, float]:
        weights = self.stage_weights(candidate)
        values = dict(self.constants)
        submitted = ident.submission_probability(candidate) / ident.submission_probability(self.base)
        for target in self.targets:
            if target.metric == FINGERPRINTS_CHECKED:
                values[target.id] *= submitted
        matrices, slots = self._stack()
        counted = {stage: matrix @ weights[stage] for stage, matrix in matrices.items()}
        for target_id, ((top_stage, top_row), denominator) in slots.items():
            top = float(counted[top_stage][top_row])
            if denominator is None:
                values[target_id] = top
            else:
                bottom = float(counted[denominator[0]][denominator[1]])
                values[target_id] = top / bottom if bottom else math.nan
        return values
