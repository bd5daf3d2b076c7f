"""Who and what may be texted: the conditions the outbox, the release, the claim and the last gate
share (docs/sending.md, "The last gate"). Each is written once here; the queries and the
release's check in Python are built from the same table.
"""

from django.db.models import Exists, OuterRef, Q

from messaging.models import MessageRule, OptOut
from projects.models import Participant, Project

NO_NUMBER = "The participant has no usable phone number."
# A participant may be texted when every one of these holds, in the order the release checks
# them (the first that fails is the reason a text is skipped). The suppression list (STOP) is
# checked beside them: TEXTABLE_NOW and outbox.textable_participants in the database, the
# release with the batch's opted-out numbers.
TEXTABLE_FIELDS: tuple[tuple[str, object, str], ...] = (
    ("in_redcap", True, "The record is gone from REDCap."),
    ("withdrawn", False, "The participant has withdrawn."),
    ("redcap_opted_out", False, "The participant is marked as opted out in REDCap."),
    ("consented", True, "The participant has not consented to texts."),
    ("issue", "", NO_NUMBER),
    ("number_invalid", False, NO_NUMBER),
)


def textable(prefix: str = "") -> Q:
    """The participant may be texted (the suppression list aside): consent held, not withdrawn,
    not opted out in REDCap, a usable number. `prefix` reaches the participant from another
    model ("participant__" from a Message)."""
    return Q(**{prefix + name: value for name, value, _ in TEXTABLE_FIELDS}) & ~Q(
        **{prefix + "phone_encrypted": ""}
    )


def untextable_reason(participant: Participant) -> str | None:
    """Why this participant may not be texted, in the log's words; None when they may (the
    suppression list aside). The same conditions as `textable`, on a loaded row."""
    for name, value, reason in TEXTABLE_FIELDS:
        if getattr(participant, name) != value:
            return reason
    return None if participant.phone_encrypted else NO_NUMBER


# On Participant: who may be texted (outbox.textable_participants adds the suppression list).
TEXTABLE = textable()

# On Message: the participant may be texted now, the suppression list (STOP) included. The last
# gate re-checks it in the statement that writes the attempt rows (claim.attempts_start).
TEXTABLE_NOW = textable("participant__") & ~Exists(
    OptOut.objects.filter(
        project_id=OuterRef("project_id"),
        phone_fingerprint=OuterRef("participant__phone_fingerprint"),
        revoked_at__isnull=True,
    )
)

# What may be claimed and handed to the provider: a text whose project is active, whose provider
# link is running, and whose rule (none for an ad-hoc text) is neither paused nor archived. The
# claim's conditional update checks it, and so does the update that writes the attempt rows just
# before the calls: a pause stops every text not yet handed to the provider, even those the
# sender already holds in memory (prepared, or claimed ahead of their turn).
RELEASABLE = Q(project__status=Project.Status.ACTIVE, project__provider_link__is_paused=False) & ~Q(
    rule__status__in=[MessageRule.Status.PAUSED, MessageRule.Status.ARCHIVED]
)
