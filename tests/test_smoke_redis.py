def test_real_redis_answers(redis_client):
    assert redis_client.ping()
    redis_client.set("k", "v")
    assert redis_client.get("k") == b"v"
