"""Client addresses, rate limits and the sign-in throttle (docs/compliance.md, "Sign-in").

Counters live in Django's cache (Redis at scale, local memory in development and tests), in
fixed windows: a key per (scope, who, window number) that expires with its window.

The sign-in throttle stops password guessing without handing anyone a way to lock out someone
else (the "device cookie" pattern OWASP describes):
- per client address, across accounts: SIGNIN_ADDRESS_FAILURE_LIMIT failures in a window and
  that address may not try again until the window ends (stops spraying many accounts);
- per account, from browsers the account has not signed in from: SIGNIN_ACCOUNT_FAILURE_LIMIT
  failures in a window and such browsers must wait for it (stops many addresses guessing one
  account). The owner is told by e-mail and gets a link that makes their browser known;
- per known browser (a signed cookie set at each successful sign-in): its own allowance of
  SIGNIN_DEVICE_FAILURE_LIMIT, so a stranger's failures never stop the owner's own browser.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

DEVICE_COOKIE = "studytext_device"
DEVICE_COOKIE_DAYS = 365
DEVICE_SALT = "portal.throttle.device"


# --- The client's address -----------------------------------------------------------------------
def client_ip(request: HttpRequest) -> str:
    """The address of the client, trusting X-Forwarded-For only as far as our own proxies.

    Each of the TRUSTED_PROXY_COUNT proxies in front of the portal appends the address it was
    reached from, so the client is the TRUSTED_PROXY_COUNT-th entry from the right; whatever a
    client wrote to the left of it is ignored. With no proxy the header is ignored entirely. A
    request that did not pass through every proxy (fewer entries) is counted by REMOTE_ADDR.
    """
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    entries = [e.strip() for e in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    entries = [e for e in entries if e]
    if len(entries) < count:
        return remote
    candidate = entries[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


# --- Counters -----------------------------------------------------------------------------------
def _key(scope: str, who: str, window: int, now: float) -> str:
    digest = hashlib.sha256(who.encode()).hexdigest()[:32]  # no address or e-mail in the cache
    return f"throttle:{scope}:{digest}:{int(now // window)}"


def count(scope: str, who: str, *, window: int, now: float | None = None) -> int:
    return int(cache.get(_key(scope, who, window, now or time.time())) or 0)


def add(scope: str, who: str, *, window: int, now: float | None = None) -> int:
    """Count one more event; returns the count in the current window."""
    key = _key(scope, who, window, now or time.time())
    cache.add(key, 0, timeout=window + 5)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window + 5)
        return 1


def reset(scope: str, who: str, *, window: int) -> None:
    cache.delete(_key(scope, who, window, time.time()))


def seconds_left(window: int, now: float | None = None) -> int:
    now = now or time.time()
    return max(1, math.ceil(window - (now % window)))


def too_many_requests(request: HttpRequest, *, retry_after: int, what: str = "") -> HttpResponse:
    """A 429 page in words a person understands, with Retry-After."""
    minutes = max(1, math.ceil(retry_after / 60))
    body = render_to_string("429.html", {"minutes": minutes, "what": what}, request=request)
    response = HttpResponse(body, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def rate_limit(request: HttpRequest, scope: str, who: str | None = None, *, what: str = ""):
    """Count this request against settings.RATE_LIMITS[scope] for `who` (default: the client's
    address). Returns a 429 response when over the limit, else None."""
    limit, window = settings.RATE_LIMITS[scope]
    who = client_ip(request) if who is None else who
    if add(scope, who, window=window) > limit:
        logger.warning("Rate limit %s reached.", scope)
        return too_many_requests(request, retry_after=seconds_left(window), what=what)
    return None


# --- Sign-in ------------------------------------------------------------------------------------
def _window() -> int:
    return settings.SIGNIN_WINDOW_MINUTES * 60


def normalise_username(value) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


def _device(request: HttpRequest, username: str) -> str | None:
    """The known-browser id in the request's cookie when it is for this account, else None."""
    raw = request.COOKIES.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        data = signing.loads(raw, salt=DEVICE_SALT, max_age=DEVICE_COOKIE_DAYS * 86400)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("e") != username:
        return None
    return str(data.get("n") or "") or None


@dataclass(frozen=True)
class Blocked:
    reason: str  # "address", "account" or "device"
    retry_after: int


def signin_blocked(request: HttpRequest, username: str) -> Blocked | None:
    """Whether this browser may try a password for `username` now."""
    window = _window()
    left = seconds_left(window)
    if count("signin-ip", client_ip(request), window=window) >= (
        settings.SIGNIN_ADDRESS_FAILURE_LIMIT
    ):
        return Blocked("address", left)
    device = _device(request, username)
    if device is not None:
        if count("signin-device", device, window=window) >= settings.SIGNIN_DEVICE_FAILURE_LIMIT:
            return Blocked("device", left)
        return None
    if username and count("signin-account", username, window=window) >= (
        settings.SIGNIN_ACCOUNT_FAILURE_LIMIT
    ):
        return Blocked("account", left)
    return None


def signin_failed(request: HttpRequest, username: str) -> bool:
    """Count a wrong password. Returns True when this failure made the account wait (the
    caller audits it and e-mails the owner their unlock link)."""
    window = _window()
    add("signin-ip", client_ip(request), window=window)
    device = _device(request, username)
    if device is not None:
        add("signin-device", device, window=window)
        return False
    if not username:
        return False
    return add("signin-account", username, window=window) == settings.SIGNIN_ACCOUNT_FAILURE_LIMIT


def signin_succeeded(request: HttpRequest, response: HttpResponse, username: str) -> None:
    """Forget this account's failures from unknown browsers, and remember this browser."""
    window = _window()
    reset("signin-account", username, window=window)
    device = _device(request, username)
    if device is not None:
        reset("signin-device", device, window=window)
    remember_device(response, username)


def remember_device(response: HttpResponse, username: str) -> None:
    value = signing.dumps({"e": username, "n": secrets.token_urlsafe(12)}, salt=DEVICE_SALT)
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=DEVICE_COOKIE_DAYS * 86400,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


class UnlockTokenGenerator(PasswordResetTokenGenerator):
    """The link in the "sign-in paused" e-mail. It covers the password hash and last sign-in, so
    it stops working once the owner signs in or changes the password."""

    key_salt = "studytext.signin-unlock"


unlock_token = UnlockTokenGenerator()
