"""What it does to communities, in the lab: New Haven County, CT (09009), 2012, two replications. The
effects chosen in the form appear with their bands, evidence and sentence (and their CSV, and in the
downloaded report) only when asked; a state's participation reform changes the run, is in the permanent
link, which reproduces it; effects and participation are part of the cache key."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from .conftest import axe_violations, fill_lab_question, screenshot

NEW_HAVEN = "09009"
POLICIES = ("us/ice-request", "ct/trust-act-2013")
QUESTION = (
    f"/lab/compare?place={NEW_HAVEN}&start=2012-01-01&end=2012-12-31&policies=us/ice-request"
    "&policies=ct/trust-act-2013&baseline=us/ice-request&replications=2&seed=3"
)


def _fill(page, server) -> None:
    page.goto(f"{server.url}/lab")
    page.get_by_label("Place", exact=True).fill(NEW_HAVEN)
    fill_lab_question(page, "2012-01-01", "2012-12-31", POLICIES, replications=2, seed=3)


def _run(page) -> str:
    """Send the form; the run's key (from its downloads) once the results are shown."""
    page.get_by_role("button", name="Run the comparison").click()
    page.wait_for_selector("table.comparison", timeout=180_000)
    return _key(page)


def _key(page) -> str:
    href = page.get_by_role("link", name=re.compile("Download the report")).get_attribute("href")
    return href.split("/")[3]


def _row(page, label: str) -> list[str]:
    row = page.locator("table.comparison tbody tr", has=page.locator(f"th:text-is('{label}')"))
    return [cell.inner_text() for cell in row.locator("td").all()]


def test_the_effects_appear_with_bands_when_asked_and_not_otherwise(server, page):
    _fill(page, server)
    page.get_by_label(re.compile("^The default effects")).check()
    page.get_by_label(re.compile("^Scenario: Psychological distress")).check()
    with_effects = _run(page)
    section = page.locator("#effects-section")
    assert section.get_by_role("heading", name="What it does to communities").is_visible()
    rows = page.locator("table.effects tbody tr[id^=effect-]")
    assert rows.count() == 5  # the four defaults and the scenario asked for
    victimization = page.locator("#effect-hispanic_victimization")
    text = victimization.inner_text()
    assert "default" in text and "Gonçalves" in text and "confirmed" in text
    assert victimization.locator("td.num").count() == len(POLICIES)
    assert " to " in victimization.locator("td.num").first.inner_text()  # the 90% band
    assert "scenario" in page.locator("#effect-mental_health").inner_text()
    meaning = section.locator("tr.meaning").nth(1).inner_text()
    assert "What it means for New Haven County, CT" in meaning and "crimes against Hispanic residents" in meaning
    csv = page.request.get(f"{server.url}/lab/runs/{with_effects}/effects.csv")
    assert csv.ok and csv.text().startswith("effect,label,kind,study,population,period,estimate,evidence,status,policy")
    assert csv.text().count("\n") == 1 + 5 * len(POLICIES)
    report = page.request.get(f"{server.url}/lab/runs/{with_effects}/report.html").text()
    assert "What it does to communities" in report and 'id="effect-mental_health"' in report
    permalink = page.locator("#permalink").input_value()
    assert parse_qs(urlsplit(permalink).query)["scenarios"] == ["mental_health"]
    screenshot(page, "results-effects")
    assert axe_violations(page) == []

    # The same question without the effects: another key, and no section.
    _fill(page, server)
    without = _run(page)
    assert without != with_effects
    assert page.locator("#effects-section").count() == 0
    assert page.request.get(f"{server.url}/lab/runs/{without}/effects.csv").status == 404


def test_a_participation_reform_changes_the_run_and_its_permanent_link_reproduces_it(server, page, browser):
    page.goto(server.url + QUESTION)
    page.wait_for_selector("table.comparison", timeout=180_000)
    as_it_was = _key(page)
    assert _row(page, "IDENT matches")[0].split()[0] != "0"

    _fill(page, server)
    first = page.locator("#participation-1")
    first.get_by_label("Participation", exact=True).select_option(label="activation never happens")
    first.get_by_label("State or county", exact=True).fill("Connecticut")
    opted_out = _run(page)
    assert opted_out != as_it_was
    assert all(cell.split()[0] == "0" for cell in _row(page, "IDENT matches"))
    assert "participation: Connecticut, 8 counties: not activated" in page.locator(".meta").inner_text()
    permalink = page.locator("#permalink").input_value()
    asked = parse_qs(urlsplit(permalink).query, keep_blank_values=True)
    assert asked["participation_mode"] == ["never"] and asked["participation_place"] == ["CT"]
    numbers = [row.inner_text() for row in page.locator("table.comparison tbody tr").all()]

    other = browser.new_page()
    other.goto(permalink)
    other.wait_for_selector("table.comparison", timeout=180_000)
    assert _key(other) == opted_out
    assert [row.inner_text() for row in other.locator("table.comparison tbody tr").all()] == numbers
    other.close()


def test_the_participation_fields_say_what_is_wrong_in_words(server, page):
    page.goto(server.url + QUESTION + "&participation_mode=delayed&participation_place=Nowhere&scenarios=astrology")
    summary = page.locator(".error-summary")
    assert "Give the date activation is delayed to" in summary.inner_text()
    assert "No state or county is called “Nowhere”" in summary.inner_text()
    assert "Not an effect scenario: astrology" in summary.inner_text()
    assert page.locator("#participation_place").get_attribute("aria-invalid") == "true"
    assert page.locator("#participation-1").get_by_label("Participation", exact=True).input_value() == "delayed"
    screenshot(page, "lab-participation-errors")
    assert axe_violations(page) == []
