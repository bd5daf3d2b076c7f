from django.dispatch import Signal

# Something worth an audit-log line happened. The portal (which this app never imports) records
# it. Keyword arguments: actor (a user or None for the system), action ("<entity>.<verb>"),
# obj (the model instance acted on), message (plain words; never a secret, body or phone number),
# and optionally data (a small dict of non-sensitive details).
audit = Signal()

# A project's status changed (inside the transaction that changed it). Keyword arguments:
# project, old (status), new (status). Messaging cancels the texts waiting for an archived one.
project_status_changed = Signal()

# A project's sending hours changed (inside the transaction that changed them). Keyword
# argument: project. Messaging recomputes when every text waiting for the hours goes out.
sending_hours_changed = Signal()

# REDCap said a record was saved (its Data Entry Trigger), and StudyText has read that record
# again and updated its participant (docs/redcap.md, "The Data Entry Trigger"). Sent once per
# read, after the commit, so a burst of saves of one record sends it once. Ids only:
# project_id, participant_id, record_id, and what the posts said was saved: instrument, event
# ("" in a classic project) and repeat_instance (None when REDCap sent none) of the latest save,
# and `saves`, every distinct (instrument, event, repeat_instance) of the burst, oldest first.
# These three are REDCap's claims, not facts: a receiver reads REDCap for the values it acts on.
# Receivers run in the task that read the record: keep them quick (enqueue a task of your own).
record_saved = Signal()

# A full participant sync finished (the 15-minute safety net, or one asked for by hand).
# Keyword argument: project_id. Messaging evaluates its REDCap-driven triggers for the whole
# project then (docs/sending.md, "Triggers"). Sent after the sync's writes; keep receivers quick.
participants_synced = Signal()
