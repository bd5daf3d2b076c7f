import os

from django.core.asgi import get_asgi_application

from portal.runtime_guards import refuse_unsafe_runtime

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_asgi_application()
refuse_unsafe_runtime()
