from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied


def server_admin_required(view):
    """Signed-in server administrators only; anyone else gets 403 (anonymous: the sign-in page)."""

    @wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        if not request.user.is_server_admin:
            raise PermissionDenied("Only server administrators can do this.")
        return view(request, *args, **kwargs)

    return wrapped
