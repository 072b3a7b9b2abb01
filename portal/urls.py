from django.contrib import admin
from django.urls import include, path

from api import v1

# The admin site is portal.admin_site.PortalAdminSite: the throttled login, and two-factor for staff.
urlpatterns = [
    path("admin/", admin.site.urls),
    # The language chooser posts to /i18n/setlang/ (Django's set_language: the language cookie).
    path("i18n/", include("django.conf.urls.i18n")),
    path("brand/", include("branding.urls")),
    # The REST API (docs/api.md); every answer under it, errors too, is JSON.
    path("api/v1/", v1.urls),
    path("", include("channels_app.urls")),
]

handler404 = "channels_app.views.common.page_not_found"
handler403 = "channels_app.views.common.permission_denied"
