"""Benchmark: comparing policies for the United States over one year, with uncertainty.

6 policies × 20 replications on a local Dask cluster of 2 workers, through the one replication
runner (model/replications.py). Prints wall time, CPU time and peak memory (this process and the
worker processes) and the load average, beside the target (issue 11, "One shape for the whole
house"): ≤ 20 s on a 2-core machine.

    .venv/bin/python bench/compare.py [--replications 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import time

TARGET_SECONDS = 20.0
POLICIES = (
    "us/ice-request",
    "historical",
    "ct/trust-act-2013",
    "ca/trust-act-2013",
    "ny/nyc/local-law-58-2014",
    "nm/dona-ana/2014",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replications", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.workers > 1:
        # One Polars thread in this process, as in the worker processes (model/replications.py): a worker runs
        # here, and a second Polars thread beside the other workers would only oversubscribe the cores. Polars
        # reads it once, when it is imported.
        os.environ.setdefault("POLARS_MAX_THREADS", "1")
    from securecomm.comparison.compare import compare
    from securecomm.model.replications import Runner

    started = time.perf_counter()
    comparison = compare(
        "US",
        dt.date(2012, 1, 1),
        dt.date(2012, 12, 31),
        POLICIES,
        replications=args.replications,
        seed=args.seed,
        runner=Runner(workers=args.workers),
    )
    wall = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    # On a shared machine the wall time also measures the other jobs; the CPU time does not, and divided
    # by the workers it is the least wall time the run takes on idle cores. One worker is a thread of this
    # process (model/replications.py), so this process's CPU counts with the worker processes'.
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    honored = comparison.summary.levels["historical"]["detainers_honored"]
    print(f"US 2012, {len(POLICIES)} policies × {args.replications} replications on {args.workers} Dask workers")
    print(
        f"historical detainers honored: median {honored['median']:,.0f} ({honored['low']:,.0f}–{honored['high']:,.0f})"
    )
    print(
        f"wall time: {wall:.1f} s (target ≤ {TARGET_SECONDS:.0f} s) {'ok' if wall <= TARGET_SECONDS else 'ABOVE TARGET'}"
    )
    print(f"CPU time, this process and the worker processes: {cpu:.1f} s ({cpu / args.workers:.1f} s a worker)")
    print(
        f"peak RSS: {own.ru_maxrss / 1024:,.0f} MB in this process, "
        f"{children.ru_maxrss / 1024:,.0f} MB in the largest worker process"
    )
    print(f"load average at the end: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
