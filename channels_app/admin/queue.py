"""django-q2's queue of background tasks (its ORM broker's rows) in the staff console, as django-q2
shows it plus a filter for the tasks still waiting and those a worker has taken: the operations
home links its task counts to them."""

from django.contrib import admin
from django_q.admin import QueueAdmin
from django_q.models import OrmQ

from channels_app.admin.filters import TaskTakenFilter

# django_q comes before channels_app in INSTALLED_APPS, so its admin has registered the queue by now.
admin.site.unregister(OrmQ)


@admin.register(OrmQ)
class TaskQueueAdmin(QueueAdmin):
    list_filter = (TaskTakenFilter, "key")
