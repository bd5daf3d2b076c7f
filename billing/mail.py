"""The one way StudyText sends an e-mail: its subject starts with the site's prefix.

`settings.EMAIL_SUBJECT_PREFIX` ("[StudyText] " unless the institution sets another) is the
setting Django's own administrator e-mails use; every e-mail of ours uses it too, so people can
filter them. It lives in billing because every app may import billing (and billing none).
"""

from django.conf import settings
from django.core.mail import send_mail


def subject_line(subject: str) -> str:
    """One line (a subject cannot hold a line break) that starts with the site's prefix."""
    return settings.EMAIL_SUBJECT_PREFIX + " ".join(subject.split())


def send(subject: str, body: str, recipients: list[str]) -> None:
    if recipients:
        send_mail(subject_line(subject), body, None, recipients)
