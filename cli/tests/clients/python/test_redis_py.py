"""redis-py against the server at $REDIS_HOST:$REDIS_PORT (started by ../run.sh).

Each test starts from FLUSHDB; DBKV_CLIENTS_TARGET=redis skips the DBKV.*
commands so the suite can be proven against a real redis-server.
"""

import os
import threading
import time
import uuid

import pytest
import redis

HOST = os.environ.get("REDIS_HOST", "127.0.0.1")
PORT = os.environ.get("REDIS_PORT")

pytestmark = pytest.mark.skipif(PORT is None, reason="REDIS_PORT not set (run ../run.sh)")
dbkv_only = pytest.mark.skipif(
    os.environ.get("DBKV_CLIENTS_TARGET") == "redis", reason="DBKV.* commands: target is plain Redis"
)


def connect(**kw):
    # A short socket timeout turns a hung reply into a failure, not a stall.
    return redis.Redis(host=HOST, port=int(PORT), socket_timeout=10, **kw)


@pytest.fixture
def r():
    c = connect()
    c.flushdb()
    yield c
    c.close()


@pytest.fixture
def other():
    # A second connection, to change data behind the first one's back.
    c = connect()
    yield c
    c.close()


def test_set_get_bytes(r):
    assert r.ping() is True
    assert r.set("py:s", "hello") is True
    assert r.get("py:s") == b"hello"
    # Every byte value must round-trip: NUL, CR/LF (RESP's delimiter), high bytes.
    binary = bytes(range(256)) + b"\r\n\x00"
    r.set(b"py:\x00bin\xff", binary)
    assert r.get(b"py:\x00bin\xff") == binary
    # Empty is a value, distinct from a missing key.
    r.set("py:empty", b"")
    assert r.get("py:empty") == b""
    assert r.get("py:missing") is None
    assert r.strlen("py:s") == 5
    # NX/XX/GET options.
    assert r.set("py:s", "x", nx=True) is None
    assert r.set("py:new", "x", xx=True) is None
    assert r.set("py:s", "world", get=True) == b"hello"
    assert r.get("py:s") == b"world"
    assert r.append("py:s", "!") == 6
    assert r.getdel("py:s") == b"world!"
    assert r.exists("py:s") == 0


def test_ttl(r):
    r.set("py:ex", "v", ex=100)
    assert 98 <= r.ttl("py:ex") <= 100
    r.set("py:px", "v", px=100_000)
    assert 97_000 < r.pttl("py:px") <= 100_000
    assert r.persist("py:px") is True
    assert r.ttl("py:px") == -1
    assert r.ttl("py:missing") == -2
    # Expiry is real: the key is gone once its time has passed.
    r.set("py:short", "v", px=50)
    time.sleep(0.2)
    assert r.get("py:short") is None
    assert r.exists("py:short") == 0
    # EXPIRE on a key without a TTL, and SET without KEEPTTL clears a TTL.
    r.set("py:e", "v")
    assert r.expire("py:e", 50) is True
    assert 48 <= r.ttl("py:e") <= 50
    r.set("py:e", "v2")
    assert r.ttl("py:e") == -1


def test_counters(r):
    assert r.incr("py:n") == 1
    assert r.incrby("py:n", 10) == 11
    assert r.decr("py:n") == 10
    assert r.decrby("py:n", 4) == 6
    assert r.incrbyfloat("py:n", 0.5) == 6.5
    assert r.get("py:n") == b"6.5"


def test_mset_mget_del(r):
    assert r.mset({"py:a": "1", "py:b": "2"}) is True
    assert r.mget("py:a", "py:missing", "py:b") == [b"1", None, b"2"]
    assert r.msetnx({"py:a": "x", "py:c": "3"}) is False  # py:a exists: nothing set
    assert r.get("py:c") is None
    assert r.delete("py:a", "py:b", "py:missing") == 2
    assert r.dbsize() == 0


def test_pipeline_without_transaction(r):
    # 1000 commands sent before any reply is read; replies come back in order.
    with r.pipeline(transaction=False) as p:
        for i in range(1000):
            p.set(f"py:p:{i}", i)
        assert p.execute() == [True] * 1000
    with r.pipeline(transaction=False) as p:
        for i in range(1000):
            p.get(f"py:p:{i}")
        assert p.execute() == [str(i).encode() for i in range(1000)]
    assert r.dbsize() == 1000


def test_pipeline_transaction(r):
    # MULTI ... EXEC: the replies of the queued commands, as one list.
    with r.pipeline(transaction=True) as p:
        p.set("py:tx", 1).incr("py:tx").incrby("py:tx", 5).get("py:tx")
        assert p.execute() == [True, 2, 7, b"7"]


def test_watch_conflict(r, other):
    r.set("py:w", "0")
    with r.pipeline() as p:
        p.watch("py:w")
        assert p.get("py:w") == b"0"  # immediate mode while watching
        other.set("py:w", "changed")  # another client touches the watched key
        p.multi()
        p.set("py:w", "mine")
        with pytest.raises(redis.WatchError):
            p.execute()
    assert r.get("py:w") == b"changed"
    # Without interference the same sequence commits.
    with r.pipeline() as p:
        p.watch("py:w")
        p.multi()
        p.set("py:w", "mine")
        assert p.execute() == [True]
    assert r.get("py:w") == b"mine"


def _next_message(ps, timeout=5.0):
    # get_message returns None on timeout and for skipped subscribe replies.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = ps.get_message(ignore_subscribe_messages=True, timeout=deadline - time.monotonic())
        if m is not None:
            return m
    raise AssertionError("no pub/sub message within %.1fs" % timeout)


def test_pubsub(r, other):
    ps = r.pubsub()
    try:
        ps.subscribe("py:chan")
        # The subscribe confirmation, so PUBLISH cannot race ahead of it.
        conf = ps.get_message(timeout=5)
        assert conf["type"] == "subscribe" and conf["channel"] == b"py:chan" and conf["data"] == 1
        assert other.publish("py:chan", "hello") == 1  # one subscriber received it
        m = _next_message(ps)
        assert (m["type"], m["channel"], m["data"]) == ("message", b"py:chan", b"hello")

        ps.psubscribe("py:news.*")
        conf = ps.get_message(timeout=5)
        assert conf["type"] == "psubscribe" and conf["data"] == 2
        assert other.publish("py:news.tech", "pattern") == 1
        m = _next_message(ps)
        assert m["type"] == "pmessage"
        assert (m["pattern"], m["channel"], m["data"]) == (b"py:news.*", b"py:news.tech", b"pattern")

        ps.unsubscribe("py:chan")
        _ = ps.get_message(timeout=5)  # unsubscribe confirmation
        assert other.publish("py:chan", "nobody") == 0
    finally:
        ps.close()


def test_errors(r):
    r.set("py:s", "abc")
    with pytest.raises(redis.ResponseError) as e:
        r.incr("py:s")
    assert str(e.value).startswith("value is not an integer")
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("NOSUCH", "a")
    assert str(e.value).startswith("unknown command 'NOSUCH'")
    # A wrong argument count is an error reply, and the connection stays usable.
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("GET")
    assert "wrong number of arguments" in str(e.value)
    assert r.get("py:s") == b"abc"


def test_resp3(r):
    r3 = connect(protocol=3)
    try:
        hello = r3.execute_command("HELLO", 3)
        assert hello[b"proto"] == 3  # RESP3 HELLO replies with a map
        assert r3.set("py:r3", "v3") is True
        assert r3.get("py:r3") == b"v3"
        assert r3.get("py:missing") is None  # RESP3 null
        assert r3.incr("py:r3n") == 1
        assert r3.mget("py:r3", "py:missing") == [b"v3", None]
    finally:
        r3.close()


@dbkv_only
def test_dbkv_lock(r):
    key = f"py:lock:{uuid.uuid4().hex}"
    t1 = r.execute_command("DBKV.LOCK", key, "alice", 10_000)
    assert isinstance(t1, int)
    assert r.execute_command("DBKV.LOCK", key, "bob", 10_000) is None
    t2 = r.execute_command("DBKV.LOCK", key, "alice", 10_000)  # refresh: a new, larger token
    assert isinstance(t2, int) and t2 > t1
    assert r.execute_command("DBKV.EXTENDLOCK", key, "bob", 10_000) == -1
    assert r.execute_command("DBKV.EXTENDLOCK", key, "alice", 10_000) == 1
    assert r.execute_command("DBKV.UNLOCK", key, "bob") == -1
    assert r.execute_command("DBKV.UNLOCK", key, "alice") == 1
    assert r.execute_command("DBKV.UNLOCK", key, "alice") == 0
    assert r.execute_command("DBKV.EXTENDLOCK", key, "alice", 10_000) == 0
    t3 = r.execute_command("DBKV.LOCK", key, "bob", 100)
    assert isinstance(t3, int) and t3 > t2
    time.sleep(0.3)  # bob's lock lapses
    assert r.execute_command("DBKV.UNLOCK", key, "bob") == 0


@dbkv_only
def test_dbkv_lock_contention(r):
    # Clients race for one lock: every grant's token is unique, and each
    # client sees its own tokens strictly increase, so a stale holder can be
    # fenced off by comparing tokens.
    key = f"py:lock:{uuid.uuid4().hex}"
    per_worker, errors = {}, []

    def worker(name):
        c = connect()
        mine = per_worker.setdefault(name, [])
        try:
            for _ in range(20):
                t = c.execute_command("DBKV.LOCK", key, name, 5_000)
                if t is not None:
                    mine.append(t)
                    assert c.execute_command("DBKV.UNLOCK", key, name) == 1
        except Exception as exc:  # surfaced below; a thread's assert is lost otherwise
            errors.append(exc)
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    tokens = [t for ts in per_worker.values() for t in ts]
    assert tokens, "no worker ever got the lock"
    assert len(set(tokens)) == len(tokens)
    for ts in per_worker.values():
        assert ts == sorted(ts)


@dbkv_only
def test_dbkv_sync(r):
    r.set("py:durable", "yes")
    assert r.execute_command("DBKV.SYNC") == b"OK"
    assert r.get("py:durable") == b"yes"
