"""The drill pages of the built book in headless Chromium: predict, reveal, play the stepper.

Needs ``_build/html`` (``make book``); served on 127.0.0.1, nothing may load from elsewhere and
no console error may occur. Screenshots (1366x900 and a 390x844 phone, light and dark) go to
``$KVMLAB_SHOTS`` (default ``/tmp/kvmbook-shots``).
"""

from __future__ import annotations

import json

import pytest
from test_book_pages import HTML, SHOTS, _need, browser, server, watched  # noqa: F401 - fixtures (rootdir import)

pytestmark = pytest.mark.browser
PAGES = [f"book/drills-ch{n}.html" for n in range(7)]


def _right_choice(sec) -> str:
    ans = json.loads(sec.get_attribute("data-answer"))
    return "holds" if ans["holds"] else ans["broken"][0]


def _wrong_choice(sec) -> str:
    ans = json.loads(sec.get_attribute("data-answer"))
    if not ans["holds"]:
        return "holds"
    values = [r.get_attribute("value") for r in sec.locator("input[type=radio]").all()]
    return next(v for v in values if v != "holds")


@pytest.mark.parametrize("page", PAGES)
def test_drill_page_predict_reveal_stepper(server, watched, page):  # noqa: F811 - pytest fixtures
    _need((HTML / page).is_file(), f"{HTML / page} missing: run `make book` first")
    w = watched()
    pg = w.page
    pg.goto(server + page)
    drills = pg.locator(".kvmlab-drill")
    assert drills.count() >= 8
    # every drill: a diff, a disabled reveal button, a hidden answer with a stepper inside
    for i in range(drills.count()):
        sec = drills.nth(i)
        assert sec.locator("pre.kd-diff .kd-del, pre.kd-diff .kd-add").count() >= 1
        assert sec.locator(".kd-reveal").is_disabled()
        assert sec.locator(".kd-answer").is_hidden()
        assert sec.locator(".kd-answer .kvmlab-stepper").count() == 1

    # a broken drill: predict right, reveal, play the counterexample
    broken = next(i for i in range(drills.count())
                  if not json.loads(drills.nth(i).get_attribute("data-answer"))["holds"])
    sec = drills.nth(broken)
    sec.scroll_into_view_if_needed()
    choice = _right_choice(sec)
    sec.locator(f"input[type=radio][value='{choice}']").check()
    assert sec.locator(".kd-reveal").is_enabled()
    sec.locator(".kd-reveal").click()
    assert sec.locator(".kd-answer").is_visible()
    assert sec.locator(".kd-feedback").inner_text().startswith("Right")
    verdict = sec.locator(".kd-verdict").inner_text()
    assert verdict.startswith("Breaks") and choice in verdict and "bounds:" in verdict
    st = sec.locator(".kvmlab-stepper")
    st.locator(".ks-show").click()
    st.locator(".ks-banner-bad").wait_for(timeout=15000)
    assert "You found it" in st.locator(".ks-banner").inner_text()
    assert sec.locator("input[type=radio]").first.is_disabled()

    # another drill: predict wrong
    other = drills.nth(0 if broken != 0 else 1)
    other.scroll_into_view_if_needed()
    other.locator(f"input[type=radio][value='{_wrong_choice(other)}']").check()
    other.locator(".kd-reveal").click()
    assert other.locator(".kd-feedback").inner_text().startswith("Not this time")
    w.check_clean(page)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", [(1366, 900), (390, 844)], ids=["desktop", "phone"])
def test_drill_page_screenshots(server, watched, scheme, size):  # noqa: F811 - pytest fixtures
    page = "book/drills-ch1.html"
    _need((HTML / page).is_file(), f"{HTML / page} missing: run `make book` first")
    w = watched(scheme)
    pg = w.page
    pg.set_viewport_size({"width": size[0], "height": size[1]})
    pg.goto(server + page)
    sec = pg.locator(".kvmlab-drill").first
    sec.locator(f"input[type=radio][value='{_right_choice(sec)}']").check()
    sec.locator(".kd-reveal").click()
    SHOTS.mkdir(parents=True, exist_ok=True)
    sec.locator(".kd-verdict").scroll_into_view_if_needed()
    pg.screenshot(path=str(SHOTS / f"drills-ch1-{size[0]}-{scheme}.png"))
    # nothing wider than the viewport: diffs and steppers scroll inside their own boxes
    width = pg.evaluate("() => document.documentElement.scrollWidth")
    assert width <= size[0] + 1, f"page is {width}px wide at {size[0]}px"
    w.check_clean(page)


def test_instructor_page_and_drills_intro_built(server, watched):  # noqa: F811 - pytest fixtures
    for page in ("book/instructors.html", "book/drills.html"):
        _need((HTML / page).is_file(), f"{HTML / page} missing: run `make book` first")
        w = watched()
        w.page.goto(server + page)
        text = w.page.inner_text("main")
        assert "kvmlab" in text
        w.check_clean(page)
