"""The lab end to end in a browser: Fairfield County, CT under two policies, with a progress bar
to completion and a map; its permanent link gives the same numbers, on this server (from the cache)
and on a fresh one (computed again); its form can be used by keyboard alone."""

from __future__ import annotations

import re
import time

from .conftest import LiveServer, fill_lab_question, screenshot

FAIRFIELD = "09001"
POLICIES = ("us/ice-request", "ct/trust-act-2013")


def _table(page) -> list[str]:
    return [row.inner_text() for row in page.locator("table.comparison tbody tr").all()]


def _run_fairfield(page, server) -> None:
    page.goto(f"{server.url}/lab")
    page.get_by_label("Place", exact=True).fill("Fairfield County, CT")
    page.get_by_role("button", name="Fairfield County, CT (09001)").click()
    page.wait_for_selector("#place-chosen:has-text('Fairfield County, CT')")
    assert page.locator("#place").input_value() == FAIRFIELD
    fill_lab_question(page, "2012-01-01", "2012-12-31", POLICIES, replications=3, seed=11)
    page.get_by_role("button", name="Run the comparison").click()


def test_the_lab_compares_two_policies_for_fairfield_county(server, page):
    _run_fairfield(page, server)
    progress = page.locator("#progress-box progress")
    progress.wait_for(timeout=30_000)
    screenshot(page, "run-progress")
    page.wait_for_selector("table.comparison", timeout=180_000)
    assert "Fairfield County, CT" in page.locator("h1").inner_text()
    headers = page.locator("table.comparison thead th").all_inner_texts()
    assert [h.replace(" (baseline)", "") for h in headers[1:]] == list(POLICIES)
    rows = _table(page)
    assert any(row.startswith("Detainers honored") for row in rows)
    # The TRUST Act declines detainers ICE's request would have honored: the difference shows.
    honored = page.locator("table.comparison tbody tr", has_text="Detainers honored").first
    assert "vs baseline" in honored.inner_text()
    # The map: Connecticut's counties, Fairfield shaded, the others not in the run.
    fairfield = page.locator(f'#choropleth path[data-fips="{FAIRFIELD}"]')
    assert fairfield.get_attribute("fill") != "#d9d9d9"
    assert page.locator("#choropleth path").count() == 8
    # The charts of the HTML report, drawn by Plotly once the page's scripts ran, each with its CSV.
    page.wait_for_selector(".plot[data-drawn] .main-svg")
    page.get_by_label("Metric").select_option("transfers_to_ice")
    page.wait_for_selector("#choropleth .map-title:has-text('Transfers to ICE')")
    assert page.locator("figure.chart").count() >= 6
    csv = page.request.get(server.url + page.locator("figure.chart a[download]").first.get_attribute("href"))
    assert csv.ok and csv.text().startswith("policy,metric,median,low,high")
    link = page.get_by_role("link", name=re.compile("Download the report")).get_attribute("href")
    report = page.request.get(server.url + link)
    assert report.ok and "Plotly" in report.text() and "--place 09001" in report.text()
    screenshot(page, "results")


def test_the_permanent_link_reproduces_the_numbers(server, page, browser, tmp_path):
    _run_fairfield(page, server)
    page.wait_for_selector("table.comparison", timeout=180_000)
    numbers = _table(page)
    permalink = page.locator("#permalink").input_value()
    assert permalink.startswith(f"{server.url}/lab/compare?") and "place=09001" in permalink

    started = time.perf_counter()
    answer = page.request.get(permalink)
    assert time.perf_counter() - started < 2 and 'class="comparison"' in answer.text()  # from the cache: no progress
    again = page.context.new_page()
    again.goto(permalink, wait_until="domcontentloaded")
    assert again.locator("#progress-box").count() == 0
    assert _table(again) == numbers

    fresh = LiveServer(tmp_path / "fresh")  # a server that never saw the question
    try:
        other = browser.new_page()
        other.goto(permalink.replace(server.url, fresh.url))
        other.wait_for_selector("table.comparison", timeout=180_000)
        assert _table(other) == numbers
        other.close()
    finally:
        fresh.stop()


def test_the_lab_form_works_by_keyboard_alone(server, page):
    page.goto(f"{server.url}/lab")
    visited = []
    for _ in range(120):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement; return e.id || e.getAttribute('href') || e.textContent.trim(); }"
        )
        visited.append(focused)
        if focused == "Run the comparison":
            break
    assert visited[0] == "#main"  # the skip link comes first
    fields = (
        "place",
        "start",
        "end",
        "policy-0",
        "baseline",
        "effects",
        "scenario-0",
        "participation_mode",
        "participation_place",
        "participation_date",
        "replications",
        "seed",
    )
    assert [name for name in fields if name in visited] == list(fields)
    assert visited.index("place") < visited.index("start") < visited.index("seed") < len(visited) - 1
    assert visited[-1] == "Run the comparison"

    # Fill it in by keyboard only, and run.
    page.keyboard.press("Shift+Tab")  # back to the seed
    page.keyboard.press("Control+a")
    page.keyboard.type("5")
    page.focus("#place")  # the focus walk above proved every field is reachable by Tab
    page.keyboard.press("Control+a")
    page.keyboard.type(FAIRFIELD)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # submits the form from a field, as browsers do
    page.wait_for_url(re.compile(r"/lab/compare\?"))
    assert "place=09001" in page.url and "seed=5" in page.url
    assert page.locator("h1").inner_text().startswith("Fairfield County, CT")
    screenshot(page, "lab-keyboard-run")


def test_the_lab_works_without_javascript(server, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{server.url}/lab?state=CT")  # the map's state link, followed as a plain link
    page.locator('#map a[aria-label="Hartford County, CT"]').click()
    assert page.locator("#place").input_value() == "09003"
    page.get_by_label("Replications").fill("1")
    page.get_by_role("button", name="Run the comparison").click()
    for _ in range(120):
        if page.locator("table.comparison").count():
            break
        assert page.locator("noscript").count() == 1  # tells the visitor to reload
        time.sleep(1)
        page.reload()
    assert "Hartford County, CT" in page.locator("h1").inner_text()
    assert page.locator('#choropleth path[data-fips="09003"]').count() == 1
    context.close()
