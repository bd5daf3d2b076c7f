"""Where onboarding attachments live: PRIVATE_MEDIA_ROOT, outside the web root.

Nothing serves that folder by URL (there is no MEDIA_URL route); a file leaves it only through
`onboarding.attachment_download`, which checks who asks. The location is read when it is used, so
a deployment (or a test) that changes the setting is obeyed.
"""

import os

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.utils.deconstruct import deconstructible


@deconstructible
class PrivateStorage(FileSystemStorage):
    @property
    def base_location(self) -> str:
        return str(settings.PRIVATE_MEDIA_ROOT)

    @property
    def location(self) -> str:
        return os.path.abspath(self.base_location)

    def url(self, name: str | None) -> str:
        raise ValueError("Private files have no public address; a view hands them out.")


_private = PrivateStorage()


def private_storage() -> PrivateStorage:
    return _private
