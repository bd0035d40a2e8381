"""From counts to records: one record per person the pipeline branches on — each IDENT match
and each detainer by another route — with the county, status, channel and a booking time drawn
uniformly within the person's segment. Everyone else stays a count in the segments."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from securecomm.core.schema import Channel, Status
from securecomm.core.units import MINUTES_PER_DAY
from securecomm.model.parameters import Parameters
from securecomm.model.stages.codes import as_enum
from securecomm.model.stages.state import State, Streams


def _expand(segments: pl.DataFrame, prefix: str, statuses: list[Status]) -> tuple[np.ndarray, np.ndarray]:
    """One entry per counted person: the segment they came from and their status code."""
    segment_parts, status_parts = [], []
    for status in statuses:
        counts = segments.get_column(f"{prefix}{status.label}").to_numpy()
        segment_parts.append(np.repeat(np.arange(segments.height, dtype=np.uint32), counts))
        status_parts.append(np.full(segment_parts[-1].size, status, dtype=np.int64))
    return np.concatenate(segment_parts), np.concatenate(status_parts)


def draw_records(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: the records (record, channel, fips, status, booking_at)."""
    segments = state.segments
    matched_segments, matched_statuses = _expand(segments, "matched_", list(Status))
    routed_segments, routed_statuses = _expand(segments, "other_route_", [s for s in Status if s.noncitizen])
    segment = np.concatenate([matched_segments, routed_segments])
    channel_codes = np.repeat(
        [Channel.SECURE_COMMUNITIES, Channel.OTHER_ROUTES], [matched_segments.size, routed_segments.size]
    )
    count = segment.size
    counties = list(state.counties)
    county_codes = segments.get_column("fips").replace_strict(counties, list(range(len(counties)))).to_numpy()
    segment_start = segments.get_column("segment_start").to_numpy().astype("datetime64[m]")[segment]
    segment_minutes = segments.get_column("days").to_numpy()[segment].astype(np.int64) * MINUTES_PER_DAY
    offset = np.floor(rng["booking_times"].random(count) * segment_minutes).astype("timedelta64[m]")
    records = pl.DataFrame(
        {
            "record": np.arange(count, dtype=np.uint32),
            "channel": as_enum(channel_codes, Channel.labels()),
            "fips": as_enum(county_codes[segment], counties),
            "status": as_enum(np.concatenate([matched_statuses, routed_statuses]), Status.labels()),
            "booking_at": (segment_start + offset).astype("datetime64[us]"),
        }
    )
    return replace(state, records=records)
