"""The whole journey on `make run`: a project approved for a REDCap project id the REDCap sandbox
does not know can have the sandbox create it (the demo's instruments and records), and its owner
sees the token to link. Development only: the sandbox is off in production (see docs/redcap.md).
"""

import hashlib
import hmac

from django.conf import settings
from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

from projects.access import OWNER, project_role_require
from projects.models import Project, RedcapInstance, RedcapLink
from projects.sandbox import store
from projects.sandbox.data import SANDBOX_PROJECTS
from projects.services.links import SANDBOX_API_PATH
from projects.signals import audit


def is_sandbox_instance(instance: RedcapInstance) -> bool:
    """Whether this REDCap server is the portal's own sandbox, and the sandbox is on."""
    return settings.SANDBOX_ENABLED and instance.api_url.rstrip("/").endswith(SANDBOX_API_PATH)


def sandbox_token(pid: int) -> str:
    """The token of the sandbox project created for `pid`: 32 hexadecimal characters like
    REDCap's, the same after a restart, and known only to this installation (its secret key)."""
    mac = hmac.new(
        settings.SECRET_KEY.encode(), f"studytext-sandbox-project:{pid}".encode(), hashlib.sha256
    )
    return mac.hexdigest()[:32].upper()


@sensitive_variables("token")
def sandbox_offer(*, project: Project) -> dict | None:
    """What the REDCap page offers the owner: None unless the project's server is the sandbox and
    the sandbox did not ship the project; then `missing` (it can be created) or `created` (with
    its token)."""
    if not is_sandbox_instance(project.redcap_instance):
        return None
    known = SANDBOX_PROJECTS.get(project.redcap_project_id)
    if known is None:
        return {"state": "missing"}
    token = sandbox_token(project.redcap_project_id)
    if known.token != token:
        return None  # one of the sandbox's own demo projects
    return {"state": "created", "token": token}


def sandbox_project_create(*, project: Project, actor) -> str:
    """Create the project's REDCap project in the sandbox; return its token (owners only)."""
    project_role_require(
        user=actor, project=project, min_role=OWNER, doing="create its sandbox project"
    )
    offer = sandbox_offer(project=project)
    if offer is None:
        raise ValidationError(
            f"{project.redcap_instance} is not the REDCap sandbox, or the sandbox already has "
            f"REDCap project {project.redcap_project_id}."
        )
    token = sandbox_token(project.redcap_project_id)
    if offer["state"] == "missing":
        store.project_create(pid=project.redcap_project_id, token=token, title=project.title)
        audit.send(
            sender=Project,
            actor=actor,
            action="redcap_sandbox.project_created",
            obj=project,
            message=f"REDCap sandbox project {project.redcap_project_id} created "
            "(the demo's instruments and records).",
        )
    return token


def sandbox_projects_restore() -> int:
    """Create again the sandbox projects that StudyText projects are linked to (the sandbox
    keeps them in memory, so a restart forgets them). Run by `manage.py devserver`."""
    if not settings.SANDBOX_ENABLED:
        return 0
    restored = 0
    for link in RedcapLink.objects.select_related("project", "project__redcap_instance"):
        project = link.project
        pid = project.redcap_project_id
        if pid in SANDBOX_PROJECTS or not is_sandbox_instance(project.redcap_instance):
            continue
        if hmac.compare_digest(link.token, sandbox_token(pid)):
            store.project_create(pid=pid, token=link.token, title=project.title)
            restored += 1
    return restored
