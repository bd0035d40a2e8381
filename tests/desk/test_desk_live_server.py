"""Against a real `securecomm serve` process, on SQLite and PostgreSQL: two reviewers racing on the
same case, and kill -9 in the middle of a burst of intakes."""

import threading
import time

import httpx

from securecomm.desk.audit import AuditKey
from securecomm.desk.db import open_database
from securecomm.desk.service import Desk

from .conftest import PASSWORD


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
