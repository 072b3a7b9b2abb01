def test_healthz_answers_when_the_database_does(client, db):
    assert client.get("/healthz").json() == {"ok": True}


def test_livez_needs_no_database(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/livez").content == b"ok"


def test_every_kind_of_page_carries_the_content_security_policy(client, admin_client, alice, channel):
    from django.urls import reverse

    from portal.csp import POLICY

    client.force_login(alice)
    for response in (
        client.get(reverse("channels_app:channel", args=[channel.code])),
        admin_client.get(reverse("admin:channels_app_channel_changelist")),
        client.get("/livez"),
        client.get("/no-such-page/"),
    ):
        assert response["Content-Security-Policy"] == POLICY
    assert "script-src 'self'" in POLICY and "unsafe-inline" not in POLICY


def test_a_csrf_failure_page_needs_no_inline_style(client, alice):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/app/login/", {"username": "alice", "password": "x"})
    page = response.content.decode()
    assert response.status_code == 403 and "This form has expired" in page
    assert "<style" not in page and "style=" not in page
