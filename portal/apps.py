"""Django's admin app, with the portal's site (portal.admin_site, loaded once the apps are ready)."""

from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    default_site = "portal.admin_site.PortalAdminSite"
