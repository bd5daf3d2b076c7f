import zoneinfo

from django.utils import timezone


class UserTimezoneMiddleware:
    """Show times in the signed-in user's own time zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tz_name = getattr(request.user, "time_zone", None) if hasattr(request, "user") else None
        if tz_name:
            try:
                timezone.activate(zoneinfo.ZoneInfo(tz_name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Scripts, styles, images and connections come from this site only (no CDN, no inline JS)."""

    POLICY = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
        "object-src 'none'"
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", self.POLICY)
        return response


class SecurityHeadersMiddleware:
    """Headers a security review expects on every answer: no powerful browser features (camera,
    microphone, location, payment ...) for any page, and no `Server` banner from the app (the
    WSGI server's own, "gunicorn", carries no version)."""

    PERMISSIONS_POLICY = (
        "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
        "magnetometer=(), microphone=(), midi=(), payment=(), usb=(), "
        "publickey-credentials-get=(), browsing-topics=()"
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", self.PERMISSIONS_POLICY)
        if "Server" in response:
            del response["Server"]
        return response


def accepts_files(view):
    """Mark a view whose form takes file uploads; every other view refuses file parts."""
    view.accepts_files = True
    return view


class RequestInputMiddleware:
    """Input that is refused before any view sees it, with a message, so nothing half-valid is
    stored (docs/compliance.md, "Input"):

    - text that is not valid UTF-8, in the query string or a form (a browser never sends it;
      Django would otherwise store U+FFFD replacement characters in its place);
    - file parts posted to a view that takes no files (`accepts_files` marks those that do).
    """

    FORM = "application/x-www-form-urlencoded"
    MULTIPART = "multipart/form-data"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not _valid_utf8_query(request.META.get("QUERY_STRING", "")):
            return _bad_input(request, "The address contains characters that are not valid text.")
        form = request.method == "POST" and request.content_type == self.FORM
        if form and not _valid_utf8_form(request.body):
            return _bad_input(request, "The form contains characters that are not valid text.")
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method != "POST" or request.content_type != self.MULTIPART:
            return None
        if request.FILES and not _accepts_files(view_func):
            return _bad_input(request, "This form takes no files. Send it without attachments.")
        for values in request.POST.lists():
            if any("\ufffd" in value for value in values[1]) or "\ufffd" in values[0]:
                return _bad_input(request, "The form contains characters that are not valid text.")
        return None


def _accepts_files(view_func) -> bool:
    for candidate in (view_func, getattr(view_func, "view_class", None)):
        if candidate is not None and getattr(candidate, "accepts_files", False):
            return True
    return False


def _valid_utf8_query(query: str) -> bool:
    from urllib.parse import unquote_to_bytes

    try:
        raw = query.encode("latin-1")  # WSGI hands the raw bytes over as latin-1
    except UnicodeEncodeError:
        return False
    for part in raw.split(b"&"):
        try:
            unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def _valid_utf8_form(body: bytes) -> bool:
    from urllib.parse import unquote_to_bytes

    try:
        body.decode("ascii")  # an encoded form is ASCII; its %-escapes carry the text
    except UnicodeDecodeError:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return False
    for part in body.split(b"&"):
        try:
            unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def _bad_input(request, message: str):
    from django.http import HttpResponseBadRequest
    from django.template.loader import render_to_string

    if request.path.startswith("/api/"):
        from django.http import JsonResponse

        from portal.api.errors import error_body

        return JsonResponse(error_body(status_code=400, code="invalid", detail=message), status=400)
    if request.path.startswith("/webhooks/"):
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
    return HttpResponseBadRequest(
        render_to_string("400.html", {"message": message}, request=request)
    )


class SecondFactorMiddleware:
    """A signed-in person who needs the second factor (administrators, and anyone who turned it
    on) reaches nothing but the second-factor pages and sign-out until a code is accepted in
    this session. After django_otp's OTPMiddleware."""

    OPEN = frozenset({"two-factor-verify", "two-factor-setup", "logout"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.is_verified():
            return self.get_response(request)
        from django.urls import Resolver404, resolve

        from portal.services.two_factor import has_second_factor, needs_second_factor

        try:
            name = resolve(request.path_info).url_name
        except Resolver404:
            name = None
        if name in self.OPEN or not needs_second_factor(user):
            return self.get_response(request)
        if request.path.startswith("/api/"):
            from django.http import JsonResponse

            from portal.api.errors import error_body

            detail = "Finish two-factor sign-in in the portal first (or use an API token)."
            return JsonResponse(
                error_body(status_code=403, code="permission_denied", detail=detail), status=403
            )
        from django.contrib.auth.views import redirect_to_login
        from django.urls import reverse

        step = "two-factor-verify" if has_second_factor(user) else "two-factor-setup"
        return redirect_to_login(request.get_full_path(), reverse(step))
