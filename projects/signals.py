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
