import os

from django.core.wsgi import get_wsgi_application

from portal.runtime_guards import refuse_unsafe_runtime

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()
refuse_unsafe_runtime()
