"""Who and what may be texted: the conditions the outbox, the release, the claim and the last gate
share (docs/sending.md, "The last gate")."""

from django.db.models import Exists, OuterRef, Q

from messaging.models import MessageRule, OptOut
from projects.models import Project

# What may be claimed and handed to the provider: a text whose project is active, whose provider
# link is running, and whose rule (none for an ad-hoc text) is neither paused nor archived. The
# claim's conditional update checks it, and so does the update that writes the attempt rows just
# before the calls: a pause stops every text not yet handed to the provider, even those the
# sender already holds in memory (prepared, or claimed ahead of their turn).
RELEASABLE = Q(project__status=Project.Status.ACTIVE, project__provider_link__is_paused=False) & ~Q(
    rule__status__in=[MessageRule.Status.PAUSED, MessageRule.Status.ARCHIVED]
)


# The participant may be texted now: consent held, not withdrawn, not opted out in REDCap or on
# the suppression list (STOP), a usable number. The last gate re-checks it (attempts_start).
TEXTABLE_NOW = Q(
    participant__consented=True,
    participant__withdrawn=False,
    participant__redcap_opted_out=False,
    participant__in_redcap=True,
    participant__number_invalid=False,
    participant__issue="",
) & ~Exists(
    OptOut.objects.filter(
        project_id=OuterRef("project_id"),
        phone_fingerprint=OuterRef("participant__phone_fingerprint"),
        revoked_at__isnull=True,
    )
)
