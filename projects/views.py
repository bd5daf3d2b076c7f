from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from projects.access import project_get_for_user
from projects.selectors import projects_for_user


@login_required
def project_list(request):
    page = Paginator(projects_for_user(user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "projects/list.html", {"page": page})


@login_required
def project_detail(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    members = project.memberships.select_related("user").order_by("role", "user__email")
    return render(
        request, "projects/detail.html", {"project": project, "role": role, "members": members}
    )
