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
from securecomm.model.stages.state import PlaceKeys, State, Streams

# The counted people who become records: each status's IDENT matches, then each noncitizen status's
# detainers by another route.
RECORD_KINDS = [(Channel.SECURE_COMMUNITIES, status, f"matched_{status.label}") for status in Status] + [
    (Channel.OTHER_ROUTES, status, f"other_route_{status.label}") for status in Status if status.noncitizen
]


def draw_records(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: the records (record, channel, fips, status, booking_at), grouped by segment — so by
    county, and so by the place each draw is keyed to (state.PlaceKeys) — and within a segment by kind."""
    segments = state.segments
    counts = np.column_stack([segments.get_column(column).to_numpy() for _, _, column in RECORD_KINDS])
    # One entry per counted person, segment by segment: the segment × kind cell it comes from.
    cell = np.repeat(np.arange(counts.size, dtype=np.uint32), counts.ravel())
    segment, kind = np.divmod(cell, len(RECORD_KINDS))
    # Codes in the Enums' own physical type (as_enum takes them as they are), and each segment's values
    # worked out per segment before they are repeated for its records.
    channel_codes = np.array([channel for channel, _, _ in RECORD_KINDS], dtype=np.uint8)[kind]
    status_codes = np.array([status for _, status, _ in RECORD_KINDS], dtype=np.uint8)[kind]
    count = segment.size
    counties = list(state.counties)
    county_codes = (
        segments.get_column("fips").replace_strict(counties, list(range(len(counties))), return_dtype=pl.UInt32)
    ).to_numpy()
    segment_start = segments.get_column("segment_start").to_numpy().astype("datetime64[m]")[segment]
    segment_minutes = (segments.get_column("days").to_numpy().astype(np.int64) * MINUTES_PER_DAY)[segment]
    record_counties = county_codes[segment]
    keys = PlaceKeys.of_counties(record_counties, state.counties)
    offset = np.floor(rng["booking_times"].random(keys) * segment_minutes).astype("timedelta64[m]")
    records = pl.DataFrame(
        {
            "record": np.arange(count, dtype=np.uint32),
            "channel": as_enum(channel_codes, Channel.labels()),
            "fips": as_enum(record_counties, counties),
            "status": as_enum(status_codes, Status.labels()),
            "booking_at": (segment_start + offset).astype("datetime64[us]"),
        }
    )
    return replace(state, records=records)
