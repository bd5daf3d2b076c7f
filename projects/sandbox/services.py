"""What only the REDCap sandbox's demo needs (development only: the sandbox is off in production;
see docs/redcap.md).

- The whole journey on `make run`: a project approved for a REDCap project id the sandbox does
  not know can have the sandbox create it (the demo's instruments and records), and its owner
  sees the token to link (`sandbox_offer`, `sandbox_project_create`).
- The demo seed (`manage.py seed_demo`, portal/demo.py) runs before the web server that serves
  the sandbox starts, so it links the demo project's token and reads its data dictionary from
  the sandbox's data in this process, not over HTTP (`redcap_link_set_sandbox`,
  `dictionary_from_sandbox`).
"""

import hashlib
import hmac

from django.conf import settings
from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

from projects.access import OWNER, project_role_require
from projects.models import Project, RedcapInstance, RedcapLink
from projects.sandbox import store
from projects.sandbox.data import REDCAP_VERSION, SANDBOX_PROJECTS
from projects.services import links, mapping
from projects.signals import audit

SANDBOX_API_PATH = "/sandbox/redcap/api"


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


def redcap_link_set_sandbox(*, project: Project, actor) -> RedcapLink:
    """Link a project of the built-in REDCap sandbox to its sandbox token, without an HTTP call.

    Only for `manage.py seed_demo`: it runs before the web server that serves the sandbox has
    started, so the live check of `redcap_link_set` cannot reach it. The sandbox's projects are
    data in this code base (projects.sandbox.data), so the answers `project_info` and `version`
    would give are read from there: the token, project id and title are the ones the sandbox
    serves. The link is stored as not checked yet ("Test connection" and the first sync check
    it over HTTP). Refused unless the sandbox is on and the project is one of its projects.
    """
    project_role_require(
        user=actor, project=project, min_role=OWNER, doing="manage its REDCap link"
    )
    sandbox = SANDBOX_PROJECTS.get(project.redcap_project_id)
    if not settings.SANDBOX_ENABLED or sandbox is None:
        raise ValidationError("Only a project of the enabled REDCap sandbox can be linked so.")
    if not project.redcap_instance.api_url.rstrip("/").endswith(SANDBOX_API_PATH):
        raise ValidationError(
            f"{project.redcap_instance} is not the REDCap sandbox; link its token with a check."
        )
    return links.redcap_link_store(
        project=project,
        token=sandbox.token,
        facts=links.redcap_facts(REDCAP_VERSION, sandbox.project_info()),
        actor=actor,
        checked=False,
    )


def dictionary_from_sandbox(*, project: Project) -> mapping.Dictionary:
    """The data dictionary of a REDCap-sandbox project, read in this process rather than over
    HTTP: for the demo seed, which runs before the web server serving the sandbox starts (see
    redcap_link_set_sandbox). The same rows the sandbox's metadata export returns."""
    sandbox = SANDBOX_PROJECTS.get(project.redcap_project_id)
    if sandbox is None:
        raise ValidationError(f"REDCap project {project.redcap_project_id} is not in the sandbox.")
    return mapping.dictionary_from_metadata(
        [dict(row) for row in sandbox.metadata],
        events=[event.as_api() for event in sandbox.events],
        is_longitudinal=sandbox.longitudinal,
        form_event_mapping=[
            {"unique_event_name": event.unique_event_name, "form": form}
            for event in sandbox.events
            for form in event.forms
        ],
    )
