"""Several participation reforms in one lab question (issue 15): Illinois never activated from May 4, 2011
and New York refusing every detainer, on Kane County, IL (activated 2009-11-24) and Nassau County, NY
(2011-02-08) in 2012 — both reforms in the result, each in its own county's numbers, both in the permanent
link; a bad entry among several is named with its number and what was typed."""

from __future__ import annotations

import csv
import io
from urllib.parse import parse_qs, urlsplit

from .conftest import axe_violations, screenshot

KANE, NASSAU = "17089", "36059"
QUESTION = (
    f"/lab/compare?place={KANE},{NASSAU}&start=2012-01-01&end=2012-12-31&policies=us/ice-request"
    "&baseline=us/ice-request&replications=1&seed=5"
)


def _by_county(page, server, key: str, metric: str) -> dict[str, float]:
    """The median of a metric per county, from the results' map CSV."""
    response = page.request.get(f"{server.url}/lab/runs/{key}/map.csv?metric={metric}")
    assert response.ok, response.status
    return {row["fips"]: float(row["median"]) for row in csv.DictReader(io.StringIO(response.text()))}


def _reform(page, number: int, mode: str, place: str, day: str = "") -> None:
    row = page.locator(f"#participation-{number}")
    row.get_by_label("Participation", exact=True).select_option(label=mode)
    row.get_by_label("State or county", exact=True).fill(place)
    row.get_by_label("From", exact=True).fill(day)


def test_two_participation_reforms_both_change_the_run(server, page):
    # The question as it was: both counties matched prints in IDENT and honored detainers in 2012.
    page.goto(server.url + QUESTION)
    page.wait_for_selector("table.comparison", timeout=180_000)
    href = page.get_by_role("link", name="Download the report").get_attribute("href")
    as_it_was = href.split("/")[3]
    matches = _by_county(page, server, as_it_was, "ident_matches")
    honored = _by_county(page, server, as_it_was, "detainers_honored")
    assert matches[KANE] > 0 and matches[NASSAU] > 0 and honored[NASSAU] > 0

    # The same question from the form, with two reforms.
    page.goto(server.url + "/lab?" + QUESTION.split("?", 1)[1])
    assert page.locator("fieldset.participation-reform").count() == 3  # a row each for IL, NY and MA
    _reform(page, 1, "activation never happens", "Illinois", "2011-05-04")
    _reform(page, 2, "prints go to the FBI but the state refuses detainers", "NY")
    page.get_by_role("button", name="Run the comparison").click()
    page.wait_for_selector("table.comparison", timeout=180_000)
    key = page.get_by_role("link", name="Download the report").get_attribute("href").split("/")[3]
    assert key != as_it_was

    meta = page.locator(".meta").inner_text()
    assert "Illinois, 102 counties: not activated from 2011-05-04" in meta
    assert "New York, 62 counties: prints sent, every detainer declined from the start" in meta
    # Illinois's reform: no print checked in Kane County; New York's: Nassau's prints still matched, and
    # every detainer there declined rather than honored.
    matches = _by_county(page, server, key, "ident_matches")
    honored = _by_county(page, server, key, "detainers_honored")
    declined = _by_county(page, server, key, "detainers_declined")
    assert matches[KANE] == 0 and matches[NASSAU] > 0
    assert honored[NASSAU] == 0 and declined[NASSAU] > 0
    screenshot(page, "results-two-participation-reforms")

    asked = parse_qs(urlsplit(page.locator("#permalink").input_value()).query, keep_blank_values=True)
    assert asked["participation_place"] == ["IL", "NY"]
    assert asked["participation_mode"] == ["never", "no-detainers"]
    assert asked["participation_date"] == ["2011-05-04", ""]
    # "Change the question" brings the form back with both reforms in their rows, and a free row.
    page.goto(f"{server.url}/lab?{urlsplit(page.locator('#permalink').input_value()).query}")
    assert page.locator("#participation_place").input_value() == "IL"
    assert page.locator("#participation_mode-2").input_value() == "no-detainers"
    assert page.locator("#participation_place-3").input_value() == ""


def test_a_bad_entry_among_several_is_named(server, page):
    page.goto(
        server.url
        + QUESTION
        + "&participation_place=IL&participation_mode=never&participation_date=2011-05-04"
        + "&participation_place=Nowhere&participation_mode=no-detainers&participation_date="
        + "&participation_place=Illinois&participation_mode=never&participation_date="
    )
    summary = page.locator(".error-summary").inner_text()
    assert (
        "Participation reform 2 (“Nowhere”, prints go to the FBI but the state refuses detainers): state or county: "
        "No state or county is called “Nowhere”" in summary
    )
    assert (
        "Participation reform 3 (“Illinois”, activation never happens): state or county: Reform 1 already sets "
        "“activation never happens” for 102 of these counties" in summary
    )
    assert page.locator("#participation_place-2").get_attribute("aria-invalid") == "true"
    assert page.locator("#participation_place").get_attribute("aria-invalid") is None  # the good one stays good
    # The summary's link points at the bad entry's own field.
    link = page.locator(".error-summary a", has_text="Participation reform 2")
    assert link.get_attribute("href") == "#participation_place-2"
    screenshot(page, "lab-participation-errors-several")
    assert axe_violations(page) == []
