from django.core.paginator import Paginator
from django.shortcuts import render

from portal import selectors
from portal.access import server_admin_required


@server_admin_required
def audit_log(request):
    project = request.GET.get("project", "")
    qs = selectors.audit_events(
        action=request.GET.get("action", "").strip(),
        project_id=int(project) if project.isdigit() else None,
        actor_email=request.GET.get("actor", "").strip(),
    )
    page = Paginator(qs, 100).get_page(request.GET.get("page"))
    return render(request, "portal/audit_log.html", {"page": page, "filters": request.GET})
