from django.urls import path

from messaging import webhooks

urlpatterns = [
    path("twilio/<str:secret>/status/", webhooks.twilio_status, name="twilio-status"),
]
