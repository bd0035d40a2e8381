"""Benchmark: `securecomm validate` as shipped (issue 16): the national targets (or, with --places, the
place targets), calibration/settings.yaml's replications (100) on its local workers (2).

Prints the wall time beside its target, ≤ 10 minutes on a 2-core machine, the CPU time of this process
and of the worker processes, and the load average (on a shared machine the wall time also measures the
other jobs).

    .venv/bin/python bench/validate.py [--places] [--replications N]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

TARGET_MINUTES = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--places", action="store_true", help="score the place targets, as `validate --places`")
    parser.add_argument("--replications", type=int, default=None, help="default: calibration/settings.yaml's")
    args = parser.parse_args()
    # One Polars thread in this process, as in the worker processes (model/replications.py): validate runs on
    # local workers (settings.yaml: 2), one of them here, and a second Polars thread beside the other would
    # only oversubscribe the cores. Polars reads it once, when it is imported.
    os.environ.setdefault("POLARS_MAX_THREADS", "1")
    from securecomm.calibration.targets import load_place_targets
    from securecomm.calibration.validate import validate

    started, started_cpu = time.perf_counter(), time.process_time()
    card = validate(load_place_targets() if args.places else None, replications=args.replications)
    minutes = (time.perf_counter() - started) / 60
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    within = sum(score.within for score in card.scores)
    print(f"{card.replications} replications, {within} of {len(card.scores)} targets within tolerance")
    print(
        f"CPU time: {time.process_time() - started_cpu:.1f} s in this process, "
        f"{children.ru_utime + children.ru_stime:.1f} s in worker processes; load average {os.getloadavg()[0]:.1f}"
    )
    verdict = "ok" if minutes <= TARGET_MINUTES else "ABOVE TARGET"
    print(f"wall time: {minutes:.1f} min (target ≤ {TARGET_MINUTES:.0f} min) {verdict}")


if __name__ == "__main__":
    main()
