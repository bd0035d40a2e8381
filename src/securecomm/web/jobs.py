"""The lab's comparisons as background jobs: queued in a small SQLite file, run one at a time.

A job is named by its cache key (`LabRequest.key`: the inputs and the model, hashed), so asking
the same question again finds the job, queued, running or done, and never runs it twice. Jobs
run in one worker process, in the order they were asked, each through the one `Runner` the app
was given (in that process, a local Dask cluster or an existing one); the worker writes its
progress to the SQLite file and its results beside it, so a page reload, another user, or a
restarted server reads the same state. A server that stopped with jobs waiting starts them again.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from securecomm.comparison.compare import compare
from securecomm.comparison.report import Chart, report_charts
from securecomm.model.replications import Runner, Summary
from securecomm.web.lab import LabRequest

Status = Literal["queued", "running", "done", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    inputs TEXT NOT NULL,
    status TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL,
    error TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL
)
"""


@dataclass(frozen=True)
class Job:
    key: str
    request: LabRequest
    status: Status
    done: int
    total: int
    error: str | None
    created: float
    started: float | None
    finished: float | None


@dataclass(frozen=True)
class Results:
    """A finished comparison as the lab shows it: the summary, the county medians, the charts."""

    request: LabRequest
    summary: Summary
    counties: pl.DataFrame
    charts: list[Chart]


class JobStore:
    """Job state in `DATA_DIR/jobs.sqlite`, results in `DATA_DIR/runs/<key>/`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.runs = data_dir / "runs"
        self.runs.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "jobs.sqlite"
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        try:
            yield connection
        finally:
            connection.close()

    def add(self, request: LabRequest) -> bool:
        """Queue a job for the request; False if its key is already known (queued, running, done or failed)."""
        with self._connect() as connection:
            cursor = connection.execute(
                "INSERT OR IGNORE INTO jobs (key, inputs, status, total, created) VALUES (?, ?, 'queued', ?, ?)",
                (request.key, json.dumps(request.to_dict()), request.replications, time.time()),
            )
            return cursor.rowcount == 1

    def retry(self, key: str) -> bool:
        """A failed job back in the queue; False if it had not failed."""
        with self._connect() as connection:
            cursor = connection.execute(
                "UPDATE jobs SET status = 'queued', done = 0, error = NULL, created = ?, started = NULL, "
                "finished = NULL WHERE key = ? AND status = 'failed'",
                (time.time(), key),
            )
            return cursor.rowcount == 1

    def requeue_running(self) -> None:
        """Jobs a stopped server left running go back to the queue, keeping their place."""
        with self._connect() as connection:
            connection.execute("UPDATE jobs SET status = 'queued', done = 0, started = NULL WHERE status = 'running'")

    def get(self, key: str) -> Job | None:
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM jobs WHERE key = ?", (key,)).fetchone()
        return None if row is None else _job(row)

    def waiting(self) -> list[Job]:
        """Queued and running jobs, oldest first."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY created"
            ).fetchall()
        return [_job(row) for row in rows]

    def ahead_of(self, job: Job) -> int:
        """How many jobs run before this one."""
        with self._connect() as connection:
            (count,) = connection.execute(
                "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running') AND created < ?", (job.created,)
            ).fetchone()
        return int(count)

    def start(self, key: str) -> bool:
        """Mark a queued job running; False if it was not queued (another worker took it, or it is done)."""
        with self._connect() as connection:
            cursor = connection.execute(
                "UPDATE jobs SET status = 'running', done = 0, started = ? WHERE key = ? AND status = 'queued'",
                (time.time(), key),
            )
            return cursor.rowcount == 1

    def progress(self, key: str, done: int) -> None:
        with self._connect() as connection:
            connection.execute("UPDATE jobs SET done = ? WHERE key = ?", (done, key))

    def finish(self, key: str, error: str | None = None) -> None:
        with self._connect() as connection:
            connection.execute(
                "UPDATE jobs SET status = ?, error = ?, finished = ? WHERE key = ?",
                ("failed" if error else "done", error, time.time(), key),
            )

    # --- results on disk ---------------------------------------------------------------------

    def run_dir(self, key: str) -> Path:
        return self.runs / key

    def save(self, job: Job, summary: Summary, counties: pl.DataFrame, charts: list[Chart]) -> None:
        """Write a job's results whole: into a scratch directory, then renamed into place."""
        request = job.request
        final = self.run_dir(job.key)
        scratch = self.runs / f".{job.key}.{time.time_ns()}"
        scratch.mkdir()
        (scratch / "summary.json").write_text(
            json.dumps(
                {
                    "request": request.to_dict(),
                    "baseline": summary.baseline,
                    "levels": summary.levels,
                    "differences": summary.differences,
                    "effects": summary.effects,
                    "charts": [
                        {"id": c.id, "title": c.title, "description": c.description, "figure_json": c.figure_json}
                        for c in charts
                    ],
                }
            ),
            encoding="utf-8",
        )
        counties.write_parquet(scratch / "counties.parquet")
        for chart in charts:
            (scratch / chart.csv_name).write_text(chart.csv, encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        scratch.rename(final)

    def load(self, key: str) -> Results:
        folder = self.run_dir(key)
        document = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        charts = [
            Chart(c["id"], c["title"], c["description"], c["figure_json"], (folder / f"{c['id']}.csv").read_text())
            for c in document["charts"]
        ]
        return Results(
            LabRequest.from_dict(document["request"]),
            Summary(document["baseline"], document["levels"], document["differences"], document["effects"]),
            pl.read_parquet(folder / "counties.parquet"),
            charts,
        )


def _job(row: sqlite3.Row) -> Job:
    return Job(
        key=row["key"],
        request=LabRequest.from_dict(json.loads(row["inputs"])),
        status=row["status"],
        done=row["done"],
        total=row["total"],
        error=row["error"],
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
    )


def run_job(data_dir: Path, key: str, runner: Runner) -> None:
    """Run one job (in the worker process): progress and results into the store, or the error."""
    store = JobStore(data_dir)
    job = store.get(key)
    if job is None or not store.start(key):  # sent twice, taken by another worker, or answered already
        return
    request = job.request
    try:
        comparison = compare(
            request.place,
            request.start,
            request.end,
            request.policies,
            baseline=request.baseline,
            replications=request.replications,
            seed=request.seed,
            runner=runner,
            effects=request.effect_names,
            participation=request.participations,
            progress=lambda done, _total: store.progress(key, done),
        )
        store.save(job, comparison.summary, comparison.counties, report_charts(comparison.summary, comparison.counties))
    except Exception as error:  # a job that fails says why on its page, and the server goes on
        store.finish(key, f"{type(error).__name__}: {error}")
        return
    store.finish(key)


def _serve(data_dir: Path, runner: Runner, inbox: multiprocessing.Queue, parent: int) -> None:
    """The worker process: run the jobs sent, in order, until told to stop or the server is gone."""
    while True:
        try:
            key = inbox.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:
                return
            continue
        if key is None:
            return
        run_job(data_dir, key, runner)


class JobQueue:
    """Sends jobs to one worker process, in the order they were asked; the store holds their state.

    If the worker dies (killed, out of memory), the job it was running fails with that reason, and a
    new worker takes the jobs still queued.
    """

    def __init__(self, store: JobStore, runner: Runner) -> None:
        self.store = store
        self.runner = runner
        self._lock = threading.Lock()
        # spawn: the server's threads (and any lock they hold) are not copied into the worker.
        self._context = multiprocessing.get_context("spawn")
        self._inbox: multiprocessing.Queue | None = None
        self._worker: multiprocessing.process.BaseProcess | None = None
        self._closing = False

    def start(self) -> None:
        """Start the worker; jobs a stopped server left queued or running are run (again), oldest first."""
        with self._lock:
            self.store.requeue_running()
            self._start_worker()

    def _start_worker(self) -> None:
        inbox = self._context.Queue()
        worker = self._context.Process(
            target=_serve, args=(self.store.data_dir, self.runner, inbox, os.getpid()), name="securecomm-lab-worker"
        )
        worker.start()
        self._inbox, self._worker = inbox, worker
        threading.Thread(target=self._watch, args=(worker,), daemon=True).start()
        for job in self.store.waiting():
            inbox.put(job.key)

    def _watch(self, worker: multiprocessing.process.BaseProcess) -> None:
        worker.join()
        with self._lock:
            if self._closing or worker is not self._worker:
                return
            for job in self.store.waiting():
                if job.status == "running":
                    self.store.finish(job.key, f"the worker process stopped (exit code {worker.exitcode})")
            self._start_worker()

    def submit(self, request: LabRequest) -> Job:
        """The job that answers the request: found, or queued now (a failed one is queued again)."""
        with self._lock:
            job = self.store.get(request.key)
            queued = self.store.retry(request.key) if job is not None and job.status == "failed" else False
            if job is None:
                queued = self.store.add(request)
            if queued and self._inbox is not None:
                self._inbox.put(request.key)
            found = self.store.get(request.key)
        assert found is not None
        return found

    def close(self, grace: float = 2.0) -> None:
        """Stop the worker: at once if idle, after `grace` seconds otherwise (its job runs again at the next start)."""
        with self._lock:
            self._closing = True
            worker, inbox = self._worker, self._inbox
            self._worker = self._inbox = None
        if worker is None or inbox is None:
            return
        inbox.put(None)
        worker.join(grace)
        if worker.is_alive():
            worker.terminate()
            worker.join(grace)
        inbox.close()
        inbox.join_thread()
