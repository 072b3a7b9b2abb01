from django.urls import path

from channels_app import views, webhooks

app_name = "channels_app"

urlpatterns = [
    path("livez", views.livez, name="livez"),
    path("healthz", views.healthz, name="healthz"),
    path("whapi/webhook", webhooks.whapi_webhook, name="whapi_webhook"),
]
