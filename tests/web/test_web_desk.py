"""The desk in a browser, on the real server `securecomm serve` runs: an intake officer files a
detainer and sees it in the queue with its deadline; a reviewer decides it; two reviewers race and
the second is told who won; a supervisor disables a user who then cannot sign in; the roles are
enforced on every page (403, audited); intake by keyboard alone; axe-core on every desk page."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from zoneinfo import ZoneInfo

import httpx
import pytest

from .conftest import PASSWORD, axe_violations, screenshot, sign_in

NEW_HAVEN = ZoneInfo("America/New_York")
numbers = itertools.count(1)


def _local(hours: float) -> str:
    """A wall time of the jail (New Haven), `hours` from now, as a datetime-local field takes it."""
    return (dt.datetime.now(NEW_HAVEN) + dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


def _file(page, server, booking: str, **fields: str) -> int:
    """File a detainer through the intake form (signed in as an intake officer); its id."""
    page.goto(f"{server.url}/desk/intake")
    page.fill("#booking_ref", booking)
    page.fill("#detainer_number", f"ICE-{next(numbers):05d}")
    page.fill("#received_at", fields.pop("received_at", _local(-3)))
    page.fill("#issuing_office", "ERO Hartford")
    for name, value in fields.items():
        page.fill(f"#{name}", value)
    page.click("form[action='/desk/intake'] button[type=submit]")
    page.wait_for_url(re.compile(r"/desk/detainers/\d+"))
    return int(re.search(r"/desk/detainers/(\d+)", page.url).group(1))


def test_an_intake_officer_files_a_detainer_and_sees_it_in_the_queue_with_its_deadline(server, page):
    sign_in(page, server, "intake")
    page.wait_for_url(re.compile(r"/desk/queue"))
    detainer = _file(page, server, "BK-QUEUE", release_eligible_at=_local(5))
    assert "Filed and decided: review" in page.inner_text("main")
    screenshot(page, "desk-detainer")

    page.goto(f"{server.url}/desk/queue")
    row = page.locator("table.queue tbody tr", has=page.locator(f"a[href='/desk/detainers/{detainer}']"))
    text = row.inner_text()
    assert "BK-QUEUE" in text and "review needed" in text
    assert "America/New_York" in text and "(release eligibility)" in text
    countdown = row.locator("time.countdown")
    assert re.fullmatch(r"in [45] h \d+ min", countdown.inner_text())
    screenshot(page, "desk-queue")

    # Overdue first and marked: a declined detainer past release eligibility heads the queue.
    overdue = _file(page, server, "BK-LATE", release_eligible_at=_local(-1), received_at=_local(-4))
    page.goto(f"{server.url}/desk/queue?decision=review")
    page.goto(f"{server.url}/desk/queue")
    first = page.locator("table.queue tbody tr").first
    assert f"/desk/detainers/{overdue}" in first.inner_html() and "OVERDUE" in first.inner_text()
    assert "overdue by" in first.locator("time.countdown").inner_text()

    # Filters: by office (none match), review needed.
    page.goto(f"{server.url}/desk/queue?office=nowhere")
    assert "No detainers match." in page.inner_text("table.queue")
    page.goto(f"{server.url}/desk/queue?review=no&decision=honor")
    assert "BK-QUEUE" not in page.inner_text("table.queue")


def test_intake_errors_are_written_beside_their_fields(server, page):
    sign_in(page, server, "intake")
    page.goto(f"{server.url}/desk/intake")
    page.fill("#booking_ref", "BK-ERR")
    page.select_option("#charge-1-category", "theft")
    page.click("form[action='/desk/intake'] button[type=submit]")
    assert page.locator("#detainer_number-error").text_content() == "Error: is required."
    assert page.locator("#charge-1-level-error").is_visible()
    assert page.get_attribute("#received_at", "aria-invalid") == "true"
    assert "#received_at" in page.locator("#error-summary").inner_html()
    assert page.input_value("#booking_ref") == "BK-ERR"  # what was typed stays
    screenshot(page, "desk-intake-errors")


def test_an_upload_files_several_detainers_and_refuses_a_bad_row_in_words(server, page, tmp_path):
    sign_in(page, server, "intake")
    page.goto(f"{server.url}/desk/intake")
    upload = tmp_path / "detainers.csv"
    upload.write_text(
        "booking_ref,detainer_number,received_at,issuing_office,current_charges,public_safety_risk\n"
        f'UP-1,UP-0001,{_local(-2)},ERO Hartford,"[{{""category"": ""theft"", ""level"": ""felony""}}]",false\n'
        f"UP-2,UP-0002,{_local(-2)},ERO Hartford,,\n"
        "UP-3,UP-0003,yesterday,ERO Hartford,,\n",
        encoding="utf-8",
    )
    page.set_input_files("#file", str(upload))
    page.click("form[action='/desk/intake/upload'] button[type=submit]")
    table = page.locator("table caption", has_text="detainers.csv").locator("..")
    assert "2 of 3 filed" in table.inner_text()
    assert re.search(r"UP-3\s+refused: Received at: must be a date-time", table.inner_text())
    screenshot(page, "desk-upload")


def test_a_reviewer_decides_a_detainer(server, page, browser):
    sign_in(page, server, "intake")
    detainer = _file(page, server, "BK-REVIEW", release_eligible_at=_local(2))
    reviewer = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(reviewer, server, "reviewer")
    reviewer.goto(f"{server.url}/desk/detainers/{detainer}")
    assert "unacceptable-public-safety-risk" in reviewer.inner_text("main")
    reviewer.check("#decide-decline")
    reviewer.fill("#reason", "No determination of risk was made; the TRUST Act's default applies.")
    screenshot(reviewer, "desk-review-form")
    reviewer.click("form[action$='/review'] button[type=submit]")
    reviewer.wait_for_load_state()
    main = reviewer.inner_text("main")
    assert "DECLINE" in main and "by reviewer" in main and "the TRUST Act's default applies" in main
    assert reviewer.locator("form[action$='/review']").count() == 0
    reviewer.context.close()


def test_two_reviewers_race_one_wins_and_the_other_is_told(server, page, browser):
    sign_in(page, server, "intake")
    detainer = _file(page, server, "BK-RACE", release_eligible_at=_local(4))
    first = browser.new_context().new_page()
    second = browser.new_context().new_page()
    for reviewer, name in ((first, "reviewer"), (second, "reviewer2")):
        sign_in(reviewer, server, name)
        reviewer.goto(f"{server.url}/desk/detainers/{detainer}")
    first.check("#decide-honor")
    first.fill("#reason", "Risk determined by the supervisor on duty.")
    second.check("#decide-decline")
    second.fill("#reason", "No risk determined.")
    first.click("form[action$='/review'] button[type=submit]")
    first.wait_for_load_state()
    second.click("form[action$='/review'] button[type=submit]")
    second.wait_for_load_state()
    told = second.locator("#conflict").inner_text()
    assert "Another reviewer decided first" in told and "by reviewer: honor" in told
    assert "Your decision was not recorded" in told
    assert "HONOR" in second.inner_text("main")  # no silent overwrite
    screenshot(second, "desk-review-race")
    first.context.close()
    second.context.close()


def test_a_supervisor_disables_a_user_who_then_cannot_sign_in(server, page, browser):
    other = browser.new_context().new_page()
    sign_in(other, server, "intake2")
    assert "/desk/queue" in other.url
    sign_in(page, server, "supervisor")
    page.goto(f"{server.url}/desk/users")
    screenshot(page, "desk-users")
    row = page.locator("table tbody tr", has=page.locator("th", has_text="intake2"))
    row.get_by_role("button", name="Disable intake2").click()
    page.wait_for_load_state()
    assert "intake2 is disabled" in page.inner_text("main")
    # Their open session ends, and they cannot sign in again.
    other.goto(f"{server.url}/desk/queue")
    assert "/desk/sign-in" in other.url and "Your session has ended" in other.inner_text("main")
    sign_in(other, server, "intake2")
    assert "Not signed in" in other.inner_text("main") and "disabled" in other.inner_text("main")
    other.context.close()


def test_a_supervisor_adds_a_user_and_resets_a_password_that_must_then_be_changed(server, page, browser):
    sign_in(page, server, "supervisor")
    page.goto(f"{server.url}/desk/users")
    page.fill("#username", "newcomer")
    page.fill("#password", "a temporary passphrase")
    page.click("form[action='/desk/users'] button[type=submit]")
    assert "User newcomer created (intake)" in page.inner_text("main")
    page.fill("#password-newcomer", "another temporary one")
    page.get_by_role("button", name="Reset newcomer's password").click()
    assert "must change it" in page.inner_text("main")
    user = browser.new_context().new_page()
    sign_in(user, server, "newcomer", "another temporary one")
    assert user.url.endswith("/desk/password")
    user.fill("#current", "another temporary one")
    user.fill("#new", "my own long passphrase")
    user.fill("#again", "my own long passphrase")
    user.click("form[action='/desk/password'] button[type=submit]")
    user.wait_for_url(re.compile(r"/desk/queue"))
    user.context.close()


def test_roles_are_enforced_on_every_page(server):
    """Without a session every page sends the browser to sign in; an intake officer gets 403 on the
    supervisor's and the auditor's pages (and the refusal is audited); no page is kept in a cache."""
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/desk/users").status_code == 303
        nonce = re.search(r'name="nonce" value="([^"]+)"', client.get("/desk/sign-in").text).group(1)
        signed = client.post("/desk/sign-in", data={"nonce": nonce, "username": "intake", "password": PASSWORD})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/desk" in cookie
        for path in ("/desk/users", "/desk/report", "/desk/report.csv", "/desk/audit", "/desk/audit/verify"):
            response = client.get(path)
            assert response.status_code == 403, path
            assert response.headers["cache-control"] == "no-store"
        queue = client.get("/desk/queue")
        assert queue.status_code == 200 and queue.headers["cache-control"] == "no-store"
        csp = queue.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        # A POST without the session's CSRF token is refused before anything is done.
        assert (
            client.post("/desk/users", data={"username": "x", "role": "auditor", "password": "p" * 20}).status_code
            == 403
        )
        csrf = re.search(r'name="csrf" value="([^"]+)"', queue.text).group(1)
        refused = client.post(
            "/desk/users", data={"csrf": csrf, "username": "x", "role": "auditor", "password": "p" * 20}
        )
        assert refused.status_code == 403
    with httpx.Client(base_url=server.url) as auditor:
        nonce = re.search(r'name="nonce" value="([^"]+)"', auditor.get("/desk/sign-in").text).group(1)
        auditor.post("/desk/sign-in", data={"nonce": nonce, "username": "auditor", "password": PASSWORD})
        assert auditor.get("/desk/queue").status_code == 403  # auditors see no personal data
        trail = auditor.get("/desk/audit?q=access.denied")
        assert trail.status_code == 200 and "manage users" in trail.text
    # The API keeps its own strict policy.
    api = httpx.get(f"{server.url}/api/v1/health")
    assert api.headers["content-security-policy"].startswith("default-src 'none'; style-src 'unsafe-inline'")


def test_intake_by_keyboard_alone(server, page):
    sign_in(page, server, "intake")
    page.goto(f"{server.url}/desk/intake")
    order = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()")
        order.append(focused)
        if focused == "booking_ref":
            break
    assert order[0] == "Skip to the content"
    page.keyboard.type("BK-KEYS")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "detainer_number"
    page.keyboard.type("ICE-KEYS-1")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "received_at"
    when = dt.datetime.now(NEW_HAVEN) - dt.timedelta(hours=2)
    page.keyboard.type(when.strftime("%m%d%Y"))  # month, day, year: the year takes up to six digits,
    page.keyboard.press("Tab")  # so Tab moves on to the hour
    page.keyboard.type(when.strftime("%I%M") + when.strftime("%p")[0])
    assert page.input_value("#received_at") == when.strftime("%Y-%m-%dT%H:%M")
    for _ in range(6):  # Tab walks the field's own parts (its date and time), then leaves it
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") != "received_at":
            break
    assert page.evaluate("document.activeElement.id") == "issuing_office"
    page.keyboard.type("ERO Hartford")
    fields = ["issuing_office"]
    for _ in range(16):
        page.keyboard.press("Tab")
        fields.append(page.evaluate("document.activeElement.id"))
    expected = ["issuing_office", "detainer_form", "release_eligible_at", "age", "case_id", "charge-0-category"]
    assert list(dict.fromkeys(fields))[:6] == expected  # a date and time field is several stops
    page.focus("#case_id")
    page.keyboard.press("Enter")  # Enter in a field sends the form
    page.wait_for_url(re.compile(r"/desk/detainers/\d+"))
    assert "BK-KEYS" in page.inner_text("h1")
    screenshot(page, "desk-intake-keyboard")


DESK_PAGES = {
    "sign-in": ("", "/desk/sign-in"),
    "intake": ("intake", "/desk/intake"),
    "queue": ("intake", "/desk/queue"),
    "detainer": ("reviewer", "/desk/detainers/1"),
    "forbidden": ("intake", "/desk/users"),
    "users": ("supervisor", "/desk/users"),
    "policy": ("supervisor", "/desk/policy"),
    "report": ("supervisor", "/desk/report"),
    "audit": ("auditor", "/desk/audit"),
    "audit-verify": ("auditor", "/desk/audit/verify"),
    "password": ("reviewer", "/desk/password"),
}


@pytest.mark.parametrize("name", list(DESK_PAGES))
def test_no_serious_accessibility_violations_on_the_desk_pages(server, page, name):
    user, path = DESK_PAGES[name]
    if name == "detainer":
        sign_in(page, server, "intake")
        _file(page, server, "BK-AXE", release_eligible_at=_local(1))
    if user:
        sign_in(page, server, user)
    if name == "report":
        path += f"?quarter={dt.date.today().year}Q{(dt.date.today().month - 1) // 3 + 1}"
    page.goto(server.url + path)
    page.wait_for_load_state("networkidle")
    screenshot(page, f"desk-{name}")
    assert axe_violations(page) == []


def test_intake_with_errors_has_no_serious_accessibility_violations(server, page):
    sign_in(page, server, "intake")
    page.goto(f"{server.url}/desk/intake")
    page.click("form[action='/desk/intake'] button[type=submit]")
    assert axe_violations(page) == []
