"""Against a real `securecomm serve` process, on SQLite and PostgreSQL: two reviewers racing on the
same case, and kill -9 in the middle of a burst of intakes."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from securecomm.desk.audit import AuditKey
from securecomm.desk.db import open_database
from securecomm.desk.service import Desk

from .conftest import PASSWORD, initialize_desk


def intake_body(number: int, **facts) -> dict:
    return {
        "booking_ref": f"B-{number:06d}",
        "detainer_number": f"D-{number:06d}",
        "received_at": "2014-03-05T09:00:00",
        "issuing_office": "ERO Hartford",
        **facts,
    }


def test_two_reviewers_deciding_the_same_case_at_once_one_wins_the_other_gets_409(live_server):
    base = live_server.base
    supervisor = {"Authorization": f"Bearer {live_server.token('supervisor')}"}
    created = httpx.post(
        f"{base}/users", json={"username": "reviewer2", "password": PASSWORD, "role": "reviewer"}, headers=supervisor
    )
    assert created.status_code == 201, created.text
    reviewers = [live_server.token("reviewer"), live_server.token("reviewer2")]
    intake = {"Authorization": f"Bearer {live_server.token('intake')}"}
    ids = []
    for number in range(12):
        response = httpx.post(f"{base}/detainers", json=intake_body(number), headers=intake, timeout=30)
        assert response.json()["decision"] == "review"
        ids.append(response.json()["id"])

    clients = [httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) for token in reviewers]
    for client in clients:  # open the connections before the race
        client.get(f"{base}/health")
    for detainer_id in ids:
        barrier = threading.Barrier(2)
        statuses: dict[int, int] = {}

        def decide(index: int, detainer_id=detainer_id, barrier=barrier, statuses=statuses) -> None:
            decision = "honor" if index == 0 else "decline"
            barrier.wait()
            response = clients[index].post(
                f"{base}/detainers/{detainer_id}/review", json={"decision": decision, "reason": f"reviewer {index}"}
            )
            statuses[index] = response.status_code

        threads = [threading.Thread(target=decide, args=(index,)) for index in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses.values()) == [200, 409], (detainer_id, statuses)
        winner = 0 if statuses[0] == 200 else 1
        final = clients[0].get(f"{base}/detainers/{detainer_id}").json()
        assert final["decision"] == ("honor" if winner == 0 else "decline")
        assert final["review"]["reason"] == f"reviewer {winner}"
    for client in clients:
        client.close()


def test_kill_9_during_a_burst_loses_no_acknowledged_intake_and_the_chain_verifies(live_server, db_url):
    base = live_server.base
    token = live_server.token("intake")
    acknowledged: dict[int, str] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def burst(worker: int) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            number = worker * 1_000_000
            while not stop.is_set():
                number += 1
                facts = {"final_order": True} if number % 2 else {"release_eligible_at": "2014-03-06T17:00:00"}
                try:
                    response = client.post(f"{base}/detainers", json=intake_body(number, **facts))
                except httpx.HTTPError:
                    return  # the server is gone
                if response.status_code == 201:
                    with lock:
                        acknowledged[response.json()["id"]] = response.json()["booking_ref"]

    workers = [threading.Thread(target=burst, args=(worker,)) for worker in range(6)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 150 and time.monotonic() < deadline:
        time.sleep(0.02)
    live_server.kill()  # mid-burst: requests are in flight
    stop.set()
    for worker in workers:
        worker.join()
    assert len(acknowledged) >= 150

    live_server.start()
    supervisor = httpx.Client(headers={"Authorization": f"Bearer {live_server.token('supervisor')}"}, timeout=30)
    for detainer_id, booking_ref in acknowledged.items():
        response = supervisor.get(f"{live_server.base}/detainers/{detainer_id}")  # the restarted server
        assert response.status_code == 200, (detainer_id, response.text)
        assert response.json()["booking_ref"] == booking_ref
    verified = supervisor.get(f"{live_server.base}/audit/verify").json()
    assert verified["ok"] is True, verified
    supervisor.close()
    desk = Desk(open_database(db_url), audit_key=AuditKey.load(live_server.data_dir / "audit.key"))
    assert desk.verify_audit().ok
    desk.database.dispose()


# --- issue #13 against a real server ---------------------------------------------------------


# Conditions, not a time budget: a machine busy with other work (load 13-14) hashes a wrong password in a
# second or more, so that a fixed few seconds of flood may see only a handful of attempts and none of
# them throttled. The flood and the intakes go on until the flood has been throttled and enough intakes
# were timed beside it; the cap only stops a test that would otherwise never end.
FLOOD_INTAKES = 300  # intakes timed under the flood: the p99 is then the 3rd-slowest, not a lone outlier
FLOOD_CAP_SECONDS = 180.0


def test_3_a_flood_of_wrong_logins_does_not_starve_intake(live_server):
    """8 clients sending wrong passwords (argon2 at its real cost in the server) beside intake:
    throttled attempts are refused before any hashing, hashing has a pool of its own, and intake's
    p99 stays low. Before, every attempt hashed on the request threads (p99 of seconds)."""
    base = live_server.base
    token = live_server.token("intake")
    stop = threading.Event()
    flood_statuses: dict[int, int] = {}
    lock = threading.Lock()

    def flood(worker: int) -> None:
        with httpx.Client(timeout=60) as client:
            attempt = 0
            while not stop.is_set():
                attempt += 1
                username = "supervisor" if worker % 2 else f"guess{worker}-{attempt}"
                response = client.post(f"{base}/auth/token", json={"username": username, "password": f"nope {attempt}"})
                with lock:
                    flood_statuses[response.status_code] = flood_statuses.get(response.status_code, 0) + 1

    def answered(status: int | None = None) -> int:
        with lock:
            return sum(count for code, count in flood_statuses.items() if status in (None, code))

    latencies: list[float] = []
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for number in range(20):  # warm up
            client.post(f"{base}/detainers", json=intake_body(900_000 + number))
        floods = [threading.Thread(target=flood, args=(worker,)) for worker in range(8)]
        for thread in floods:
            thread.start()
        cap = time.monotonic() + FLOOD_CAP_SECONDS
        while answered() == 0 and time.monotonic() < cap:  # the flood has reached the server
            time.sleep(0.05)
        number = 0
        while time.monotonic() < cap and (len(latencies) < FLOOD_INTAKES or answered(429) == 0):
            number += 1
            started = time.perf_counter()
            response = client.post(f"{base}/detainers", json=intake_body(number))
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 201, response.text
        stop.set()
        for thread in floods:
            thread.join()
    latencies.sort()
    p99 = latencies[int(0.99 * len(latencies))]
    assert flood_statuses.get(429, 0) > 0, flood_statuses
    assert len(latencies) >= FLOOD_INTAKES, (len(latencies), flood_statuses)
    assert not any(status >= 500 and status != 503 for status in flood_statuses), flood_statuses
    assert p99 < 0.25, (p99, len(latencies), flood_statuses)


def test_5_6_size_limit_before_the_body_headers_and_anchor_at_shutdown(live_server):
    import http.client
    import json as json_module

    connection = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=10)
    connection.putrequest("POST", "/api/v1/detainers")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(200 * 1024 * 1024))
    connection.endheaders()  # not one byte of the 200 MB body is sent
    response = connection.getresponse()
    assert response.status == 413
    assert response.getheader("x-content-type-options") == "nosniff"
    connection.close()
    health = httpx.get(f"{live_server.base}/health")
    assert health.headers["x-frame-options"] == "DENY" and health.headers["cache-control"] == "no-store"
    assert httpx.get(f"http://127.0.0.1:{live_server.port}/docs").status_code == 404
    assert httpx.get(f"http://127.0.0.1:{live_server.port}/openapi.json").status_code == 401

    anchors_file = live_server.data_dir / "audit-anchors.jsonl"
    token = live_server.token("intake")
    httpx.post(f"{live_server.base}/detainers", json=intake_body(1), headers={"Authorization": f"Bearer {token}"})
    live_server.stop()
    last = json_module.loads(anchors_file.read_text().splitlines()[-1])
    key = AuditKey.load(live_server.data_dir / "audit.key")
    desk = Desk(open_database(live_server.url or f"sqlite:///{live_server.data_dir / 'desk.sqlite3'}"), audit_key=key)
    report = desk.verify_audit([last])
    assert report.ok and report.entries == last["seq"], (report, last)
    desk.database.dispose()


def test_5_serve_speaks_tls_with_certfile_and_keyfile(tmp_path, sqlite_url):
    import ssl
    import subprocess as sp

    from .conftest import ServerProcess, initialize_desk

    data_dir = tmp_path / "desk"
    initialize_desk(sqlite_url, key_path=data_dir / "audit.key").database.dispose()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    sp.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server = ServerProcess(
        data_dir, None, extra=["--certfile", str(cert), "--keyfile", str(key)], scheme="https", verify=str(cert)
    )
    server.start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        response = httpx.get(f"{server.base}/health", verify=context)
        assert response.status_code == 200
        assert response.headers["strict-transport-security"].startswith("max-age=")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{server.port}/api/v1/health", timeout=3)
    finally:
        server.stop()


def test_4_a_client_cannot_choose_the_address_the_audit_records(live_server):
    """Without --forwarded-allow-ips the server trusts no X-Forwarded-For: uvicorn's default trusts it from
    127.0.0.1, so any local process could have put any address in the audit trail."""
    base = live_server.base
    refused = httpx.post(
        f"{base}/auth/token",
        json={"username": "someone-else", "password": "not the password"},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert refused.status_code == 401
    auditor = {"Authorization": f"Bearer {live_server.token('auditor')}"}
    entries = httpx.get(f"{base}/audit/entries?limit=1000", headers=auditor).json()
    (failed,) = [e for e in entries if e["details"].get("username_tried") == "someone-else"]
    assert failed["details"]["client"] == "127.0.0.1"


def _running(pid: int) -> bool:
    """The process exists and is not a zombie waiting for its parent to read its exit status."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _descendants(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return children + [grandchild for child in children for grandchild in _descendants(child)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_servers_of_a_test_run_killed_with_sigkill_end_with_it(tmp_path, sqlite_url):
    """A pytest killed with SIGKILL runs no teardown; the live-server fixture's `securecomm serve` (and the
    processes it started) must still end rather than live on orphaned."""
    data_dir = tmp_path / "desk"
    data_dir.mkdir()
    initialize_desk(sqlite_url, key_path=data_dir / "audit.key").database.dispose()
    # A stand-in for the test run: it starts a server as the fixture does, says its pid, and waits.
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from tests.desk.conftest import ServerProcess\n"
        "server = ServerProcess(Path(sys.argv[1]), None)\n"
        "server.start()\n"
        "print(server.process.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    runner = subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    processes: list[int] = []
    try:
        server = int(runner.stdout.readline())
        processes = [server, *_descendants(server)]
        assert _running(server)
        runner.kill()
        runner.wait(timeout=30)
        deadline = time.monotonic() + 60
        while any(_running(pid) for pid in processes) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in processes if _running(pid)] == [], "orphaned after their parent's SIGKILL"
    finally:
        runner.kill()
        for pid in processes:  # what a failed check leaves
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
