from django.contrib import admin
from django.urls import include, path

from channels_app.forms import AdminLoginForm

# Staff sign in at /admin/login/ with the same failed-login throttle as customers at /app/login/.
admin.site.login_form = AdminLoginForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("channels_app.urls")),
]

handler404 = "channels_app.views.common.page_not_found"
handler403 = "channels_app.views.common.permission_denied"
