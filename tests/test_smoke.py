def test_healthz_answers_when_the_database_does(client, db):
    assert client.get("/healthz").json() == {"ok": True}


def test_livez_needs_no_database(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/livez").content == b"ok"
