"""Several participation reforms in the lab's question, without a browser: the form's rows become the
question in order, its permanent link asks it again (blank dates included), one reform keeps the key it had
when the lab took only one, and every bad row is named by its number."""

from __future__ import annotations

from urllib.parse import parse_qs

from securecomm.web.lab import MAX_PARTICIPATIONS, LabRequest, form_values, parse_request

FORM = {
    "place": ["CT"],
    "start": ["2012-01-01"],
    "end": ["2012-12-31"],
    "policies": ["us/ice-request"],
    "baseline": ["us/ice-request"],
    "replications": ["2"],
    "seed": ["4"],
}


def rows(*reforms: tuple[str, str, str]) -> dict[str, list[str]]:
    return {
        "participation_place": [place for place, _, _ in reforms],
        "participation_mode": [mode for _, mode, _ in reforms],
        "participation_date": [day for _, _, day in reforms],
    }


def test_the_rows_become_the_question_in_order_and_the_link_asks_it_again():
    request, errors = parse_request(
        {**FORM, **rows(("NY", "no-detainers", ""), ("", "", ""), ("Illinois", "never", "2011-05-04"))}
    )
    assert errors == {}
    assert request.participation_specs == ("NY=no-detainers", "IL=never@2011-05-04")  # the blank row is no reform
    assert [reform.mode for reform in request.plan().participation] == ["no-detainers", "never"]
    # The first reform's date is blank: the link keeps it, so the second reform's date stays the second's.
    again, _ = parse_request(parse_qs(request.query(), keep_blank_values=True))
    assert again == request and LabRequest.from_dict(request.to_dict()) == request
    assert request.participation_words() == (
        "New York, 62 counties: prints sent, every detainer declined from the start; "
        "Illinois, 102 counties: not activated from 2011-05-04"
    )


def test_one_reform_keeps_its_key_and_the_order_of_two_changes_it():
    one, _ = parse_request({**FORM, **rows(("IL", "never", "2011-05-04"))})
    assert one.to_dict()["participation"] == "IL=never@2011-05-04"  # as the lab stored one reform before
    two, _ = parse_request({**FORM, **rows(("IL", "never", "2011-05-04"), ("NY", "no-detainers", ""))})
    swapped, _ = parse_request({**FORM, **rows(("NY", "no-detainers", ""), ("IL", "never", "2011-05-04"))})
    plain, _ = parse_request(FORM)
    assert len({one.key, two.key, swapped.key, plain.key}) == 4


def test_every_bad_row_is_named_by_its_number_and_what_was_typed():
    values = {
        **FORM,
        **rows(("IL", "never", "2011-05-04"), ("Atlantis", "delayed", ""), ("Cook County, IL", "never", "")),
    }
    _, errors = parse_request(values)
    assert set(errors) == {"participation_place-2", "participation_date-2", "participation_place-3"}
    assert errors["participation_date-2"] == "Give the date activation is delayed to, as YYYY-MM-DD."
    assert errors["participation_place-3"] == (
        "Reform 1 already sets “activation never happens” for this county: keep one of the two."
    )
    labels = form_values(values)["participation_labels"]
    assert labels["participation_place-2"] == (
        "Participation reform 2 (“Atlantis”, activation delayed to the date): state or county"
    )
    # Different modes on the same counties are no repeat (a delay, then a refusal of detainers).
    _, errors = parse_request({**FORM, **rows(("IL", "delayed", "2010-01-01"), ("IL", "no-detainers", "2011-05-04"))})
    assert errors == {}


def test_the_form_shows_three_rows_one_more_than_those_filled_and_refuses_too_many():
    assert len(form_values(FORM)["participations"]) == 3
    three = rows(("IL", "never", ""), ("NY", "no-detainers", ""), ("MA", "no-detainers", ""))
    assert len(form_values({**FORM, **three})["participations"]) == 4
    states = ["IL", "NY", "MA", "CT", "NJ", "CA", "WA"]
    too_many = rows(*((state, "never", "") for state in states))
    assert len(form_values({**FORM, **too_many})["participations"]) == len(states)
    request, errors = parse_request({**FORM, **too_many})
    assert request is None
    assert errors == {
        f"participation_mode-{MAX_PARTICIPATIONS + 1}": (
            f"At most {MAX_PARTICIPATIONS} participation reforms in one question: leave the others blank."
        )
    }
