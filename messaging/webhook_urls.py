from django.urls import path

from messaging.views import webhooks

urlpatterns = [
    path("twilio/<str:secret>/status/", webhooks.twilio_status, name="twilio-status"),
    path("twilio/<str:secret>/inbound/", webhooks.twilio_inbound, name="twilio-inbound"),
    path("mosio/<str:secret>/inbound/", webhooks.mosio_inbound, name="mosio-inbound"),
]
