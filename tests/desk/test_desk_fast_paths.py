"""The lean paths of intake and review (`api.FastRoutes`) answer every request exactly as the routes do.

The same scenario — answers in order, refusals of every kind, bad headers, paths and bodies — runs on two
desks with the same clock: one with the lean paths, one with them switched off (every request through
FastAPI's routes). Statuses, bodies, the headers that matter and the audit chain's entries must be the
same; and the lean paths must really have answered the plain requests, not handed them all on."""

from __future__ import annotations

import json

from securecomm.desk.api import FastRoutes

from .conftest import PASSWORD

BASE = {"received_at": "2014-03-05T09:00:00", "issuing_office": "ERO Hartford"}


def lean_paths(under_test) -> list:
    (middleware,) = [item for item in under_test.client.app.user_middleware if item.cls is FastRoutes]
    return middleware.kwargs["routes"]


def spy_on(routes: list) -> dict[str, int]:
    """Count the requests each lean path answered itself and those it handed on to the route."""
    counts = {"answered": 0, "handed_on": 0}

    def counted(handler):
        async def handle(scope, receive, send, fallback):
            handed_on = False

            async def fallback_counted(*args):
                nonlocal handed_on
                handed_on = True
                await fallback(*args)

            await handler(scope, receive, send, fallback_counted)
            counts["handed_on" if handed_on else "answered"] += 1

        return handle

    routes[:] = [(method, pattern, counted(handler)) for method, pattern, handler in routes]
    return counts


def scenario(under_test) -> list:
    client = under_test.client
    intake, reviewer = under_test.headers("intake")["Authorization"], under_test.headers("reviewer")["Authorization"]
    answers = []

    def call(method: str, path: str, *, headers=None, body=None, content=None, auth: str | None = intake):
        sent = {"Content-Type": "application/json"}
        if auth is not None:
            sent["Authorization"] = auth
        sent.update(headers or {})
        if body is not None:
            content = json.dumps(body)
        response = client.request(method, f"/api/v1{path}", headers=sent, content=content)
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        kept = {name: response.headers.get(name) for name in ("content-type", "idempotent-replayed", "retry-after")}
        kept.update(
            (name, response.headers.get(name))
            for name in ("x-content-type-options", "cache-control", "content-security-policy", "www-authenticate")
        )
        answers.append((method, path, response.status_code, payload, kept))
        return response

    def warm() -> None:  # a request the routes answer, so that the tokens are in the desk's token cache
        call("GET", "/desk")
        call("GET", "/desk", auth=reviewer)

    warm()
    # intake: in order, twice (409), under an Idempotency-Key (replayed; another body: 409)
    first = {"booking_ref": "B-1", "detainer_number": "D-1", **BASE}
    call("POST", "/detainers", body=first)
    call("POST", "/detainers", body=first)
    keyed = {"booking_ref": "B-2", "detainer_number": "D-2", **BASE, "final_order": True}
    call("POST", "/detainers", body=keyed, headers={"Idempotency-Key": "key-1"})
    call("POST", "/detainers", body=keyed, headers={"Idempotency-Key": "key-1"})
    call("POST", "/detainers", body={**keyed, "detainer_number": "D-3"}, headers={"Idempotency-Key": "key-1"})
    call("POST", "/detainers", body={**keyed, "detainer_number": "D-4"}, headers={"Idempotency-Key": "a key"})
    call("POST", "/detainers", body={**keyed, "detainer_number": "D-5"}, headers={"Idempotency-Key": "k" * 201})
    call(
        "POST",
        "/detainers",
        body={**keyed, "detainer_number": "D-6"},
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    # bad bodies, types and headers
    call("POST", "/detainers", body={"detainer_number": "D-7", **BASE})
    call("POST", "/detainers", body={"booking_ref": "B-8", "detainer_number": "D-8", **BASE, "age": "old"})
    call("POST", "/detainers", body={"booking_ref": "B-9", "detainer_number": "D-9", **BASE, "colour": "red"})
    call("POST", "/detainers", body={"booking_ref": "B-10", "detainer_number": "D-10", **BASE, "age": 30.0})
    call("POST", "/detainers", body={"booking_ref": "B-11", "detainer_number": "D-11", **BASE, "final_order": 1})
    call("POST", "/detainers", body={"booking_ref": "B-12", "detainer_number": "D-12", **BASE, "received_at": "soon"})
    call("POST", "/detainers", body=[first])
    call("POST", "/detainers", content="{not json")
    call("POST", "/detainers", content=b"\xff\xfe")
    call("POST", "/detainers", content="")
    call("POST", "/detainers", body=first, headers={"Content-Type": "text/plain"})
    call("POST", "/detainers", body={"booking_ref": "B-13", "detainer_number": "D-13", **BASE, "booking_ref ": "x"})
    # who may: no token, an unknown one, another scheme, a role without the permission
    call("POST", "/detainers", body={"booking_ref": "B-14", "detainer_number": "D-14", **BASE}, auth=None)
    call("POST", "/detainers", body={"booking_ref": "B-15", "detainer_number": "D-15", **BASE}, auth="Bearer nope")
    call("POST", "/detainers", body={"booking_ref": "B-16", "detainer_number": "D-16", **BASE}, auth="Basic abc")
    call("POST", "/detainers", body={"booking_ref": "B-17", "detainer_number": "D-17", **BASE}, auth=reviewer)
    # cases for review, then reviews: in order, twice (409), of no such detainer, bad ids and bodies, a role
    # without the permission
    warm()
    ids = [
        call("POST", "/detainers", body={"booking_ref": f"R-{n}", "detainer_number": f"R-{n}", **BASE}).json()["id"]
        for n in range(3)
    ]
    review = {"decision": "honor", "reason": "reviewed"}
    call("POST", f"/detainers/{ids[0]}/review", body=review, auth=reviewer)
    call("POST", f"/detainers/{ids[0]}/review", body={"decision": "decline", "reason": "again"}, auth=reviewer)
    call("POST", f"/detainers/{ids[1]}/review", body={"decision": "decline", "reason": "no"}, auth=reviewer)
    call("POST", "/detainers/999999/review", body=review, auth=reviewer)
    call("POST", "/detainers/0/review", body=review, auth=reviewer)
    call("POST", "/detainers/00012/review", body=review, auth=reviewer)
    call("POST", f"/detainers/{2**63}/review", body=review, auth=reviewer)
    call("POST", f"/detainers/{2**63 - 1}/review", body=review, auth=reviewer)
    call("POST", f"/detainers/{ids[2]}/review", body={"decision": "maybe", "reason": "x"}, auth=reviewer)
    call("POST", f"/detainers/{ids[2]}/review", body={"decision": "honor", "reason": "  "}, auth=reviewer)
    call("POST", f"/detainers/{ids[2]}/review", body=review, auth=intake)
    call("POST", f"/detainers/{ids[2]}/review", body=review, auth=None)
    call("POST", f"/detainers/{ids[2]}/review", content="{", auth=reviewer)
    call("POST", f"/detainers/{ids[2]}/review/", body=review, auth=reviewer)
    call("POST", f"/detainers/{ids[2]}/review", body=review, auth=reviewer)
    # a password to change first: refused (403) and audited, by the routes and the lean path alike
    supervisor = under_test.headers("supervisor")
    reset = client.post(
        "/api/v1/users/intake/password", json={"new_password": "a temporary passphrase 1"}, headers=supervisor
    )
    assert reset.status_code == 200, reset.text
    token = client.post(
        "/api/v1/auth/token", json={"username": "intake", "password": "a temporary passphrase 1"}
    ).json()["access_token"]
    call("GET", "/desk", auth=f"Bearer {token}")
    call("POST", "/detainers", body={"booking_ref": "B-18", "detainer_number": "D-18", **BASE}, auth=f"Bearer {token}")
    return answers


def chain(under_test) -> list:
    """The audit chain's entries as the two desks can share them (their keys and tokens differ)."""
    entries = []
    for entry in under_test.desk.audit_entries(under_test.desk.authenticate(under_test.tokens["supervisor"]), 0, 1000):
        details = {key: value for key, value in entry["details"].items() if key not in ("rows", "session")}
        entries.append((entry["actor"], entry["action"], entry["subject"], details))
    return entries


def test_the_lean_paths_answer_as_the_routes_do(make_desk, tmp_path):
    lean = make_desk(f"sqlite:///{tmp_path / 'lean.sqlite3'}")
    routed = make_desk(f"sqlite:///{tmp_path / 'routed.sqlite3'}")
    lean_paths(routed).clear()
    counts = spy_on(lean_paths(lean))

    answers_lean, answers_routed = scenario(lean), scenario(routed)
    assert len(answers_lean) == len(answers_routed)
    for got, expected in zip(answers_lean, answers_routed, strict=True):
        assert got == expected
    assert chain(lean) == chain(routed)
    statuses = {status for _, _, status, _, _ in answers_lean}
    assert {200, 201, 401, 403, 404, 409, 422} <= statuses
    # the plain intakes and reviews were answered by the lean paths themselves
    assert counts["answered"] >= 6, counts
    assert counts["handed_on"] >= 20, counts


def test_an_intake_over_the_size_limit_is_refused_before_the_lean_path_reads_it(make_desk, sqlite_url):
    under_test = make_desk(sqlite_url, max_body_bytes=2000)
    under_test.get("/desk", "intake")
    body = {"booking_ref": "B-1", "detainer_number": "D-1", **BASE, "issuing_office": "x" * 3000}
    response = under_test.post("/detainers", "intake", body)
    assert response.status_code == 413
    assert response.headers["x-content-type-options"] == "nosniff"

    def chunks():  # no Content-Length: the limit stops the read
        yield json.dumps(body).encode()

    headers = {**under_test.headers("intake"), "Content-Type": "application/json"}
    response = under_test.client.post("/api/v1/detainers", content=chunks(), headers=headers)
    assert response.status_code == 413
    under_test.headers("supervisor")
    assert [entry for entry in chain(under_test) if entry[1] == "detainer.create"] == []


def test_a_revoked_token_is_refused_by_the_lean_path_at_once(make_desk, sqlite_url):
    under_test = make_desk(sqlite_url)
    headers = under_test.headers("intake")
    assert under_test.get("/desk", "intake").status_code == 200  # now in the token cache
    assert under_test.client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    response = under_test.post("/detainers", "intake", {"booking_ref": "B-1", "detainer_number": "D-1", **BASE})
    assert response.status_code == 401


# --- intakes written together ---------------------------------------------------------------


def _in_one_transaction(desk, intakes, reviews=()):
    """desk.write_many, failing if the batch's transaction failed and each write was then made alone (its
    fallback): the answers would be the same, and the batch's own path would go untested."""

    def one_by_one(*_args, **_options):
        raise AssertionError("the batch's transaction failed: write_many wrote each alone instead")

    desk._intake_alone = desk._review_alone = one_by_one
    try:
        return desk.write_many(intakes, reviews)
    finally:
        del desk._intake_alone, desk._review_alone


def _answers_and_rows(desk, batches, together: bool):
    from sqlalchemy import select

    from securecomm.desk.api import DetainerIntake
    from securecomm.desk.models import Detainer, Event
    from securecomm.desk.service import DeskError

    actor = desk.authenticate(desk.login("intake", PASSWORD).token)
    answers = []
    for batch in batches:
        bodies = [DetainerIntake.model_validate(body).model_dump() for body in batch]
        if together:
            got = _in_one_transaction(desk, [(actor, body, None) for body in bodies])[0]
        else:
            got = []
            for body in bodies:
                try:
                    got.append(desk.intake(actor, body))
                except DeskError as error:
                    got.append(error)
        answers += [
            (type(answer).__name__, str(answer), getattr(answer, "existing_id", None))
            if isinstance(answer, Exception)
            else answer
            for answer in got
        ]
    with desk.database.read() as session:
        rows = [dict(row) for table in (Detainer, Event) for row in session.execute(select(table.__table__)).mappings()]
    supervisor = desk.authenticate(desk.login("supervisor", PASSWORD).token)
    entries = [
        (entry["action"], entry["subject"], {k: v for k, v in entry["details"].items() if k not in ("rows", "session")})
        for entry in desk.audit_entries(supervisor, 0, 1000)
    ]
    assert desk.verify_audit().ok
    return answers, rows, entries


def _written_together_and_alone(backend, tmp_path, request, write) -> list:
    """`write(desk, together)` on two fresh desks of the backend, in a batch and one by one: the answers,
    rows and audit entries are the same. Returns the answers."""
    from .conftest import FixedClock, initialize_desk

    if backend == "sqlite":
        urls = [f"sqlite:///{tmp_path / name}.sqlite3" for name in ("together", "alone")]
    else:
        server = request.getfixturevalue("postgres_server")
        urls = [server.create_database(), server.create_database()]
    results = []
    for url, together in zip(urls, (True, False), strict=True):
        desk = initialize_desk(url, FixedClock())
        try:
            results.append(write(desk, together))
        finally:
            desk.database.dispose()
    (answers, rows, entries), (expected_answers, expected_rows, expected_entries) = results
    assert answers == expected_answers
    assert rows == expected_rows
    assert entries == expected_entries
    return answers


def test_intakes_written_together_are_answered_recorded_and_audited_as_one_by_one(backend, tmp_path, request):

    def body(number: int, **facts) -> dict:
        return {"booking_ref": f"B-{number}", "detainer_number": f"D-{number}", **BASE, **facts}

    batches = [
        [body(1), body(2, final_order=True, release_eligible_at="2014-03-06T17:00:00"), body(3, age=17)],
        [
            body(4, public_safety_risk=False),
            body(5, received_at="1990-01-01T09:00:00"),  # no policy in force that day: 422
            body(6, final_order=True, detainer_form="I-247N"),
            body(7, convictions=[{"category": "burglary", "level": "felony", "years_ago": 3}]),
            # recorded in the batch before: 409 naming it (last: one by one, PostgreSQL's refused insert takes
            # a number of the sequence, and the ids after it would differ by that gap)
            body(2, final_order=True),
        ],
    ]
    answers = _written_together_and_alone(
        backend, tmp_path, request, lambda desk, together: _answers_and_rows(desk, batches, together)
    )
    assert [answer[0] for answer in answers if isinstance(answer, tuple)] == ["InvalidInput", "Conflict"]


def _reviews_answers_and_rows(desk, together: bool):
    """A batch of intakes and reviews (Desk.write_many), or the same writes one by one in the order the
    batch makes them: the intakes in order, then the reviews by detainer id (by arrival for one id)."""
    from sqlalchemy import select

    from securecomm.desk.api import DetainerIntake
    from securecomm.desk.models import Detainer, Event
    from securecomm.desk.service import DeskError

    def body(number: int, **facts) -> dict:
        raw = {"booking_ref": f"R-{number}", "detainer_number": f"RD-{number}", **BASE, **facts}
        return DetainerIntake.model_validate(raw).model_dump()

    clerk = desk.authenticate(desk.login("intake", PASSWORD).token)
    judge = desk.authenticate(desk.login("reviewer", PASSWORD).token)
    # Before the batch: three awaiting review (one with release eligibility, so honoring it sets a hold),
    # one decided automatically.
    pending = [desk.intake(clerk, body(1))["id"], desk.intake(clerk, body(2, release_eligible_at="2014-03-06T17:00"))]
    pending.append(desk.intake(clerk, body(3))["id"])
    pending[1] = pending[1]["id"]
    automatic = desk.intake(clerk, body(4, final_order=True))["id"]
    intakes = [(clerk, body(5), None), (clerk, body(6, public_safety_risk=False), None)]
    reviews = [
        (judge, pending[2], "decline", "  no judicial warrant  "),
        (judge, pending[1], "honor", "final order seen"),
        (judge, 10_000, "honor", "no such detainer"),  # 404
        (judge, automatic, "decline", "decided already"),  # 409
        (judge, pending[2], "honor", "a second review of the same case"),  # 409: the first of the batch won
        (clerk, pending[0], "honor", "not a reviewer"),  # 403
        (judge, pending[0], "maybe", "no such decision"),  # 422
        (judge, automatic + 1, "honor", "recorded in this very batch"),  # the batch's first intake (review)
    ]
    if together:
        intake_answers, review_answers = _in_one_transaction(desk, intakes, reviews)
        answers = [*intake_answers, *review_answers]
    else:
        answers = []
        for actor, request, key in intakes:
            answers.append(desk.intake(actor, request, key))
        review_answers = [None] * len(reviews)
        for _, index in sorted((review[1], index) for index, review in enumerate(reviews)):
            try:
                review_answers[index] = desk.review(*reviews[index])
            except DeskError as error:
                review_answers[index] = error
        answers += review_answers
    answers = [
        (type(a).__name__, str(a), getattr(a, "existing_id", None)) if isinstance(a, Exception) else a for a in answers
    ]
    with desk.database.read() as session:
        rows = [
            dict(row)
            for table in (Detainer, Event)
            for row in session.execute(select(table.__table__).order_by(table.id)).mappings()  # updated rows move
        ]
    supervisor = desk.authenticate(desk.login("supervisor", PASSWORD).token)
    entries = [
        (
            entry["action"],
            entry["subject"],
            entry["actor"],
            {k: v for k, v in entry["details"].items() if k not in ("rows", "session")},
        )
        for entry in desk.audit_entries(supervisor, 0, 1000)
        if not entry["action"].startswith("auth.")
    ]
    assert desk.verify_audit().ok
    return answers, rows, entries


def test_reviews_written_in_a_batch_are_answered_recorded_and_audited_as_one_by_one(backend, tmp_path, request):
    """Reviews go into the same group commit as intakes (api.WriteBatcher → Desk.write_many): each answered
    as alone — a review, a hold set by honoring, 404, 409 for a case decided automatically and for the second
    review of one case, 403 for a role that may not review, 422, a review of a detainer the same batch
    records — with the same rows and audit entries."""
    answers = _written_together_and_alone(backend, tmp_path, request, _reviews_answers_and_rows)
    kinds = [answer[0] if isinstance(answer, tuple) else answer["decision"] for answer in answers]
    assert kinds == [
        "review",
        "decline",
        "decline",
        "honor",
        "NotFound",
        "Conflict",
        "Conflict",
        "Forbidden",
        "InvalidInput",
        "honor",
    ]
    assert answers[3]["hold_until"] is not None and answers[2]["review"]["reason"] == "no judicial warrant"


def test_a_policy_set_between_an_intakes_checks_and_its_write_decides_it(desk):
    """An intake is decided under the policy in force when it is written: a set-policy that lands after
    the batch's checks, just before its write transaction takes the write lock, decides the whole batch —
    written together (no Idempotency-Key) and one by one within the batch (with one)."""
    import contextlib
    import datetime as dt

    from securecomm.desk.api import DetainerIntake

    service = desk.desk
    actor = service.authenticate(service.login("intake", PASSWORD).token)
    # Honored under ct/trust-act-2013 alone (in force at first); declined once ct/doc-2014 is.
    facts = {"pending_charges": True, "public_safety_risk": False}
    rounds = [
        ((None, None), dt.date(2014, 12, 15), "ct/doc-2014", "decline"),
        (("key-1", "key-2"), dt.date(2014, 12, 20), "ct/trust-act-2013", "honor"),
    ]
    opened = service.database.write_connection
    for keys, day, policy_id, decision in rounds:
        policy_set = []

        @contextlib.contextmanager
        def set_policy_first(day=day, policy_id=policy_id, policy_set=policy_set):
            if not policy_set:  # the batch's own transaction: the set-policy lands just before it
                policy_set.append(policy_id)
                service.set_policy(policy_id, day)
            with opened() as connection:
                yield connection

        bodies = [
            DetainerIntake.model_validate(
                {
                    "booking_ref": f"B-{day}-{n}",
                    "detainer_number": f"D-{n}",
                    **BASE,
                    **facts,
                    "received_at": f"{day}T09:00:00",
                }
            ).model_dump()
            for n in range(len(keys))
        ]
        service.database.write_connection = set_policy_first
        try:
            answers, _ = _in_one_transaction(
                service, [(actor, body, key) for body, key in zip(bodies, keys, strict=True)]
            )
        finally:
            del service.database.write_connection
        assert policy_set == [policy_id]
        assert [(answer["policy_id"], answer["decision"]) for answer in answers] == [(policy_id, decision)] * 2


def test_a_token_out_of_the_cache_is_checked_by_the_lean_path_itself(make_desk, sqlite_url):
    """A token not checked in the last second is checked by the lean path (Desk.authenticate, as the route
    would), not handed to the route: once a second per token and process, every busy client's intake would
    otherwise go through FastAPI's machinery. A revoked token still goes to the route, which refuses it."""
    under_test = make_desk(sqlite_url)
    app = under_test.client.app
    headers = under_test.headers("intake")
    assert under_test.get("/desk", "intake").status_code == 200  # builds the middleware stack
    lean = app.middleware_stack
    while not isinstance(lean, FastRoutes):
        lean = lean.app
    handed_on = []
    route = lean.app

    async def recorded(scope, receive, send):
        if scope["path"] == "/api/v1/detainers":
            handed_on.append(scope["method"])
        await route(scope, receive, send)

    lean.app = recorded
    # A logout empties the process's token cache (the other user's token here).
    assert under_test.client.post("/api/v1/auth/logout", headers=under_test.headers("reviewer")).status_code == 204
    response = under_test.post("/detainers", "intake", {"booking_ref": "B-1", "detainer_number": "D-1", **BASE})
    assert response.status_code == 201 and handed_on == []
    assert under_test.client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    response = under_test.post("/detainers", "intake", {"booking_ref": "B-2", "detainer_number": "D-2", **BASE})
    assert response.status_code == 401 and handed_on == ["POST"]
