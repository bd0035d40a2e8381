"""Benchmark: `securecomm calibrate` on the shipped targets (issue "Check the model against reality").

Runs the whole calibration — populations for the nation 2008-2014, the fit, the ensemble
correction and the check — without writing the overlay, and prints the wall time beside its
target: under 30 minutes on a 2-core machine.

    .venv/bin/python bench/calibrate.py
"""

from __future__ import annotations

import time

from securecomm.calibration.fit import calibrate

TARGET_MINUTES = 30.0


def main() -> None:
    started = time.perf_counter()
    result = calibrate(
        progress=lambda message: print(f"  {time.perf_counter() - started:7.1f} s  {message}", flush=True)
    )
    minutes = (time.perf_counter() - started) / 60
    print(
        f"fitted {len(result.dims)} multipliers to {len(result.targets)} targets in {result.evaluations} evaluations; "
        f"loss {result.loss_start:.3f} → {result.loss_fitted:.3f} (one simulation), "
        f"{result.loss_ensemble_expected:.3f} (median over replications, expected)"
    )
    verdict = "ok" if minutes <= TARGET_MINUTES else "ABOVE TARGET"
    print(f"wall time: {minutes:.1f} min (target < {TARGET_MINUTES:.0f} min) {verdict}")


if __name__ == "__main__":
    main()
