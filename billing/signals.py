from django.dispatch import Signal

# Something worth an audit-log line happened. The portal (which this app never imports) records
# it. Keyword arguments: actor (a user or None for the system), action ("<entity>.<verb>"),
# obj (the model instance acted on), message (plain words; never a secret, body or phone number),
# and optionally data (a small dict of non-sensitive details).
audit = Signal()

# Held messages may go now. Both are sent after the transaction that caused them commits, so a
# receiver sees the new credits or period. Messaging (which billing never imports) receives them
# and releases the messages it held for the account, oldest first.
#
# credits_added: account (billing.Account), units (int, credit units just added).
credits_added = Signal()
# period_started: account (billing.Account), period (billing.UsagePeriod, the new month).
period_started = Signal()
