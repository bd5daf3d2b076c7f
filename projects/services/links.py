"""Linking a project to REDCap: its API token, checked with REDCap and stored encrypted.
(The SMS provider link's writes are in messaging/services/provider_links.py.)"""

import re

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from projects import crypto
from projects.access import project_role_require
from projects.models import Membership, Project, ProviderLink, RedcapLink
from projects.redcap import RedcapClient, RedcapError, RedcapServerError
from projects.selectors import project_redcap_link
from projects.signals import audit

TOKEN_RE = re.compile(r"^[0-9A-Fa-f]{32}$")


def _owner_required(project: Project, actor) -> None:
    project_role_require(
        user=actor, project=project, min_role=Membership.Role.OWNER, doing="manage its REDCap link"
    )


@sensitive_variables("token")
def redcap_client_for(project: Project, *, token: str | None = None) -> RedcapClient:
    """A client for the project's REDCap instance with its linked token (or the given one)."""
    if token is None:
        link = project_redcap_link(project=project)
        if link is None:
            raise ValidationError("Link the project's REDCap API token first.")
        token = link.token
    return RedcapClient(project.redcap_instance.api_url, token)


def _redcap_info_number(info: dict, key: str, *, what: str, default: int | None = None) -> int:
    """A whole number from REDCap's project information (`project_id`, `is_longitudinal`).

    Anything else (text, a decimal, nothing at all when there is no `default`) means the answer
    did not come from REDCap as expected: RedcapServerError, in words, rather than a crash.
    """
    raw = info.get(key)
    text = "" if raw is None else str(raw).strip()
    if not text and default is not None:
        return default
    if isinstance(raw, bool) or not re.fullmatch(r"[0-9]{1,18}", text):
        shown = f"“{text[:40]}”" if text else "nothing"
        raise RedcapServerError(
            f"REDCap's project information gives {shown} as {what}, where REDCap gives a whole "
            "number. Check that the REDCap server's API URL really points at REDCap; if it "
            "does, tell the REDCap administrators.",
            status_code=200,
        )
    return int(text)


def _redcap_project_id(info: dict) -> int:
    return _redcap_info_number(info, "project_id", what="the project id")


def redcap_is_longitudinal(info: dict) -> bool:
    """Whether REDCap's project information says the project is longitudinal."""
    return bool(
        _redcap_info_number(
            info, "is_longitudinal", what="whether the project is longitudinal", default=0
        )
    )


@sensitive_variables("token")
def redcap_link_set(*, project: Project, token: str, actor) -> RedcapLink:
    """Check the token against REDCap and store it encrypted.

    Refused when REDCap rejects the token or it belongs to another REDCap project.
    """
    _owner_required(project, actor)
    token = token.strip()
    if not TOKEN_RE.match(token):
        raise ValidationError(
            {
                "token": "A REDCap API token is 32 characters, digits 0–9 and letters A–F. "
                "Copy it again from REDCap's API page."
            }
        )
    try:
        client = redcap_client_for(project, token=token)
        info = client.project_info()
        version = client.version()
        found = _redcap_project_id(info)
        facts = redcap_facts(version, info)
    except RedcapError as exc:
        raise ValidationError({"token": str(exc)}) from exc
    if found != project.redcap_project_id:
        raise ValidationError(
            {
                "token": (
                    f"This token belongs to REDCap project {found} "
                    f"(“{info.get('project_title', '')}”), but this StudyText project was approved "
                    f"for project {project.redcap_project_id}. Use the token of project "
                    f"{project.redcap_project_id}."
                )
            }
        )
    return redcap_link_store(project=project, token=token, facts=facts, actor=actor, checked=True)


@sensitive_variables("token")
def redcap_link_store(
    *, project: Project, token: str, facts: dict, actor, checked: bool
) -> RedcapLink:
    """Store a token `redcap_link_set` checked with REDCap (or the sandbox's own, for the demo
    seed: `checked` False), encrypted, with what REDCap said of the project (`redcap_facts`)."""
    with transaction.atomic():
        existing = RedcapLink.objects.select_for_update(no_key=True).filter(project=project).first()
        link = existing or RedcapLink(project=project)
        link.token_encrypted = crypto.encrypt(token)
        link.token_last4 = crypto.last4(token)
        link.token_fingerprint = crypto.fingerprint(token, purpose="redcap-token")
        for field, value in facts.items():
            setattr(link, field, value)
        link.linked_by = actor
        link.last_checked_at = timezone.now() if checked else None
        link.last_error = ""
        link.save()
        audit.send(
            sender=RedcapLink,
            actor=actor,
            action="redcap_link.replaced" if existing else "redcap_link.created",
            obj=project,
            message=f"REDCap API token {'replaced' if existing else 'linked'} "
            f"(ends in {link.token_last4}).",
        )
    return link


def redcap_facts(version, info: dict) -> dict:
    """What a link keeps of REDCap's answers to `version` and `project_info` (RedcapServerError
    when those are not what REDCap gives)."""
    return {
        "redcap_version": str(version)[:32],
        "redcap_project_title": str(info.get("project_title", ""))[:300],
        "is_longitudinal": redcap_is_longitudinal(info),
    }


def redcap_link_test(*, project: Project, actor) -> dict:
    """Call REDCap with the stored token; return version and title, or raise ValidationError."""
    _owner_required(project, actor)
    link = project_redcap_link(project=project)
    if link is None:
        raise ValidationError("No REDCap token is linked yet.")
    try:
        client = redcap_client_for(project, token=link.token)
        version = client.version()
        info = client.project_info()
        found = _redcap_project_id(info)
        facts = redcap_facts(version, info)
        if found != project.redcap_project_id:
            raise RedcapError(
                f"The linked token now opens REDCap project {found}, not project "
                f"{project.redcap_project_id}. Link the token of project "
                f"{project.redcap_project_id}."
            )
    except RedcapError as exc:
        RedcapLink.objects.filter(pk=link.pk).update(
            last_checked_at=timezone.now(), last_error=str(exc)
        )
        raise ValidationError(str(exc)) from exc
    RedcapLink.objects.filter(pk=link.pk).update(
        last_checked_at=timezone.now(), last_error="", **facts
    )
    return {
        "version": str(version),
        "project_id": found,
        "project_title": info.get("project_title", ""),
    }


def redcap_link_remove(*, project: Project, actor) -> None:
    """Delete the project's REDCap link, if any, and audit what it was."""
    _owner_required(project, actor)
    with transaction.atomic():
        link = project_redcap_link(project=project)
        if link is None:
            return
        link.delete()
        audit.send(
            sender=RedcapLink,
            actor=actor,
            action="redcap_link.removed",
            obj=project,
            message=f"REDCap API token (ends in {link.token_last4}) removed.",
        )


def secrets_rotate(*, batch_size: int = 500) -> int:
    """Re-encrypt every stored secret under the newest key. Returns the number of values."""
    from projects.models import Participant

    count = 0
    with transaction.atomic():
        redcap = list(RedcapLink.objects.select_for_update(no_key=True))
        for link in redcap:
            link.token_encrypted = crypto.rotate(link.token_encrypted)
        RedcapLink.objects.bulk_update(redcap, ["token_encrypted"])
        providers = list(ProviderLink.objects.select_for_update(no_key=True))
        for link in providers:
            link.config_encrypted = crypto.rotate(link.config_encrypted)
        ProviderLink.objects.bulk_update(providers, ["config_encrypted"])
        count += len(redcap) + len(providers)
        people = Participant.objects.exclude(phone_encrypted="").only("pk", "phone_encrypted")
        batch = []
        for participant in people.iterator(chunk_size=batch_size):
            participant.phone_encrypted = crypto.rotate(participant.phone_encrypted)
            batch.append(participant)
            if len(batch) >= batch_size:
                Participant.objects.bulk_update(batch, ["phone_encrypted"])
                count += len(batch)
                batch = []
        Participant.objects.bulk_update(batch, ["phone_encrypted"])
        count += len(batch)
    return count
