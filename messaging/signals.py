from django.dispatch import Signal

# See billing/signals.py: the portal records these in the append-only audit log.
audit = Signal()
