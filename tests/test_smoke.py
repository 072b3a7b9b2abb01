def test_healthz_answers(client, db):
    assert client.get("/healthz").json() == {"ok": True}
