"""Benchmark: a bounded load run of the detainer desk on loopback — intakes and reviews.

Starts a real `securecomm serve` process on a fresh desk (SQLite in a temporary directory, or
--database-url, or --private-postgres), then for --seconds (60 at most) keeps --clients intake
clients posting detainers and --reviewers reviewers working the review queue, all over keep-alive
HTTP connections to 127.0.0.1 — every client a task of one asyncio event loop in this process, writing
its requests as bytes (bodies encoded before the clock starts) and reading answers by Content-Length, so
that the benchmark takes as little as it can of the cores it shares with the server. Prints requests/s
and p50/p99 latency beside the target, and the CPU time spent per intake and per request by the server's
processes (all of them, with --workers), by PostgreSQL's (with --private-postgres) and by this client,
and the machine's load: CPU time, unlike wall time, moves little with the load others put on a shared
machine, and (server + PostgreSQL + client) CPU per intake × the target's rate is what the target asks
of the machine's two cores.

Targets (issue #13): SQLite, one server process: ≥ 800 intakes/s; PostgreSQL with `--workers 2`:
≥ 1,000 intakes/s; p99 < 100 ms on both.

`--flood 8` first runs without a flood, then again with 8 more clients sending wrong passwords in a
loop, and prints intake under the flood beside the unflooded run (target: ≥ 70 %, p99 < 100 ms).
`--workers 2 --database-url postgresql+psycopg://…` (or `--private-postgres`: a throwaway server of
tests/desk/pgserver.py with PostgreSQL's durable defaults, fsync on) runs two server processes and then
checks that the audit chain is still one unbroken sequence.

    .venv/bin/python bench/desk_load.py [--seconds 20] [--clients 8] [--reviewers 1] [--flood 8]
    .venv/bin/python bench/desk_load.py --private-postgres --workers 2 --clients 16

The throughput targets are measured with --clients 16 (docs/desk.md, fifth round: batches of 8 a process
with --workers 2); the flood run with the default 8 beside its 8 flooders.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from securecomm.desk.audit import AuditKey
from securecomm.desk.db import database_url, open_database
from securecomm.desk.service import Desk

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.desk.children import die_with_parent  # the repository's root, just put on the path

TARGET_INTAKES_PER_SECOND = {"sqlite": 800, "postgresql": 1000}
TARGET_P99_MS = 100
TARGET_FLOODED_SHARE = 0.70
MAX_SECONDS = 60
JOIN_INTERVAL = 0.02  # seconds between two clients' first connections
WARM_UP = 0.5  # seconds of load after the last client joined, before the clock starts
PASSWORD = "bench password 123"


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, seconds: float, status: int) -> None:
        self.latencies.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def merge(self, other: Samples) -> None:
        self.latencies += other.latencies
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Connection:
    """One keep-alive HTTP/1.1 connection with a bearer token, spoken directly over asyncio streams:
    the requests are written as bytes and the answers read by Content-Length, so the benchmark's own
    CPU per request stays a small fraction of the server's (it shares the machine's cores with it)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: str | None) -> None:
        self.reader, self.writer = reader, writer
        self.head = "Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
        if token:
            self.head += f"Authorization: Bearer {token}\r\n"

    @classmethod
    async def open(cls, port: int, token: str | None = None) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, token)

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
        payload = body or b""
        message = f"{method} /api/v1{path} HTTP/1.1\r\n{self.head}Content-Length: {len(payload)}\r\n\r\n"
        started = time.perf_counter()
        self.writer.write(message.encode("latin-1") + payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers = head.lower()
        at = headers.find(b"\r\ncontent-length:")
        if at >= 0:
            data = await self.reader.readexactly(int(headers[at + 17 : headers.index(b"\r\n", at + 2)]))
        elif b"transfer-encoding: chunked" in headers:
            parts = []
            while size := int((await self.reader.readuntil(b"\r\n"))[:-2], 16):
                parts.append((await self.reader.readexactly(size + 2))[:-2])
            await self.reader.readuntil(b"\r\n")
            data = b"".join(parts)
        else:
            data = b""
        return status, data, time.perf_counter() - started

    def close(self) -> None:
        self.writer.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def random_detainer(rng: random.Random, number: int) -> dict:
    """Facts in proportions that send about a quarter of the cases to review."""
    facts: dict = {
        "booking_ref": f"L-{number:08d}",
        "detainer_number": f"D-{number:08d}",
        "received_at": "2014-03-05T09:00:00",
        "issuing_office": "ERO Hartford",
        "release_eligible_at": "2014-03-06T17:00:00" if rng.random() < 0.5 else None,
        "age": rng.randint(18, 70),
        "detainer_form": rng.choice(["I-247", "I-247D", "I-247A"]),
        "current_charges": [{"category": rng.choice(["theft", "dui", "drug_possession"]), "level": "misdemeanor"}],
    }
    draw = rng.random()
    if draw < 0.25:
        facts["convictions"] = [{"category": "burglary", "level": "felony", "years_ago": rng.randint(1, 20)}]
    elif draw < 0.50:
        facts["final_order"] = True
    elif draw < 0.75:
        facts["public_safety_risk"] = False
    return facts  # else: public_safety_risk undetermined → review


def call(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    """One request outside the timed run (http.client): the health check and the logins."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, f"/api/v1{path}", body=payload, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def login(port: int, username: str) -> str:
    status, data = call(port, "POST", "/auth/token", {"username": username, "password": PASSWORD})
    if status != 200:
        raise SystemExit(f"login as {username} failed: {status} {data[:200]!r}")
    return json.loads(data)["access_token"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help=f"length of the run (at most {MAX_SECONDS})")
    parser.add_argument("--clients", type=int, default=8, help="concurrent intake connections")
    parser.add_argument("--reviewers", type=int, default=1, help="concurrent reviewer connections")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary directory")
    parser.add_argument("--flood", type=int, default=0, help="clients flooding wrong logins (a second run)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (more than 1: PostgreSQL)")
    parser.add_argument(
        "--private-postgres",
        action="store_true",
        help="start a throwaway PostgreSQL server (durable defaults) for the run and use it",
    )
    args = parser.parse_args()
    if args.private_postgres and args.database_url:
        parser.error("give --database-url or --private-postgres, not both")
    postgres = None
    if args.private_postgres:
        from tests.desk.pgserver import PostgresServer, find_bindir

        bindir = find_bindir()
        if bindir is None:
            raise SystemExit("PostgreSQL (initdb, pg_ctl) not found")
        postgres = PostgresServer(bindir, durable=True)
        postgres.start()
        args.database_url = postgres.create_database()
    try:
        bench(args, postgres)
    finally:
        if postgres is not None:
            postgres.stop()


def bench(args: argparse.Namespace, postgres: Any) -> None:
    seconds = min(max(args.seconds, 1.0), MAX_SECONDS)
    if args.flood:
        seconds = min(seconds, MAX_SECONDS / 2)  # two runs, within the bound

    with tempfile.TemporaryDirectory(prefix="desk-bench-") as directory:
        data_dir = Path(directory)
        url = database_url(data_dir, args.database_url)
        key = AuditKey.generate()
        key.write(data_dir / "audit.key")
        desk = Desk(open_database(url), audit_key=key)
        desk.initialize(
            jurisdiction="Connecticut",
            policy_id="ct/trust-act-2013",
            admin_username="chief",
            admin_password=PASSWORD,
        )
        desk.add_user("clerk", PASSWORD, "intake")
        desk.add_user("judge", PASSWORD, "reviewer")
        desk.database.dispose()

        port = free_port()
        command = [sys.executable, "-m", "securecomm", "serve", "--data-dir", str(data_dir), "--port", str(port)]
        command += ["--workers", str(args.workers)]
        if args.database_url:
            command += ["--database-url", args.database_url]
        log = (data_dir / "server.log").open("w")
        # The server ends with this process, even one killed with SIGKILL (tests/desk/children.py).
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ}, preexec_fn=die_with_parent()
        )
        cpu_roots = [server.pid] + ([postgres_pid(postgres)] if postgres is not None else [])
        try:
            baseline = run(port, seconds, args.clients, args.reviewers, url, cpu_roots, args.workers)
            if args.flood:
                print()
                flooded = run(
                    port, seconds, args.clients, args.reviewers, url, cpu_roots, args.workers, flood=args.flood
                )
                share = flooded[0] / baseline[0] if baseline[0] else 0.0
                share_ok, p99_ok = share >= TARGET_FLOODED_SHARE, flooded[1] < TARGET_P99_MS
                print(
                    f"flood of {args.flood} wrong-login clients: intake {flooded[0]:.0f}/s = {share * 100:.0f}% of "
                    f"{baseline[0]:.0f}/s unflooded (target ≥ {TARGET_FLOODED_SHARE * 100:.0f}% "
                    f"[{'met' if share_ok else 'MISSED'}]), p99 {flooded[1]:.1f} ms (target < {TARGET_P99_MS} ms "
                    f"[{'met' if p99_ok else 'MISSED'}])"
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
        checked = Desk(open_database(url), audit_key=key)
        report = checked.verify_audit()
        with checked.database.read() as session:
            from sqlalchemy import text

            seqs = session.execute(text("SELECT count(*), min(seq), max(seq) FROM audit_log")).one()
        print(
            f"audit chain after the run: {report.describe()}; {seqs[0]} entries numbered {seqs[1]}…{seqs[2]} "
            f"({'one unbroken sequence' if report.ok and seqs[0] == seqs[2] else 'BROKEN'})"
        )
        checked.database.dispose()


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_tree(root: int) -> list[int]:
    """A process and all its descendants (Linux /proc): uvicorn's workers are children of the server
    process, PostgreSQL's backends of its postmaster."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += parents.get(pid, [])
    return tree


def share_priority(roots: list[int]) -> None:
    """Give the processes of `roots` this process's autogroup priority (Linux, /proc/PID/autogroup): a
    private PostgreSQL's postmaster and each backend it forks call setsid, so each runs in an autogroup of
    its own at nice 0 whatever priority the benchmark's shell was given, and a run's PostgreSQL would get
    less of the cores than the server processes that wait for it. A process that ended, or a system
    without autogroups, is left as it is."""
    try:
        own = Path("/proc/self/autogroup").read_text().split()[-1]
    except OSError:
        return
    for pid in [pid for root in roots for pid in process_tree(root)]:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/autogroup").write_text(own)


def server_process_of(pids: list[int], port: int, client_port: int) -> int | None:
    """Which of these processes holds the server's end of the connection from `client_port` to `port`
    (Linux /proc), or None while no process has accepted it yet."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote = int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16)
                if local == port and remote == client_port:
                    inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        with contextlib.suppress(OSError):
            if any(os.readlink(entry) in inodes for entry in Path(f"/proc/{pid}/fd").iterdir()):
                return pid
    return None


def connections_per_process(pids: list[int], port: int) -> list[int]:
    """How many established TCP connections to `port` each of these processes holds (Linux /proc; the
    server processes that hold none are left out): how the clients were spread over uvicorn's workers."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # 01: ESTABLISHED
                    established.add(f"socket:[{fields[9]}]")
    counts = []
    for pid in pids:
        with contextlib.suppress(OSError):
            held = sum(os.readlink(entry) in established for entry in Path(f"/proc/{pid}/fd").iterdir())
            if held:
                counts.append(held)
    return sorted(counts)


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU time of each process still running (Linux /proc; empty elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK")
    times = {}
    for pid in pids:
        if (fields := _stat(pid)) is not None:
            times[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return times


def main_thread_cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU time of each process's main thread (Linux /proc/PID/task/PID): in a server process,
    the event loop's thread (uvicorn's parsing, the ASGI app, the token and body checks); the rest of the
    process's time is its other threads' (the desk's writer, the logins' pool)."""
    ticks = os.sysconf("SC_CLK_TCK")
    times = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        times[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return times


def settle(roots: list[int], quiet: float = 0.05, longest: float = 90.0) -> None:
    """Wait until the processes are idle (under `quiet` of a core in each of 3 seconds running): each
    server process starts the lab's job worker, which spends seconds of CPU importing the model after the
    server answers. That is the cost of starting, not of intake: the run's CPU figures begin after it."""
    deadline = time.monotonic() + longest
    calm = 0
    while time.monotonic() < deadline and calm < 3:
        pids = [pid for root in roots for pid in process_tree(root)]
        before = cpu_seconds(pids)
        time.sleep(1.0)
        after = cpu_seconds([pid for root in roots for pid in process_tree(root)])
        used = sum(after[pid] - before.get(pid, 0.0) for pid in after)
        calm = calm + 1 if used < quiet else 0
    if calm < 3:
        print(f"  (the server processes were still busy after {longest:.0f} s: CPU figures include it)")


def postgres_pid(server: Any) -> int:
    """The postmaster of a private PostgreSQL server (the first line of its postmaster.pid)."""
    return int((server.data / "postmaster.pid").read_text().split()[0])


def run(
    port: int,
    seconds: float,
    clients: int,
    reviewers: int,
    url: str,
    cpu_roots: list[int],
    workers: int,
    flood: int = 0,
) -> tuple[float, float]:
    """One timed run; returns (intakes/s, intake p99 in ms)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if call(port, "GET", "/health")[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.1)
    intake_token, review_token = login(port, "clerk"), login(port, "judge")
    share_priority(cpu_roots[1:])

    intakes = [Samples() for _ in range(clients)]
    reviews = [Samples() for _ in range(reviewers)]
    queue_reads = [Samples() for _ in range(reviewers)]
    flood_samples = [Samples() for _ in range(flood)]

    # All the clients are tasks of one event loop in this one thread (uvloop where installed): no threads
    # fighting for Python's lock, and the bodies are encoded before the clock starts.
    async def spread_connection(token: str | None) -> Connection:
        """A connection to a server process holding no more than its share of the clients, as a load
        balancer in front of the workers would spread them: uvicorn's workers share one listening socket,
        and whichever wakes first accepts every connection waiting (a burst of clients all to one process).
        One that lands on a process already holding its share is closed and opened again."""
        share = -(-(clients + reviewers + flood) // workers)
        for _ in range(200):
            connection = await Connection.open(port, token)
            client_port = connection.writer.get_extra_info("sockname")[1]
            owner = None
            for _ in range(100):  # until a server process accepted it
                owner = server_process_of(server_tree, port, client_port)
                if owner is not None or workers == 1:
                    break
                await asyncio.sleep(0.005)
            if workers == 1 or owner is None or held.get(owner, 0) < share:
                held[owner] = held.get(owner, 0) + 1
                return connection
            connection.close()
            await asyncio.sleep(JOIN_INTERVAL)
        return connection

    async def intake_loop(worker: int, stop: asyncio.Event) -> None:
        rng = random.Random(worker)
        await asyncio.sleep(worker * JOIN_INTERVAL)
        connection = await spread_connection(intake_token)
        number = worker * 10_000_000 + (5_000_000 if flood else 0)
        # Bodies for more than the run will take, encoded before the clock starts (more made if needed).
        bodies = [json.dumps(random_detainer(rng, number + i)).encode() for i in range(1, int(seconds * 300) + 2)]
        number += len(bodies)
        sent = 0
        while not stop.is_set():
            if sent == len(bodies):
                number += 1
                bodies.append(json.dumps(random_detainer(rng, number)).encode())
            body, sent = bodies[sent], sent + 1
            status, _, elapsed = await connection.request("POST", "/detainers", body)
            if measuring.is_set():
                intakes[worker].add(elapsed, status)
            elif status != 201:
                unexpected.append(status)
        connection.close()

    async def review_loop(worker: int, stop: asyncio.Event) -> None:
        await asyncio.sleep((clients + worker) * JOIN_INTERVAL)
        connection = await spread_connection(review_token)
        rng = random.Random(1000 + worker)
        while not stop.is_set():
            status, data, elapsed = await connection.request("GET", "/review-queue?limit=20")
            if measuring.is_set():
                queue_reads[worker].add(elapsed, status)
            elif status != 200:
                unexpected.append(status)
            pending = json.loads(data) if status == 200 else []
            if not pending:
                await asyncio.sleep(0.01)
            for item in pending:
                if stop.is_set():
                    break
                decision = {"decision": rng.choice(["honor", "decline"]), "reason": "bench review"}
                status, _, elapsed = await connection.request(
                    "POST", f"/detainers/{item['id']}/review", json.dumps(decision).encode()
                )
                if measuring.is_set():
                    reviews[worker].add(elapsed, status)
                elif status not in (200, 409):
                    unexpected.append(status)
        connection.close()

    async def flood_loop(worker: int, stop: asyncio.Event) -> None:
        await asyncio.sleep((clients + reviewers + worker) * JOIN_INTERVAL)
        connection = await spread_connection(None)
        attempt = 0
        while not stop.is_set():
            attempt += 1
            username = "chief" if worker % 2 else f"guess-{worker}-{attempt}"
            body = json.dumps({"username": username, "password": f"wrong password {attempt}"}).encode()
            status, _, elapsed = await connection.request("POST", "/auth/token", body)
            if measuring.is_set():
                flood_samples[worker].add(elapsed, status)
        connection.close()

    # The processes whose CPU is counted: the server and its workers; PostgreSQL and its backends (all
    # connected by now: the server's pools opened their connections at the logins above, and more open
    # while the run goes on — those are counted from 0, as they began within it).
    settle(cpu_roots)
    trees = [process_tree(root) for root in cpu_roots]

    async def load() -> tuple[float, float, float]:
        stop = asyncio.Event()
        tasks = [intake_loop(worker, stop) for worker in range(clients)]
        tasks += [review_loop(worker, stop) for worker in range(reviewers)]
        tasks += [flood_loop(worker, stop) for worker in range(flood)]
        running = [asyncio.ensure_future(task) for task in tasks]
        # The clients join one after another, as a proxy's or the jail's clients would, rather than all in
        # one instant: a burst of connections is all accepted by whichever server process wakes first
        # (uvicorn's workers share one listening socket; libuv accepts until none are left), which then has
        # every client while the other idles. The clock and the CPU figures start once all have joined.
        while sum(held.values()) < len(tasks):
            await asyncio.sleep(JOIN_INTERVAL)
        await asyncio.sleep(WARM_UP)
        spread.extend(connections_per_process(trees[0], port))
        cpu_before.extend(cpu_seconds(tree) for tree in trees)
        loop_before.update(main_thread_cpu_seconds(trees[0]))
        started, client_before = time.perf_counter(), time.process_time()
        measuring.set()
        # The backends the server processes connect to at their first writes, once those are made.
        await asyncio.sleep(min(1.0, seconds))
        share_priority(cpu_roots[1:])
        await asyncio.sleep(seconds - min(1.0, seconds))
        stop.set()
        await asyncio.gather(*running)
        return started, time.perf_counter(), time.process_time() - client_before

    cpu_before: list[dict[int, float]] = []
    loop_before: dict[int, float] = {}
    spread: list[int] = []  # the clients' connections held by each server process
    held: dict[int | None, int] = {}  # the same, as the clients joined
    server_tree = process_tree(cpu_roots[0])
    measuring = asyncio.Event()  # the clock runs (a request's answer is checked either way)
    unexpected: list[int] = []  # statuses other than success before the clock started
    try:
        import uvloop

        started, ended, client = uvloop.run(load())
    except ImportError:
        started, ended, client = asyncio.run(load())
    elapsed = ended - started
    loop_after = main_thread_cpu_seconds(process_tree(cpu_roots[0]))
    cpu_after = [cpu_seconds(process_tree(root)) for root in cpu_roots]
    loop_used = sum(after - loop_before.get(pid, 0.0) for pid, after in loop_after.items())
    # Each tree's CPU in the run: processes alive at both ends by difference, those born meanwhile whole.
    cpu_used = [
        sum(after[pid] - before.get(pid, 0.0) for pid in after)
        for before, after in zip(cpu_before, cpu_after, strict=True)
    ]

    intake, review, queue = Samples(), Samples(), Samples()
    for group, total in ((intakes, intake), (reviews, review), (queue_reads, queue)):
        for samples in group:
            total.merge(samples)
    requests = len(intake.latencies) + len(review.latencies) + len(queue.latencies)
    created = intake.statuses.get(201, 0)
    rate = created / elapsed
    p50, p99 = percentile(intake.latencies, 0.50) * 1000, percentile(intake.latencies, 0.99) * 1000

    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    print(
        f"desk load: {elapsed:.1f} s on loopback, {clients} intake + {reviewers} reviewer connections"
        + (f" + {flood} wrong-login flooders" if flood else "")
        + f", {backend}, {workers} server process{'es' if workers > 1 else ''}"
    )
    if flood:
        flooded = Samples()
        for samples in flood_samples:
            flooded.merge(samples)
        print(
            f"  flood logins      {len(flooded.latencies) / elapsed:8.0f} attempts/s  "
            f"(statuses {dict(sorted(flooded.statuses.items()))})"
        )
    print(f"  all requests      {requests / elapsed:8.0f} requests/s ({requests} requests)")
    print(f"  connections held by each server process: {', '.join(map(str, spread)) or 'none found'}")
    print(
        f"  intakes           {rate:8.0f} intakes/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   "
        f"(statuses {dict(sorted(intake.statuses.items()))})"
    )
    decided = review.statuses.get(200, 0)
    print(
        f"  reviews           {decided / elapsed:8.0f} decisions/s p50 {percentile(review.latencies, 0.5) * 1000:6.1f} ms"
        f"   p99 {percentile(review.latencies, 0.99) * 1000:6.1f} ms   (statuses {dict(sorted(review.statuses.items()))})"
    )
    print(
        f"  review-queue reads{len(queue.latencies) / elapsed:8.0f} reads/s     p50 "
        f"{percentile(queue.latencies, 0.5) * 1000:6.1f} ms   p99 {percentile(queue.latencies, 0.99) * 1000:6.1f} ms"
    )
    if intake.latencies:
        print(f"  intake mean       {statistics.fmean(intake.latencies) * 1000:8.1f} ms")
    if requests and created:
        # CPU time per intake: what the machine's load does not change much (wall time does).
        names = ["server", "postgresql"]
        for name, used in zip(names, cpu_used, strict=False):
            print(
                f"  {name + ' CPU':<18}{used / created * 1000:8.2f} ms/intake  {used / requests * 1000:5.2f} ms/request"
                f"  ({used / elapsed * 100:.0f}% of a core)"
            )
        print(
            f"  {'  event loops':<18}{loop_used / created * 1000:8.2f} ms/intake  {loop_used / requests * 1000:5.2f} ms/request"
            f"  (the server processes' main threads; the rest: their writer and login threads)"
        )
        print(
            f"  {'client CPU':<18}{client / created * 1000:8.2f} ms/intake  {client / requests * 1000:5.2f} ms/request"
            f"  ({client / elapsed * 100:.0f}% of a core: this benchmark's own clients)"
        )
        print(f"  machine           load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    target = TARGET_INTAKES_PER_SECOND[backend]
    rate_ok, p99_ok = rate >= target, p99 < TARGET_P99_MS
    setting = "PostgreSQL, --workers 2" if backend == "postgresql" else "SQLite, one server process"
    print(
        f"target ({setting}): ≥ {target} intakes/s [{'met' if rate_ok else 'MISSED'}], "
        f"p99 < {TARGET_P99_MS} ms [{'met' if p99_ok else 'MISSED'}]"
    )
    errors = len(unexpected) + sum(count for status, count in intake.statuses.items() if status != 201)
    errors += sum(count for status, count in review.statuses.items() if status not in (200, 409))
    if errors:
        print(f"unexpected statuses: {errors}")
    return rate, p99


if __name__ == "__main__":
    main()
