"""In Chromium: the top navigation stays on one line at 1280 px and does not spill over on a narrow
screen, for a researcher and for an administrator.

Set SCREENSHOTS_DIR to keep a screenshot of the usage page at each width.
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.e2e.test_billing_journey import PASSWORD, sign_in
from tests.factories import ServerAdminFactory, UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

# Long, as university addresses are.
RESEARCHER = "riley.researcher-smith@medicine.university.edu"
ADMIN = "alexandra.administrator@research-computing.university.edu"


def header_rows(page: Page) -> dict:
    """How far apart the middles of the header's links and buttons are (0 when they sit on one
    line), and whether the page is wider than the window."""
    return page.evaluate(
        """() => {
          const items = [...document.querySelectorAll('.topbar a:not(.skip), .topbar button')]
            .filter((el) => el.offsetParent !== null);
          const middles = items.map((el) => {
            const box = el.getBoundingClientRect();
            return box.top + box.height / 2;
          });
          return {
            spread: Math.round(Math.max(...middles) - Math.min(...middles)),
            overflows: document.documentElement.scrollWidth > window.innerWidth,
            header: Math.round(document.querySelector('.topbar').getBoundingClientRect().height),
          };
        }"""
    )


@pytest.mark.parametrize("who", ["researcher", "administrator"])
def test_the_navigation_fits_on_one_line_at_1280_and_never_spills_over(live_server, page, who):
    if who == "administrator":
        user = ServerAdminFactory(email=ADMIN)
    else:
        user = UserFactory(email=RESEARCHER)
    user.set_password(PASSWORD)
    user.save()
    sign_in(page, live_server.url, user.email)
    page.goto(f"{live_server.url}/billing/")  # the longest link, in bold as the current page
    email = page.get_by_role("link", name=user.email)  # cut short on screen, whole when read out
    assert email.get_attribute("title") == f"{user.email}: profile and time zone"
    for width in (1280, 1160, 1000, 800, 390, 320):
        page.set_viewport_size({"width": width, "height": 800})
        folder = os.environ.get("SCREENSHOTS_DIR")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"nav-{who}-{width}.png"))
        rows = header_rows(page)
        assert not rows["overflows"], f"the page is wider than {width} px"
        if width == 1280:
            assert rows["spread"] <= 4, f"the navigation wraps at 1280 px: {rows}"
