"""The one replication runner: the same numbers in this process, on a local cluster and on a
cluster started as users start one (`dask scheduler`, `dask worker`)."""

import json
import os
import signal
import socket
import subprocess
import sys
from functools import partial
from pathlib import Path

import dask
import pytest
from typer.testing import CliRunner

import securecomm
from securecomm.cli import app
from securecomm.model.replications import IN_PROCESS, Runner, band

COMPARE = [
    "compare", "--place", "09001", "--start", "2013-06-01", "--end", "2014-06-30",
    "--policies", "us/ice-request,historical,ct/trust-act-2013", "--replications", "4", "--seed", "5", "--json",
]  # fmt: skip


# A builtin, so that the cluster's workers can unpickle it (they cannot import this test module).
square = partial(pow, exp=2)


def test_in_process_runs_in_index_order_and_reports_progress():
    seen = []
    assert IN_PROCESS.map(square, 4, lambda done, total: seen.append((done, total))) == [0, 1, 4, 9]
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_runner_is_one_of_three_kinds():
    with pytest.raises(ValueError, match="at least 1"):
        Runner(workers=0)
    with pytest.raises(ValueError, match="not both"):
        Runner(workers=2, scheduler="tcp://127.0.0.1:8786")


def test_a_local_cluster_has_one_worker_in_this_process_and_the_others_in_their_own():
    # The worker in this process starts at once, with the model imported; the others are processes.
    with Runner(workers=3)._client() as client:
        client.wait_for_workers(3, timeout=120)
        processes = sorted(client.run(os.getpid).values())
    assert processes.count(os.getpid()) == 1 and len(set(processes)) == 3


def test_the_band_is_the_median_and_the_5th_and_95th_percentiles():
    # 21 values 70, 73, ..., 130: median 100, 5th percentile 73, 95th 127 (linear interpolation).
    assert band([70 + 3 * i for i in range(21)]) == pytest.approx({"median": 100, "low": 73, "high": 127})
    assert band([4.0, 1.0]) == pytest.approx({"median": 2.5, "low": 1.15, "high": 3.85})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """Stop a command and everything it started (a worker's nanny starts the worker)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """`dask scheduler` and two `dask worker`s on 127.0.0.1, as separate commands, as users run them."""
    from dask.distributed import Client

    dask = Path(sys.executable).parent / "dask"
    directory = tmp_path_factory.mktemp("cluster")
    address = f"tcp://127.0.0.1:{_free_port()}"
    # The workers import securecomm from where this test does (the venv has it installed editable),
    # and run Polars on one thread, as LocalCluster's workers do.
    env = {**os.environ, "PYTHONPATH": str(Path(securecomm.__file__).parents[1]), "POLARS_MAX_THREADS": "1"}
    commands = [
        [dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
        *[
            [dask, "worker", address, "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
             "--local-directory", str(directory / f"worker-{n}"), "--name", f"worker-{n}"]
            for n in range(2)
        ],
    ]  # fmt: skip
    processes = []
    try:
        for command in commands:
            log = (directory / f"{len(processes)}.log").open("w")
            processes.append(
                subprocess.Popen(
                    command, cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for process in reversed(processes):
            _stop(process)


def test_compare_on_a_cluster_of_scheduler_and_workers_gives_the_in_process_numbers(scheduler):
    in_process = CliRunner().invoke(app, COMPARE)
    on_cluster = CliRunner().invoke(app, [*COMPARE, "--scheduler", scheduler])
    assert in_process.exit_code == 0, in_process.output
    assert on_cluster.exit_code == 0, on_cluster.output
    assert json.loads(on_cluster.stdout) == json.loads(in_process.stdout)
    band = json.loads(in_process.stdout)["policies"]["us/ice-request"]["detainers_issued"]
    assert band["low"] < band["high"]  # the replications differ: there is something to get wrong


def test_progress_on_a_cluster_counts_every_replication(scheduler):
    seen = []
    assert Runner(scheduler=scheduler).map(square, 5, lambda done, total: seen.append((done, total))) == [
        0, 1, 4, 9, 16,
    ]  # fmt: skip
    assert seen == [(done, 5) for done in range(1, 6)]


def test_an_unreachable_scheduler_is_a_clean_error():
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        result = CliRunner().invoke(app, [*COMPARE, "--scheduler", f"tcp://127.0.0.1:{_free_port()}"])
    assert result.exit_code == 2 and "error" in result.stderr
    result = CliRunner().invoke(app, [*COMPARE, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
    assert result.exit_code == 2 and "not both" in result.stderr
