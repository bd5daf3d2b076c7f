"""Messaging writes, split by topic. Callers outside the app import them from here
(`from messaging.services import rule_save`), so the modules behind may move."""

from messaging.services.inbound import inbound_receive, simulator_reply
from messaging.services.optouts import participant_opt_in, participant_opt_out
from messaging.services.outbox import adhoc_send, message_cancel, send_now
from messaging.services.rules import rule_save, rule_set_status

__all__ = [
    "adhoc_send",
    "inbound_receive",
    "message_cancel",
    "participant_opt_in",
    "participant_opt_out",
    "rule_save",
    "rule_set_status",
    "send_now",
    "simulator_reply",
]
