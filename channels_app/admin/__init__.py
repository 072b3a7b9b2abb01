"""The staff console (Django admin): customers and their members, Whapi projects, channels with
their actions and bulk jobs, the records (webhook ledger, audit log, create attempts) and the
background task queue. Its index, the operations home, is portal.admin_site's.

Staff changes go through `channels_app.actions` (audited); secrets are never listed.
"""

from django.contrib import admin

from channels_app.admin import bulk_jobs, channels, customers, ledger, projects, queue

# The channel list needs the width more than a second menu: the breadcrumbs and the index lead
# everywhere the sidebar would.
admin.site.enable_nav_sidebar = False

__all__ = ["bulk_jobs", "channels", "customers", "ledger", "projects", "queue"]
