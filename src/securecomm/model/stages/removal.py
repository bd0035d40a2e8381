"""Stage 8 — ICE custody and removal: a person transferred to ICE is removed, granted
relief or released (Level 1 records, detained and barred from most relief, are nearly
always removed); citizens wrongly transferred are released. Removal follows transfer
by a lognormal lag."""

from __future__ import annotations

import numpy as np

from securecomm.model.parameters import STATUSES, Parameters


def removal_chance(status_codes: np.ndarray, level_1: np.ndarray, parameters: Parameters) -> np.ndarray:
    """Each transferred person's chance of removal: by status, or the Level 1 chance for a
    noncitizen whose known record is Level 1 (citizens are never removed)."""
    by_status = parameters.value("removal_probability")
    probability = np.array([by_status[status] for status in STATUSES])[status_codes]
    return np.where(level_1 & (probability > 0), parameters.value("level_1_removal_probability"), probability)


def remove(
    status_codes: np.ndarray,
    level_1: np.ndarray,
    transferred: np.ndarray,
    transfer_at: np.ndarray,
    removal_draw: np.ndarray,
    lag_draw: np.ndarray,
    parameters: Parameters,
) -> tuple[np.ndarray, np.ndarray]:
    """(removed, removal_at) for every record; NaT where not removed."""
    probability = removal_chance(status_codes, level_1, parameters)
    removed = transferred & (removal_draw < probability)
    lag = parameters.value("removal_lag_days")
    lag_days = np.minimum(lag["median"] * np.exp(lag["sigma"] * lag_draw), lag["max"])
    removal_at = transfer_at + (lag_days * 86400).astype("timedelta64[s]")
    return removed, np.where(removed, removal_at, np.datetime64("NaT"))
