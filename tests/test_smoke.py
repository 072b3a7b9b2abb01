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
