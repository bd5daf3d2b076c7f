"""Shared steps of the browser journeys."""

from portal.models import User
from tests.factories import next_totp_code


def pass_second_factor(page, email: str) -> None:
    """After the password: an administrator (or anyone with an authenticator) types the code
    their app shows, as a person would. Others are already in."""
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    if "/accounts/two-factor/" not in page.url:
        return
    user = User.objects.get(email=email)
    page.get_by_label("Code").fill(next_totp_code(user))
    page.get_by_role("button", name="Continue").click()
