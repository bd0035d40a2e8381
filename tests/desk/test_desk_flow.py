"""The desk's flow through its API, on SQLite and on PostgreSQL: intake and the automatic decision,
the policy in force on the received date, review, custody events and the hold clock, overdue
holds, notifications to ICE."""

import datetime as dt
import json

import pytest

import securecomm

# 2014-03-06 is a Thursday: 48 business hours from 17:00 end on Monday 2014-03-10 at 17:00.
THURSDAY_5PM = "2014-03-06T17:00:00"
MONDAY_5PM = "2014-03-10T17:00:00"


def test_intake_is_decided_by_the_rules_engine(desk):
    facts = {"release_eligible_at": THURSDAY_5PM, "final_order": True, "detainer_form": "I-247"}
    body = desk.intake(**facts)
    engine = securecomm.decide("ct/trust-act-2013", [{"case_id": "B-1", **facts}]).row(0, named=True)
    assert isinstance(body["id"], int)
    assert body["policy_id"] == "ct/trust-act-2013"
    assert (body["decision"], body["rule"], body["citation"]) == (
        engine["decision"],
        engine["rule"],
        engine["citation"],
    )
    assert body["decision"] == "honor"
    assert body["citation"] == "Conn. Gen. Stat. § 54-192h(b)(6)"
    assert body["hold_until"] == MONDAY_5PM == engine["hold_until"].isoformat()


def test_decline_is_notified_to_ice_where_the_policy_requires_it(desk):
    body = desk.intake(public_safety_risk=False)
    assert (body["decision"], body["rule"], body["hold_until"]) == ("decline", "default", None)
    events = desk.get(f"/detainers/{body['id']}", "supervisor").json()["events"]
    (notice,) = [event for event in events if event["kind"] == "ice_notified"]
    assert notice["details"]["decision"] == "decline"
    assert notice["details"]["duty"] == "Conn. Gen. Stat. § 54-192h(c)"


def test_no_notification_where_the_policy_requires_none(make_desk, sqlite_url):
    desk = make_desk(sqlite_url, policy="us/ice-request", place="09009")
    body = desk.intake()
    events = desk.get(f"/detainers/{body['id']}", "supervisor").json()["events"]
    assert body["decision"] == "honor"
    assert [event["kind"] for event in events] == []


def test_the_policy_in_force_on_the_received_date_decides(desk):
    desk.desk.set_policy("ct/doc-2014", dt.date(2014, 12, 15))
    facts = {"pending_charges": True, "public_safety_risk": False}
    before = desk.intake(received_at="2014-12-14T23:59:00", **facts)
    after = desk.intake(received_at="2014-12-15T00:00:00", **facts)
    assert (before["policy_id"], before["decision"]) == ("ct/trust-act-2013", "honor")
    assert (after["policy_id"], after["decision"]) == ("ct/doc-2014", "decline")
    early = desk.post(
        "/detainers",
        "intake",
        {
            "booking_ref": "B-0",
            "detainer_number": "D-0",
            "received_at": "2013-12-31T10:00:00",
            "issuing_office": "ERO Hartford",
        },
    )
    assert early.status_code == 422
    assert early.json()["detail"][0]["loc"] == ["body", "received_at"]
    periods = desk.get("/desk", "intake").json()["policies"]
    assert [(p["policy_id"], p["effective_from"]) for p in periods] == [
        ("ct/trust-act-2013", "2014-01-01"),
        ("ct/doc-2014", "2014-12-15"),
    ]


def test_review_queue_and_a_second_review_conflicts(desk):
    pending = desk.intake(release_eligible_at=THURSDAY_5PM)  # public_safety_risk not determined
    assert (pending["decision"], pending["rule"], pending["hold_until"]) == (
        "review",
        "unacceptable-public-safety-risk",
        None,
    )
    queue = desk.get("/review-queue", "reviewer").json()
    assert [item["id"] for item in queue] == [pending["id"]]

    decided = desk.post(f"/detainers/{pending['id']}/review", "reviewer", {"decision": "honor", "reason": "risk found"})
    assert decided.status_code == 200, decided.text
    assert decided.json()["decision"] == "honor"
    assert decided.json()["automatic_decision"] == "review"
    assert decided.json()["review"]["reviewed_by"] == "reviewer"
    # The hold counts from release eligibility, not from the review.
    assert decided.json()["hold_until"] == MONDAY_5PM

    again = desk.post(f"/detainers/{pending['id']}/review", "supervisor", {"decision": "decline", "reason": "no"})
    assert again.status_code == 409
    assert "already decided by reviewer" in again.json()["detail"]
    assert desk.get("/review-queue", "reviewer").json() == []

    automatic = desk.intake(final_order=True)
    refused = desk.post(f"/detainers/{automatic['id']}/review", "reviewer", {"decision": "decline", "reason": "x"})
    assert refused.status_code == 409
    events = desk.get(f"/detainers/{pending['id']}", "reviewer").json()["events"]
    assert [e["details"]["decision"] for e in events if e["kind"] == "ice_notified"] == ["honor"]


def test_release_eligibility_starts_the_hold_clock_and_it_is_never_extended(desk):
    detainer = desk.intake(final_order=True)
    assert detainer["hold_until"] is None
    path = f"/detainers/{detainer['id']}/events"
    eligible = desk.post(path, "intake", {"event": "release_eligible", "at": THURSDAY_5PM})
    assert eligible.status_code == 201, eligible.text
    assert eligible.json()["hold_until"] == MONDAY_5PM
    assert eligible.json()["event"]["kind"] == "release_eligible"

    later = desk.post(path, "intake", {"event": "release_eligible", "at": "2014-03-07T09:00:00"})
    assert later.status_code == 409
    assert "never extended" in later.json()["detail"]
    # Earlier release eligibility only brings the deadline forward.
    earlier = desk.post(path, "intake", {"event": "release_eligible", "at": "2014-03-06T09:00:00"})
    assert earlier.json()["hold_until"] == "2014-03-10T09:00:00"

    late_pickup = desk.post(path, "intake", {"event": "picked_up_by_ice", "at": "2014-03-10T09:00:01"})
    assert late_pickup.status_code == 409
    assert "must be released" in late_pickup.json()["detail"]
    pickup = desk.post(path, "intake", {"event": "picked_up_by_ice", "at": "2014-03-10T08:00:00"})
    assert pickup.status_code == 201
    assert (pickup.json()["custody"], pickup.json()["custody_ended_at"]) == ("picked_up_by_ice", "2014-03-10T08:00:00")
    after = desk.post(path, "intake", {"event": "released", "at": "2014-03-10T10:00:00"})
    assert after.status_code == 409


def test_a_declined_or_undecided_detainer_is_no_ground_for_a_transfer(desk):
    declined = desk.intake(public_safety_risk=False)
    pending = desk.intake()
    for detainer, word in ((declined, "declined"), (pending, "awaiting review")):
        response = desk.post(
            f"/detainers/{detainer['id']}/events", "intake", {"event": "picked_up_by_ice", "at": THURSDAY_5PM}
        )
        assert response.status_code == 409
        assert word in response.json()["detail"]
    released = desk.post(f"/detainers/{declined['id']}/events", "intake", {"event": "released", "at": THURSDAY_5PM})
    assert released.json()["custody"] == "released"


def test_holds_past_their_deadline_are_listed_and_flagged(desk):
    honored = desk.intake(final_order=True, release_eligible_at=THURSDAY_5PM)
    declined = desk.intake(public_safety_risk=False, release_eligible_at=THURSDAY_5PM)
    gone = desk.intake(final_order=True, release_eligible_at=THURSDAY_5PM)
    desk.post(f"/detainers/{gone['id']}/events", "intake", {"event": "picked_up_by_ice", "at": "2014-03-07T10:00:00"})

    desk.clock.local = dt.datetime(2014, 3, 8, 12, 0)  # Saturday: the honored hold still runs
    overdue = desk.get("/holds/overdue", "reviewer").json()
    assert [item["id"] for item in overdue] == [declined["id"]]
    assert overdue[0]["reason"] == "held past release eligibility on a detainer that is declined"

    desk.clock.local = dt.datetime(2014, 3, 10, 18, 30)
    overdue = desk.get("/holds/overdue", "intake").json()
    assert {item["id"]: item["reason"] for item in overdue} == {
        declined["id"]: "held past release eligibility on a detainer that is declined",
        honored["id"]: "held past the hold deadline",
    }
    by_id = {item["id"]: item for item in overdue}
    assert by_id[honored["id"]]["deadline"] == MONDAY_5PM
    assert by_id[honored["id"]]["overdue_hours"] == 1.5
    assert by_id[honored["id"]]["overdue"] is True
    detail = desk.get(f"/detainers/{honored['id']}", "supervisor").json()
    assert detail["overdue_flagged_at"] == "2014-03-10T18:30:00"
    assert [e["kind"] for e in detail["events"]].count("hold_overdue") == 1
    # Flagged once only, however often the list is read.
    desk.get("/holds/overdue", "intake")
    detail = desk.get(f"/detainers/{honored['id']}", "supervisor").json()
    assert [e["kind"] for e in detail["events"]].count("hold_overdue") == 1
    assert desk.desk.flag_overdue_holds() == 0


@pytest.mark.parametrize(
    ("change", "location"),
    [
        (
            {"convictions": [{"category": "theft", "level": "felony", "years_ago": 2, "years_since_release": 5}]},
            ["body", "convictions", 0, "years_since_release"],
        ),
        (
            {"current_charges": [{"category": "theft", "level": "misdemeanor", "felony_class": "A"}]},
            ["body", "current_charges", 0, "felony_class"],
        ),
        (
            {"current_charges": [{"category": "jaywalking", "level": "misdemeanor"}]},
            ["body", "current_charges", 0, "category"],
        ),
        ({"age": "31"}, ["body", "age"]),
        ({"final_order": "yes"}, ["body", "final_order"]),
        ({"unknown_fact": 1}, ["body", "unknown_fact"]),
        ({"release_eligible_at": "2014-03-06T17:00:00+25:00"}, ["body", "release_eligible_at"]),
        ({"release_eligible_at": "1980-01-01T00:00:00"}, ["body", "release_eligible_at"]),
        ({"received_at": "2014-02-30T10:00:00"}, ["body", "received_at"]),
        ({"booking_ref": "B\x00-1"}, ["body", "booking_ref"]),
        ({"issuing_office": "\ud800"}, ["body", "issuing_office"]),
        ({"booking_ref": None}, ["body", "booking_ref"]),
    ],
)
def test_bad_input_is_a_422_naming_the_field(desk, change, location):
    body = {
        "booking_ref": "B-1",
        "detainer_number": "D-1",
        "received_at": "2014-03-05T09:00:00",
        "issuing_office": "ERO Hartford",
        **change,
    }
    # json.dumps escapes to ASCII, so a lone surrogate travels as the JSON text \ud800.
    headers = {**desk.headers("intake"), "content-type": "application/json"}
    response = desk.client.post("/api/v1/detainers", content=json.dumps(body), headers=headers)
    assert response.status_code == 422, response.text
    assert location in [error["loc"] for error in response.json()["detail"]]


def test_malformed_requests_are_422_not_500(desk):
    headers = {**desk.headers("intake"), "content-type": "application/json"}
    for raw in (b"{", b"[]", b'"text"', b"\xff\xfe", b'{"booking_ref": NaN}'):
        response = desk.client.post("/api/v1/detainers", content=raw, headers=headers)
        assert response.status_code == 422, (raw, response.text)


def test_unknown_ids_are_404_and_impossible_ids_422(desk):
    assert desk.get("/detainers/424242", "supervisor").status_code == 404
    assert desk.post("/detainers/424242/review", "reviewer", {"decision": "honor", "reason": "x"}).status_code == 404
    event = {"event": "released", "at": THURSDAY_5PM}
    assert desk.post("/detainers/424242/events", "intake", event).status_code == 404
    assert desk.get("/detainers/0", "supervisor").status_code == 422
    assert desk.get(f"/detainers/{2**70}", "supervisor").status_code == 422
    assert desk.post("/users/nobody/unlock", "supervisor", {}).status_code == 404


def test_the_interactive_docs_work_offline(make_desk, sqlite_url):
    """/docs (a test desk's, with public docs) loads Swagger UI from the desk itself: a jail's network
    may have no way out."""
    sqlite_desk = make_desk(sqlite_url, public_docs=True)
    page = sqlite_desk.client.get("/docs")
    assert page.status_code == 200
    assert "https://" not in page.text and "http://" not in page.text
    for asset in ("/static/swagger-ui/swagger-ui-bundle.js", "/static/swagger-ui/swagger-ui.css"):
        assert asset in page.text
        served = sqlite_desk.client.get(asset)
        assert served.status_code == 200 and len(served.content) > 100_000
    assert sqlite_desk.client.get("/openapi.json").json()["info"]["title"] == "securecomm detainer desk"


def _body(number: int, **facts) -> dict:
    from securecomm.desk.api import DetainerIntake

    body = {
        "booking_ref": f"G-{number}",
        "detainer_number": f"GD-{number:06d}",
        "received_at": "2014-03-05T09:00:00",
        "issuing_office": "ERO Hartford",
        **facts,
    }
    return DetainerIntake.model_validate(body).model_dump()


def test_intakes_written_together_are_answered_one_by_one(desk):
    """Group commit (Desk.write_many, what the API's intake route calls): one transaction for a batch,
    and each intake answered as it would be alone — a refusal (a twin of a row already there, a twin
    within the batch, a day no policy covers, an Idempotency-Key reused for another body) writes nothing
    and leaves the others be; a retry is answered with the first answer. The chain stays one sequence."""
    from securecomm.desk.service import Conflict, InvalidInput

    service = desk.desk
    clerk = service.authenticate(desk.headers("intake")["Authorization"].split()[1])
    earlier = desk.intake(booking_ref="G-1", detainer_number="GD-000001")
    entries_before = service.verify_audit().entries
    batch = [
        (clerk, _body(2, final_order=True, release_eligible_at=dt.datetime(2014, 3, 6, 17)), None),
        (clerk, _body(1), None),  # the row already there
        (clerk, _body(3, public_safety_risk=False), "key-3"),
        (clerk, _body(2), None),  # a twin of the first of this batch
        (clerk, _body(4, received_at=dt.datetime(2010, 1, 4, 9)), None),  # before any policy of the desk
        (clerk, _body(3, public_safety_risk=False), "key-3"),  # a retry within the batch
        (clerk, _body(5), "key-3"),  # the same key, another body
        (clerk, _body(6), None),
    ]
    answers, _ = service.write_many(batch)
    first, old_twin, third, twin, too_early, retry, reused, sixth = answers
    assert first["decision"] == "honor" and first["hold_until"] == dt.datetime(2014, 3, 10, 17)
    assert isinstance(old_twin, Conflict) and old_twin.existing_id == earlier["id"]
    assert isinstance(twin, Conflict) and twin.existing_id == first["id"]
    assert isinstance(too_early, InvalidInput) and too_early.field == "received_at"
    assert third["decision"] == "decline"
    assert retry["replayed"] is True and retry["id"] == third["id"] and retry["decision"] == "decline"
    assert isinstance(reused, Conflict) and reused.existing_id == third["id"]
    assert sixth["decision"] == "review" and sixth["id"] > third["id"] > first["id"]
    report = service.verify_audit()
    assert report.ok, report.describe()
    # Three detainers written: each its detainer.create, and the two decided ones their ice.notify.
    assert report.entries == entries_before + 5
    # Alone, each would have been answered the same (the single path, on the same bodies).
    again, _ = service.write_many([(clerk, _body(2), None), (clerk, _body(7, final_order=True), None)])
    assert isinstance(again[0], Conflict) and again[0].existing_id == first["id"]
    alone = service.intake(clerk, _body(8, final_order=True))
    assert {k: v for k, v in again[1].items() if k not in ("id", "booking_ref", "case_id")} == {
        k: v for k, v in alone.items() if k not in ("id", "booking_ref", "case_id")
    }


def test_the_intake_answer_is_what_its_model_would_write(desk):
    """The intake route writes its answer directly (api.intake_json): the same JSON as IntakeResult's."""
    from securecomm.desk.api import IntakeResult, intake_json

    service = desk.desk
    clerk = service.authenticate(desk.headers("intake")["Authorization"].split()[1])
    summaries = [
        service.intake(clerk, _body(11, final_order=True, release_eligible_at=dt.datetime(2014, 3, 6, 17, 0, 5, 250))),
        service.intake(clerk, _body(12, public_safety_risk=False, detainer_form="I-247N", age=30)),
        service.intake(clerk, _body(13, received_at=dt.datetime(2014, 3, 5, 14, 0, tzinfo=dt.UTC))),
    ]
    for summary in summaries:
        assert json.loads(intake_json(summary)) == json.loads(IntakeResult.model_validate(summary).model_dump_json())
    body = {"booking_ref": "G-14", "detainer_number": "GD-14", "received_at": "2014-03-05T09:00", "issuing_office": "X"}
    response = desk.post("/detainers", "intake", body)
    assert response.status_code == 201 and response.headers["content-type"] == "application/json"
    assert response.json() == json.loads(IntakeResult.model_validate(response.json()).model_dump_json())


def _batcher_counting_batches(make_desk, db_url, monkeypatch, linger: float, commit_seconds: float):
    """(desk under test, its server's api.WriteBatcher, a clerk, the sizes of the batches it writes): the
    batcher with `linger` as GROUP_COMMIT_LINGER, its desk's own write_many noting each batch's size and
    then taking `commit_seconds` longer."""
    import time

    from securecomm.desk import api

    monkeypatch.setattr(api, "GROUP_COMMIT_LINGER", linger)
    under_test = make_desk(db_url)
    batcher = under_test.client.app.state.writes
    service = batcher.desk  # the server's own desk
    clerk = service.authenticate(under_test.headers("intake")["Authorization"].split()[1])
    sizes: list[int] = []
    write_many = service.write_many

    def counted(intakes, reviews):
        sizes.append(len(intakes) + len(reviews))
        time.sleep(commit_seconds)
        return write_many(intakes, reviews)

    service.write_many = counted
    return under_test, batcher, clerk, sizes


def test_the_servers_batcher_gathers_the_clients_just_answered_and_a_quiet_desk_never_waits(
    make_desk, db_url, monkeypatch
):
    """The server's api.WriteBatcher, on each backend: one batch at a time with the group-commit delay
    (GROUP_COMMIT_LINGER). A write on a quiet desk is made at once; after a batch of three, the next batch
    waits for the three clients to come back rather than take the first alone: nine intakes of three busy
    clients in three transactions, not seven (busy clients would otherwise settle into groups that the writer
    takes in turn, each paying a transaction's fixed cost: on PostgreSQL most of a batch's cost)."""
    import asyncio
    import time

    linger = 5.0  # far longer than the clients' turn-around (20-60 ms), and than a write made at once
    under_test, batcher, clerk, sizes = _batcher_counting_batches(make_desk, db_url, monkeypatch, linger, 0.0)

    async def scenario() -> tuple[float, float]:
        started = time.monotonic()
        await batcher.intake(clerk, _body(500), None)
        alone = time.monotonic() - started

        async def client(number: int) -> None:
            for turn in range(3):
                await batcher.intake(clerk, _body(600 + 10 * number + turn), None)
                await asyncio.sleep(0.02 * (number + 1))  # back one after another, as clients are

        started = time.monotonic()
        await asyncio.gather(*(client(number) for number in range(3)))
        return alone, time.monotonic() - started

    alone, together = asyncio.run(scenario())
    assert alone < linger
    assert sizes == [1, 3, 3, 3]
    assert together < linger  # the linger ends as soon as the three are back
    report = under_test.desk.verify_audit()
    assert report.ok, report.describe()


def test_the_servers_batcher_joins_the_writes_that_came_during_a_batch_with_the_clients_it_answered(
    make_desk, db_url, monkeypatch
):
    """Two clients out of step — the second's write arrives while the first's is being written — are written
    together from the second batch on: after a batch, the next one lingers for the clients just answered
    beside the writes that came meanwhile (api.WriteBatcher). Counting only the batch just written, the
    one waiting write was already as many, so the writer took the two clients in turn, one transaction each,
    for good: five batches of one rather than [1, 2, 2]."""
    import asyncio
    import time

    linger = 5.0  # far longer than the clients' turn-around (10 ms)
    # Each batch as a slow commit: the second client's write arrives while the first's is written.
    under_test, batcher, clerk, sizes = _batcher_counting_batches(make_desk, db_url, monkeypatch, linger, 0.05)

    async def client(first: int, turns: int, start: float) -> None:
        await asyncio.sleep(start)
        for turn in range(turns):
            await batcher.intake(clerk, _body(first + turn), None)
            await asyncio.sleep(0.01)

    async def scenario() -> float:
        started = time.monotonic()
        # The second client's first write comes 10 ms into the first's batch of one.
        await asyncio.gather(client(700, 3, 0.0), client(710, 2, 0.01))
        return time.monotonic() - started

    elapsed = asyncio.run(scenario())
    assert sizes == [1, 2, 2]
    assert elapsed < linger  # each linger ended as soon as the two were back
    report = under_test.desk.verify_audit()
    assert report.ok, report.describe()


def test_a_writer_thread_keeps_its_connection_and_a_broken_one_is_replaced(desk, backend):
    """The server's writer threads keep their write connection between transactions (no checkout, and on
    PostgreSQL no ping, for each). A connection that breaks (PostgreSQL: its backend ended, as by a restart)
    fails the batch on it, which is then written intake by intake on a fresh connection: every intake answered
    and recorded once, the chain one sequence."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import event, text

    service, database = desk.desk, desk.database
    clerk = service.authenticate(desk.headers("intake")["Authorization"].split()[1])
    checkouts = []
    event.listen(database.engine, "checkout", lambda *_: checkouts.append(1))
    writer = ThreadPoolExecutor(max_workers=1, initializer=database.hold_write_connections)
    try:
        after_the_first = None
        for first in range(100, 130, 6):
            answers, _ = writer.submit(service.write_many, [(clerk, _body(first + i), None) for i in range(6)]).result()
            assert all(isinstance(answer, dict) for answer in answers), answers
            after_the_first = after_the_first or len(checkouts)
        assert len(checkouts) == after_the_first  # four more transactions on the same connection
        if backend == "postgresql":
            with database.engine.connect() as other:  # every other backend of this database ends
                other.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            checkouts.clear()
            answers, _ = writer.submit(service.write_many, [(clerk, _body(200 + i), None) for i in range(4)]).result()
            assert all(isinstance(answer, dict) for answer in answers), answers
            assert checkouts  # a fresh connection
            again, _ = writer.submit(service.write_many, [(clerk, _body(210), None)]).result()
            assert isinstance(again[0], dict)
    finally:
        writer.shutdown()
    report = service.verify_audit()
    assert report.ok, report.describe()
    with database.engine.connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM detainers WHERE booking_ref LIKE 'G-2%'")).scalar()
    assert stored == (5 if backend == "postgresql" else 0)


def test_the_desk_asks_no_telemetry_provider_per_request(sqlite_desk, monkeypatch):
    """FastAPI's native OpenTelemetry, which the desk does not use, is off: it would ask the global providers
    whether they are configured on every request (~5 % of the event loop's CPU per intake)."""
    from opentelemetry import trace

    asked = []
    provider = trace.get_tracer_provider
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: asked.append(1) or provider())
    sqlite_desk.intake(booking_ref="T-1", detainer_number="TD-000001")
    assert sqlite_desk.get("/review-queue", "reviewer").status_code == 200
    assert asked == []


def test_on_postgresql_the_chain_heads_lock_is_held_for_one_round_trip_and_the_commit(make_desk, request, tmp_path):
    """PostgreSQL: a batch's audit entries, the chain head's move and the COMMIT go to the server in one round
    trip (psycopg's pipeline mode): the head, locked the round trip before, is held for that one round trip and
    the commit's fsync, while the other server process's batch waits for it. Read from libpq's trace of the
    protocol: nothing comes back from the server between the head's move and the COMMIT (before, the head's
    move was answered first, and the COMMIT took a round trip of its own)."""
    import psycopg
    from sqlalchemy import event

    under_test = make_desk(request.getfixturevalue("postgres_server").create_database())
    service = under_test.desk
    clerk = service.authenticate(under_test.headers("intake")["Authorization"].split()[1])
    trace_path = tmp_path / "libpq.trace"
    with trace_path.open("w") as trace:

        def traced(dbapi_connection, _record, _proxy) -> None:
            dbapi_connection.pgconn.trace(trace.fileno())
            dbapi_connection.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

        def untraced(dbapi_connection, _record) -> None:
            dbapi_connection.pgconn.untrace()

        event.listen(service.database.engine, "checkout", traced)
        event.listen(service.database.engine, "checkin", untraced)
        answers, _ = service.write_many([(clerk, _body(800 + number), None) for number in range(3)])
        event.remove(service.database.engine, "checkout", traced)
    assert all(isinstance(answer, dict) for answer in answers), answers
    messages = [line.split("\t") for line in trace_path.read_text().splitlines()]
    moved = next(index for index, fields in enumerate(messages) if "UPDATE audit_head" in " ".join(fields))
    committed = next(index for index, fields in enumerate(messages) if index > moved and '"COMMIT"' in " ".join(fields))
    between = [fields[0] for fields in messages[moved:committed]]
    assert "B" not in between, messages[moved : committed + 1]
    assert service.verify_audit().ok
