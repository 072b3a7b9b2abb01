"""Whapi projects in the staff console: "Sync from Whapi" (every page), creating a project in Whapi,
and assigning projects to customers (audited)."""

import json

import responses

from channels_app.models import AuditLog, Customer, Project
from tests.admin_support import PARTNER, login_as, messages_of, url, whapi_error

pytest_plugins = ["tests.admin_fixtures"]


def remote_project(index: int, **extra) -> dict:
    return {
        "id": f"PROJ{index:016d}",
        "name": f"Project {index}",
        "creationTS": 1712598267389,
        "ownerId": "o" * 28,
        "users": [],
        **extra,
    }


def test_sync_mirrors_every_page_of_projects(staff_client, project, whapi):
    first = [remote_project(i) for i in range(100)]
    second = [remote_project(100, isDefault=True), {**remote_project(101), "id": project.whapi_id, "name": "Renamed"}]
    whapi.add(
        responses.GET,
        f"{PARTNER}/projects",
        match=[responses.matchers.query_param_matcher({"count": "100", "offset": "0"})],
        json={"projects": first, "count": 100, "total": 102, "offset": 0},
    )
    whapi.add(
        responses.GET,
        f"{PARTNER}/projects",
        match=[responses.matchers.query_param_matcher({"count": "100", "offset": "100"})],
        json={"projects": second, "count": 100, "total": 102, "offset": 100},
    )
    response = staff_client.post(url("project_sync"))
    assert response.status_code == 302 and response["Location"] == url("project_changelist")
    assert messages_of(response) == ["Projects synced from Whapi: 101 new, 1 updated."]
    assert Project.objects.count() == 102
    assert Project.objects.get(pk=project.pk).name == "Renamed"
    assert Project.objects.get(pk=project.pk).customer is not None  # the assignment is ours, kept
    assert AuditLog.objects.get(action="projects.sync").detail == "101 new, 1 updated"


def test_a_failed_project_sync_is_a_message(staff_client, db, whapi):
    whapi.add(responses.GET, f"{PARTNER}/projects", **whapi_error(403, "Not a partner token"))
    response = staff_client.post(url("project_sync"))
    assert messages_of(response) == ["The sync with Whapi failed: Not a partner token"]
    assert AuditLog.objects.get(action="projects.sync").ok is False


def test_creating_a_project_in_whapi_assigns_it(staff_client, customer, whapi):
    whapi.add(responses.PUT, f"{PARTNER}/projects", json=remote_project(7, name="Acme second"))
    form = staff_client.get(url("project_add"))
    assert form.status_code == 200 and "Create in Whapi" in form.content.decode()
    response = staff_client.post(url("project_add"), {"name": "Acme second", "customer": customer.pk})
    project = Project.objects.get(whapi_id="PROJ0000000000000007")
    assert response["Location"] == url("project_change", project.pk)
    assert json.loads(whapi.calls[0].request.body) == {"name": "Acme second"}
    assert project.customer == customer
    entry = AuditLog.objects.get(action="project.create")
    assert (entry.ok, entry.customer, entry.target_id) == (True, customer, project.whapi_id)


def test_a_refused_project_creation_shows_whapis_reason(staff_client, db, whapi):
    whapi.add(responses.PUT, f"{PARTNER}/projects", **whapi_error(400, "Name is too long"))
    response = staff_client.post(url("project_add"), {"name": "x" * 150})
    assert response.status_code == 200
    assert "Whapi could not create the project" in response.content.decode()
    assert "Name is too long" in response.content.decode()
    assert not Project.objects.exists()
    assert AuditLog.objects.get(action="project.create").ok is False


def test_assigning_a_project_on_its_page_is_audited(staff_client, project, customer):
    other = Customer.objects.create(name="Other Inc")
    response = staff_client.post(url("project_change", project.pk), {"customer": other.pk})
    assert response.status_code == 302
    assert Project.objects.get(pk=project.pk).customer == other
    entry = AuditLog.objects.get(action="project.assign")
    assert entry.detail == "Acme Corp → Other Inc" and entry.customer == other


def test_the_page_changes_nothing_but_the_customer(staff_client, project):
    staff_client.post(url("project_change", project.pk), {"customer": "", "name": "Hacked", "whapi_id": "X"})
    project.refresh_from_db()
    assert (project.name, project.whapi_id, project.customer) == ("Acme channels", "kpSv3OFq9PkP1W1Ogv7p", None)
    assert AuditLog.objects.get(action="project.assign").detail == "Acme Corp → unassigned"


def test_assigning_a_selection_asks_for_the_customer(staff_client, db):
    projects = [Project.objects.create(whapi_id=f"IMPORTED{i:012d}", name=f"Imported {i}") for i in range(3)]
    customer = Customer.objects.create(name="New Customer")
    data = {"action": "assign_selected", "index": "0", "_selected_action": [p.pk for p in projects]}
    first = staff_client.post(url("project_changelist"), data)
    assert first.status_code == 200 and "Assign 3 projects" in first.content.decode()
    response = staff_client.post(url("project_changelist"), {**data, "confirm": "yes", "customer": customer.pk})
    assert response.status_code == 302
    assert set(Project.objects.values_list("customer", flat=True)) == {customer.pk}
    assert AuditLog.objects.filter(action="project.assign").count() == 3


def test_the_project_list_filters_unassigned_ones(staff_client, project):
    Project.objects.create(whapi_id="O" * 20, name="Spare")
    response = staff_client.get(url("project_changelist") + "?assigned=no")
    assert [p.name for p in response.context["cl"].result_list] == ["Spare"]
    text = staff_client.get(url("project_changelist")).content.decode()
    assert "Sync from Whapi" in text


def test_projects_need_their_permissions(client, django_user_model, project, whapi):
    login_as(client, django_user_model, "sam", "view_project")
    assert client.post(url("project_sync")).status_code == 403
    assert client.get(url("project_add")).status_code == 403
    assert client.post(url("project_change", project.pk), {"customer": ""}).status_code == 403
    assert "Sync from Whapi" not in client.get(url("project_changelist")).content.decode()
    assert Project.objects.get(pk=project.pk).customer is not None
    assert not whapi.calls
