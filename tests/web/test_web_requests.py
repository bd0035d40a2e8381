"""The lab's question read from a form, its cache key, the job store; pages escape what visitors type.
(No browser: the app's routes through Starlette's test client, without starting the job worker.)"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs

from fastapi.testclient import TestClient

from securecomm.web import create_app
from securecomm.web.jobs import JobStore
from securecomm.web.lab import LabRequest, parse_request, resolve_place_text

FORM = {
    "place": ["Fairfield County, CT"],
    "start": ["2012-01-01"],
    "end": ["2012-12-31"],
    "policies": ["ct/trust-act-2013", "us/ice-request"],
    "baseline": ["us/ice-request"],
    "replications": ["3"],
    "seed": ["11"],
}


def test_a_form_becomes_a_question_with_the_baseline_first():
    request, errors = parse_request(FORM)
    assert errors == {}
    assert request == LabRequest(
        "09001",
        dt.date(2012, 1, 1),
        dt.date(2012, 12, 31),
        ("us/ice-request", "ct/trust-act-2013"),
        "us/ice-request",
        3,
        11,
    )
    # The same question however it is typed has the same key; another seed, another key.
    same, _ = parse_request({**FORM, "place": ["09001"], "policies": ["us/ice-request", "ct/trust-act-2013"]})
    other, _ = parse_request({**FORM, "seed": ["12"]})
    assert same.key == request.key != other.key
    assert parse_request(parse_qs(request.query()))[0] == request  # the permanent link asks it again


def test_every_bad_field_is_named_in_words():
    _, errors = parse_request(
        {
            "place": ["Washington County"],
            "start": ["2013-02-30"],
            "end": ["2007-01-01"],
            "policies": ["us/ice-request", "no/such-policy"],
            "baseline": ["historical"],
            "replications": ["50"],
            "seed": ["x"],
        }
    )
    assert set(errors) == {"place", "start", "end", "policies", "baseline", "replications", "seed"}
    assert "“Washington County” matches 30 places" in errors["place"]
    assert "not a date" in errors["start"]
    assert "from 1 to 20" in errors["replications"]


def test_effects_and_participation_are_part_of_the_question_and_its_key():
    plain, _ = parse_request(FORM)
    effects, errors = parse_request({**FORM, "effects": ["on"], "scenarios": ["foster_care", "mental_health"]})
    assert errors == {} and effects.effects and effects.scenarios == ("mental_health", "foster_care")  # studies' order
    assert effects.effect_names[-2:] == ("mental_health", "foster_care") and "index_crime" in effects.effect_names
    opted_out, errors = parse_request(
        {
            **FORM,
            "participation_mode": ["no-detainers"],
            "participation_place": ["Illinois"],
            "participation_date": ["2011-05-04"],
        }
    )
    assert errors == {} and opted_out.participation == "IL=no-detainers@2011-05-04"
    assert opted_out.plan().participation[0].mode == "no-detainers" and plain.plan().participation == ()
    assert len({plain.key, effects.key, opted_out.key}) == 3
    for request in (effects, opted_out):  # the permanent link and the job store give the same question
        assert parse_request(parse_qs(request.query()))[0] == request
        assert LabRequest.from_dict(request.to_dict()) == request
    # A mode left blank is no reform, whatever the other two fields say.
    assert parse_request({**FORM, "participation_place": ["IL"]})[0] == plain


def test_every_bad_participation_field_is_named_in_words():
    _, errors = parse_request({**FORM, "participation_mode": ["delayed"], "participation_place": ["US"]})
    assert errors == {
        "participation_place": "A participation reform is a state's or a county's: choose one, not US.",
        "participation_date": "Give the date activation is delayed to, as YYYY-MM-DD.",
    }
    _, errors = parse_request({**FORM, "participation_mode": ["leave"], "scenarios": ["astrology"]})
    assert set(errors) == {"participation_mode", "scenarios"}


def test_places_by_name_or_code():
    assert resolve_place_text("Connecticut") == "CT"
    assert resolve_place_text("fairfield county, ct") == "09001"
    assert resolve_place_text("ct, 36061") == "CT,36061"
    assert resolve_place_text("US") == "US"


def test_a_question_is_queued_once(tmp_path):
    store = JobStore(tmp_path)
    request, _ = parse_request(FORM)
    assert store.add(request) is True
    assert store.add(request) is False
    job = store.get(request.key)
    assert (job.status, job.done, job.total, job.request) == ("queued", 0, 3, request)
    store.finish(request.key, "ValueError: bad")
    assert store.retry(request.key) is True and store.get(request.key).status == "queued"


def test_what_visitors_type_is_escaped(tmp_path):
    client = TestClient(create_app(tmp_path))
    page = client.get("/lab/compare", params={"place": "<script>alert(1)</script>"})
    assert page.status_code == 422
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text
    tried = client.get("/policies/try", params={"case_json": '{"case_id": "<b>x</b>"}'})
    assert "<b>x</b>" not in tried.text and "&lt;b&gt;x&lt;/b&gt;" in tried.text
    assert client.get("/lab/runs/0123/progress").status_code == 404


def test_a_job_is_started_once(tmp_path):
    store = JobStore(tmp_path)
    request, _ = parse_request(FORM)
    store.add(request)
    assert store.start(request.key) is True
    assert store.start(request.key) is False  # a second worker finds it taken
    store.requeue_running()  # a server that stopped with it running
    assert store.get(request.key).status == "queued"
