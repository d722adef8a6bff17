"""The card page as a distributor's phone shows it: headless Chromium signs in with a
single-use link and draws /me/cards at 390x844; the pixels must show the cards' buttons.
In Chromium, driven over the DevTools protocol (`_cdp`), a finger taps "Used it": the
choice must land in the hash-chained trail with the distributor as the actor. The form's
own checks (CSRF token, origin, a card that moved on) are tried with a plain HTTP client."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
from lxml import html

from engine.runtime import NewProspect
from service.page import PAGE_SIZE, fill_gaps
from tests.analytics.test_report_render import chromium, decode_png
from tests.service._cdp import Browser
from tests.service._server import Running
from tests.service._world import PROCESS, start

WINDOW = (390, 844)
ACCENT = (0x0B, 0x5C, 0xAD)  # the buttons' and header's blue (static/cards.css)


def _chromium(url: str, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         "--disable-sync", "--disable-default-apps", "--force-color-profile=srgb",
         f"--window-size={WINDOW[0]},{WINDOW[1]}", *extra, url],
        check=True, capture_output=True, timeout=120)


def _sign_in_link(run: Running) -> str:
    answer = run.client("distributor").post("/me/sign-in-link")
    assert answer.status_code == 200
    return run.url + answer.json()["path"]


def test_chromium_shows_the_cards_at_phone_width(sqlite_api: Running, tmp_path: Path) -> None:
    run = sqlite_api
    for n in range(2):
        start(run, f"p{n}", "d1", "s1")
    start(run, "p-of-d2", "d2")
    dom = _chromium(_sign_in_link(run), "--dump-dom").stdout.decode()
    page = html.fromstring(dom)
    cards = page.xpath("//article[contains(@class,'card')]")
    assert len(cards) == 2, dom[:2000]
    assert not re.search(r"\{[a-z_]+\}", dom), "a placeholder was shown raw"
    for card in cards:
        assert card.xpath(".//h2/text()") == ["Add a prospect"]
        assert card.xpath(".//p[@class='guidance']")
        assert card.xpath(".//blockquote[@class='message']/text()")  # the suggested message
        buttons = card.xpath(".//button/text()")
        assert buttons == ["Used it", "Used another", "Skip"]
        for select in card.xpath(".//select"):  # every control has a label
            assert page.xpath(f"//label[@for='{select.get('id')}']")
    assert "p-of-d2" not in dom  # d2's prospect is not on d1's page

    png = tmp_path / "cards.png"  # kept under pytest's tmp for a look
    _chromium(_sign_in_link(run), f"--screenshot={png}")
    image = decode_png(png.read_bytes())
    assert image.shape == (WINDOW[1], WINDOW[0], 3)
    blue = np.all(np.abs(image.astype(int) - ACCENT) <= 6, axis=2)
    rows = np.nonzero(blue.sum(axis=1) > 60)[0]  # header bar and filled "Used it" buttons
    assert rows.size and rows.min() < 60, "no header bar"
    assert (rows > 200).sum() > 20, "no card buttons drawn below the header"
    assert blue[:, WINDOW[0] - 5:].sum() < blue.sum(), "content overflows the 390 px screen"


def test_a_finger_tap_in_chromium_records_the_choice_in_the_trail(
        sqlite_api: Running) -> None:
    run = sqlite_api
    instance = start(run, "p-tap", "d1", "s1")
    (card,) = run.engine.cards("d1")
    (led,) = [s.option_id for s in card.content if s.top]  # what "Used it" means
    with Browser(chromium(), WINDOW) as browser:
        page = browser.open(_sign_in_link(run))
        assert page.evaluate("location.pathname") == "/me/cards"
        assert page.evaluate("innerWidth") == WINDOW[0]
        # the button is where a thumb finds it: scrolled into view, then its centre
        x, y = page.evaluate("""(() => {
            const b = document.querySelector("form.act button[value='used']");
            b.scrollIntoView({block: "center"});
            const r = b.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2]; })()""")
        assert 0 < x < WINDOW[0] and 0 < y < WINDOW[1]
        page.tap(x, y)
        page.wait("Page.loadEventFired")  # the page the form's answer redirected to
        assert page.evaluate("location.pathname + location.search") == "/me/cards?done=used"
        assert "Recorded" in page.evaluate("document.body.innerText")
    (event,) = [e for e in run.engine.history(instance) if e.step_id == "add_contact"
                and e.kind == "completed"]
    assert (event.actor, event.content_used) == ("d1", led)
    assert run.client("reviewer").get("/compliance/verify").json()["ok"] is True


def test_the_forms_checks_and_a_plain_post_record_the_choice(sqlite_api: Running) -> None:
    run = sqlite_api
    instance = start(run, "p1", "d1", "s1")
    browser = run.client(follow_redirects=False)
    signed = browser.post("/login", data={"token": run.tokens["distributor"]})
    assert signed.status_code == 303 and signed.headers["location"] == "/me/cards"
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page = html.fromstring(browser.get("/me/cards").text)
    form = page.xpath("//form[@action='/me/cards/act']")[0]
    fields = {i.get("name"): i.get("value") for i in form.xpath(".//input[@type='hidden']")}
    other = form.xpath(".//select[@name='other']/option/@value")[0]

    forged = browser.post("/me/cards/act", data={**fields, "csrf": "0" * 32, "choice": "used"})
    assert forged.status_code == 403
    cross = browser.post("/me/cards/act", data={**fields, "choice": "used"},
                         headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403

    tapped = browser.post("/me/cards/act", data={**fields, "choice": "another", "other": other})
    assert tapped.status_code == 303 and tapped.headers["location"] == "/me/cards?done=another"
    (event,) = [e for e in run.engine.history(instance) if e.step_id == "add_contact"
                and e.kind == "completed"]
    assert (event.actor, event.content_used) == ("d1", other)
    assert "Recorded: you used another" in browser.get("/me/cards?done=another").text
    assert run.client("reviewer").get("/compliance/verify").json()["ok"] is True
    again = browser.post("/me/cards/act", data={**fields, "choice": "skip"})
    assert again.headers["location"] == "/me/cards?problem=409"  # the card moved on


def test_sign_in_links_work_once_and_the_page_needs_a_session(sqlite_api: Running) -> None:
    run = sqlite_api
    browser = run.client(follow_redirects=False)
    assert browser.get("/me/cards").headers["location"] == "/login"
    path = run.client("distributor").post("/me/sign-in-link").json()["path"]
    assert browser.get(path).status_code == 303
    assert run.client(follow_redirects=False).get(path).status_code == 401
    refused = run.client().post("/login", data={"token": run.tokens["lead"]})
    assert refused.status_code == 401 and "not valid" in refused.text


def test_the_page_shows_twenty_cards_at_a_time_with_a_more_link(sqlite_api: Running) -> None:
    run = sqlite_api
    run.engine.start_many(PROCESS, [NewProspect(f"p{n:02}", "d1", {})
                                    for n in range(PAGE_SIZE + 3)])
    browser = run.client()
    browser.post("/login", data={"token": run.tokens["distributor"]})

    def prospects(page: html.HtmlElement) -> list[str]:
        return [str(p) for p in page.xpath("//article//p[@class='prospect']/strong/text()")]

    first = html.fromstring(browser.get("/me/cards").text)
    assert len(prospects(first)) == PAGE_SIZE
    assert "20 cards, more waiting" in first.xpath("string(//p[@class='who'])")
    nav = first.xpath("//nav[@aria-label='More cards']")[0]  # a labelled landmark, real links
    (more,) = nav.xpath(".//a/@href")
    assert more.startswith("/me/cards?after=")  # a keyset cursor, not a page number
    assert nav.xpath(".//a/@rel") == ["next"] and nav.xpath("string(.//a)") == "More cards"

    second = html.fromstring(browser.get(more).text)
    assert len(prospects(second)) == 3
    assert not set(prospects(first)) & set(prospects(second))  # no card on both pages
    assert sorted(prospects(first) + prospects(second)) == [f"p{n:02}" for n in range(23)]
    assert "3 more cards" in second.xpath("string(//p[@class='who'])")
    assert second.xpath("//nav//a/@href") == ["/me/cards"] and not second.xpath("//a[@rel='next']")
    assert second.xpath("//nav//a/@rel") == ["first"]
    assert browser.get("/me/cards?after=not-a-cursor").status_code == 422


def test_placeholders_without_data_show_nothing() -> None:
    assert fill_gaps("Hi {prospect_first_name}, here it is: {video_link}") == "Hi, here it is:"
    assert fill_gaps("Hi Ana, watch {video_link} today!") == "Hi Ana, watch today!"
    assert fill_gaps(None) is None


def test_a_card_without_content_says_why_on_the_page(sqlite_api: Running) -> None:
    run = sqlite_api
    run.engine.start_many(PROCESS, [NewProspect("p1", "d1", {"market": "CA"}),
                                    NewProspect("p2", "d1", {"market": "US"})])
    browser = run.client()
    browser.post("/login", data={"token": run.tokens["distributor"]})
    page = html.fromstring(browser.get("/me/cards").text)
    notes = {str(a.xpath("string(.//p[@class='prospect']/strong)")):
             a.xpath("string(.//p[@class='no-content'])") for a in page.xpath("//article")}
    assert notes["p2"] == ""
    assert notes["p1"].startswith("No content to share on this card: catalog ")
    assert "in market CA" in notes["p1"]


def test_a_sponsors_page_skips_rows_without_their_cards(sqlite_api: Running) -> None:
    run = sqlite_api
    run.engine.start_many(PROCESS, [NewProspect(f"d{n:02}", "d1", {"sponsor_id": "s1"})
                                    for n in range(PAGE_SIZE + 5)])  # waiting on d1, not s1
    run.engine.start(PROCESS, "own", "s1", {})
    browser = run.client()
    browser.post("/login", data={"token": run.tokens["sponsor"]})
    page = html.fromstring(browser.get("/me/cards").text)
    assert page.xpath("//article//p[@class='prospect']/strong/text()") == ["own"]
    assert not page.xpath("//nav") and not page.xpath("//p[@class='empty']")
    assert "1 card" in page.xpath("string(//p[@class='who'])")


def test_signing_out_revokes_the_browsers_token(sqlite_api: Running) -> None:
    run = sqlite_api
    for sign_in in ("link", "form"):
        browser = run.client(follow_redirects=False)
        if sign_in == "link":
            browser.get(run.client("distributor").post("/me/sign-in-link").json()["path"])
        else:
            browser.post("/login", data={"token": run.tokens["distributor"]})
        session = browser.cookies["nextmove_session"]
        assert session != run.tokens["distributor"]  # the browser's own token
        assert run.client(token=session).get("/me").status_code == 200
        out = browser.post("/logout")
        assert out.status_code == 303 and out.headers["location"] == "/login"
        copied = run.client(token=session)  # a copy of the cookie is no longer a session
        assert copied.get("/me").status_code == 401
        stolen = run.client(follow_redirects=False, cookies={"nextmove_session": session})
        assert stolen.get("/me/cards").headers["location"] == "/login"
    assert run.client("distributor").get("/me").status_code == 200  # the app's token lives


def test_a_stuck_card_says_since_when_and_an_own_journey_is_not_a_prospect(
        sqlite_api: Running) -> None:
    """A card flagged stuck has no follow-up time to show: it says how long it has waited. A
    distributor's own onboarding names them as its prospect: the page says it is theirs."""
    from datetime import timedelta

    run = sqlite_api
    run.engine.deploy([Path(__file__).parents[2] / "processes" / "lifevantage"])
    ben = start(run, "ben", "d1")
    run.engine.complete(ben, "add_contact")  # share_intro: stuck after five days
    run.engine.start("distributor_onboarding", "d1", "d1", {})
    run.clock.set(run.clock.now() + timedelta(days=5, hours=1))
    run.engine.tick()
    browser = run.client()
    browser.post("/login", data={"token": run.tokens["distributor"]})
    page = html.fromstring(browser.get("/me/cards").text)
    (stuck,) = page.xpath("//article[contains(@class,'overdue')][.//strong[text()='ben']]")
    assert stuck.xpath("string(.//p[@class='when'])").startswith("Stuck: waiting since ")
    own = page.xpath("//article[.//p[@class='prospect'][text()='Your own next step']]")
    assert own and not page.xpath("//article//p[@class='prospect']/strong[text()='d1']")
