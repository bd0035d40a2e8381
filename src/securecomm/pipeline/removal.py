"""Stage 8 — ICE custody and removal: a person transferred to ICE is removed, granted
relief or released; citizens wrongly transferred are released. Removal follows transfer
by a lognormal lag."""

from __future__ import annotations

import numpy as np

from securecomm.parameters import STATUSES, Parameters


def remove(
    status_codes: np.ndarray,
    transferred: np.ndarray,
    transfer_at: np.ndarray,
    removal_draw: np.ndarray,
    lag_draw: np.ndarray,
    parameters: Parameters,
) -> tuple[np.ndarray, np.ndarray]:
    """(removed, removal_at) for every record; NaT where not removed."""
    by_status = parameters.value("removal_probability")
    probability = np.array([by_status[status] for status in STATUSES])[status_codes]
    removed = transferred & (removal_draw < probability)
    lag = parameters.value("removal_lag_days")
    lag_days = np.minimum(lag["median"] * np.exp(lag["sigma"] * lag_draw), lag["max"])
    removal_at = transfer_at + (lag_days * 86400).astype("timedelta64[s]")
    return removed, np.where(removed, removal_at, np.datetime64("NaT"))
