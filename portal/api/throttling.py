"""Requests per token (or per signed-in person, or per address for anonymous calls) in fixed
windows, counted in the cache as the portal's other rate limits are (portal/throttle.py). Over the
limit: 429 with Retry-After, the seconds until the window ends."""

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from portal import throttle
from portal.models import ApiToken


def _who(request) -> tuple[str, str]:
    token = request.auth
    if isinstance(token, ApiToken):
        return "api", f"token:{token.pk}"
    user = request.user
    if user is not None and user.is_authenticated:
        return "api", f"user:{user.pk}"
    return "api_anonymous", throttle.client_ip(request._request)


class ApiRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        scope, who = _who(request)
        limit, window = settings.RATE_LIMITS[scope]
        if throttle.add(scope, who, window=window) > limit:
            self.limit, self.retry_after = limit, throttle.seconds_left(window)
            self.per = "token" if who.startswith("token:") else "caller"
            return False
        return True

    def wait(self) -> int:
        return self.retry_after
