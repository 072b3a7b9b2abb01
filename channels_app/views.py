from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def livez(request):
    """Liveness probe: the process answers (no database access)."""
    return HttpResponse("ok", content_type="text/plain")


@require_GET
def healthz(request):
    """Readiness probe: answers 200 when the portal can reach its database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})
