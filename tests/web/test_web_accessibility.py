"""axe-core (vendored, injected with Playwright) on every page of the lab and the library: no
serious or critical violation. Each page is checked as a visitor sees it, after its scripts ran."""

from __future__ import annotations

import pytest

from .conftest import axe_violations, screenshot

RUN = (
    "/lab/compare?place=09001&start=2013-01-01&end=2013-12-31&policies=us/ice-request"
    "&policies=ct/trust-act-2019&baseline=us/ice-request&replications=2&seed=3"
)
PAGES = {
    "lab": "/lab",
    "lab-county-map": "/lab?state=CT",
    "lab-errors": "/lab/compare?place=Springfield&start=2013-02-30&end=2012-01-01&replications=50&seed=x",
    "policies": "/policies",
    "policy": "/policies/ct/trust-act-2013",
    "policy-field": "/policies/ct/new-haven/general-order-06-2",
    "try-a-case": "/policies/try",
    "try-a-case-decided": "/policies/try?age=40&pending_charges=1&conviction1_category=robbery"
    "&conviction1_level=felony&conviction1_years_ago=2&release_eligible_at=2015-06-05T09:00",
    "try-a-case-errors": "/policies/try?age=old&conviction1_category=theft",
    "not-found": "/policies/no/such-policy",
}


@pytest.mark.parametrize("name", list(PAGES))
def test_no_serious_accessibility_violations(server, page, name):
    response = page.goto(server.url + PAGES[name])
    assert response is not None
    page.wait_for_load_state("networkidle")
    if name in ("lab", "lab-county-map", "lab-errors"):
        screenshot(page, name)
    assert axe_violations(page) == []


def test_the_results_and_progress_pages_have_no_serious_accessibility_violations(server, page):
    page.goto(server.url + RUN)
    if page.locator("#progress-box").count():
        assert axe_violations(page) == []
    page.wait_for_selector("table.comparison", timeout=180_000)
    page.wait_for_selector(".plot[data-drawn] .main-svg")
    assert axe_violations(page) == []
    page.get_by_label("Policy", exact=True).select_option("ct/trust-act-2019")
    page.wait_for_selector("#choropleth code:has-text('ct/trust-act-2019')")
    assert axe_violations(page) == []


def test_the_map_picks_a_county_by_keyboard(server, page):
    page.goto(server.url + "/lab")
    connecticut = page.locator('#map a[aria-label="Connecticut"]')
    connecticut.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#map-heading:has-text('Connecticut: choose a county')")
    assert page.evaluate("document.activeElement.id") == "map-heading"
    page.locator('#map a[aria-label="New Haven County, CT"]').focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#place-chosen:has-text('New Haven County, CT')")
    assert page.locator("#place").input_value() == "09009"
    screenshot(page, "lab-county-map-picked")
    assert axe_violations(page) == []


@pytest.mark.parametrize("path", ["/lab", "/policies/try", "/policies/ct/trust-act-2013", RUN])
def test_pages_fit_a_tablet(server, browser, path):
    context = browser.new_context(viewport={"width": 820, "height": 1180}, has_touch=True)
    tablet = context.new_page()
    tablet.goto(server.url + path)
    if path == RUN:
        tablet.wait_for_selector("table.comparison", timeout=180_000)
        tablet.wait_for_selector(".plot[data-drawn] .main-svg")
        screenshot(tablet, "results-tablet")
    overflow = tablet.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    context.close()
    assert overflow <= 0  # wide tables scroll inside their own region, not the page
