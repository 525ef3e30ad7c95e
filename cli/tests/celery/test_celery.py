"""Celery's redis:// result backend, end to end, on `dbkv serve`.

run.sh gives DBKV_CELERY_TARGET (dbkv or redis), DBKV_CELERY_PORT and
DBKV_CELERY_TMP; this module starts the server there (with --sync always and
a data dir that outlives a restart), and Celery workers (prefork,
concurrency 2) over kombu's filesystem:// broker, so the result backend is
the only network service in play. The same tests run against redis-server
with DBKV_CELERY_TARGET=redis, which is what keeps them honest.

What each Celery operation sends (celery/backends/redis.py 5.5, and seen
with MONITOR on redis-server; dbkv has no MONITOR):
  store a result     MULTI SETEX celery-task-meta-<id> <result_expires> ...
                     PUBLISH celery-task-meta-<id> ... EXEC
  wait for a result  SUBSCRIBE / UNSUBSCRIBE celery-task-meta-<id>, GET
                     (MGET for a group)
  forget             DEL celery-task-meta-<id>
  chord size         MULTI SETEX celery-taskset-meta-<gid>.s ... PUBLISH EXEC
  chord part done    MULTI ZADD <gid>.j {part: group_index} ZCOUNT -inf +inf
                     (result_chord_ordered=False: RPUSH <gid>.j part, LLEN)
                     GET <gid>.t GET <gid>.s EXPIRE x3 EXEC
  chord complete     ZRANGE <gid>.j 0 -1 (LRANGE), then DEL .j .t .s
  (and PING: redis_backend_health_check_interval)
where <gid>.j is celery-taskset-meta-<gid>.j.
"""
import gc
import json
import os
import signal
import time
import uuid

import pytest
import redis

TARGET = os.environ.get("DBKV_CELERY_TARGET", "dbkv")
TMP = os.environ["DBKV_CELERY_TMP"]
PORT = int(os.environ["DBKV_CELERY_PORT"])
BROKER = os.path.join(TMP, "broker")
MARKS = os.path.join(TMP, "marks")

os.environ.update(
    DBKV_CELERY_BACKEND=f"redis://127.0.0.1:{PORT}/0",
    DBKV_CELERY_BROKER=BROKER,
    DBKV_CELERY_MARKS=MARKS,
)
for d in ("queue", "processed", "control"):
    os.makedirs(os.path.join(BROKER, d), exist_ok=True)

import tasks  # noqa: E402  (reads the environment above)
from celery import chord, group  # noqa: E402
from harness import Server, Worker, message_task_id, redeliver, tail  # noqa: E402

WORKER_LOG = os.path.join(TMP, "worker.log")
SERVER_LOG = os.path.join(TMP, "server.log")


def meta_key(task_id):
    return f"celery-task-meta-{task_id}"


def chord_key(group_id, suffix):
    return f"celery-taskset-meta-{group_id}{suffix}"


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n"
                                 f"---- worker log ----\n{tail(WORKER_LOG)}"
                                 f"---- server log ----\n{tail(SERVER_LOG, 15)}")
        time.sleep(0.02)


def marks(tag):
    """The lines the `record` callback wrote for this chord: one per run."""
    try:
        with open(MARKS, encoding="utf-8") as f:
            return [line.split() for line in f if line.startswith(tag + " ")]
    except FileNotFoundError:
        return []


def done_count(client, task_ids):
    """How many of these tasks have a stored result (multi-key EXISTS)."""
    try:
        return client.exists(*[meta_key(t) for t in task_ids])
    except redis.ConnectionError:
        return 0


# --------------------------------------------------------------------------
# Fixtures: one server for the session; one worker per test class, so that
# never two workers with different settings consume the same queue.

def release_client():
    """Let go of the test process's result subscriptions while the server is
    still up: an AsyncResult collected later unsubscribes in __del__, and
    against a stopped server Celery would retry that for a long time."""
    gc.collect()
    consumer = tasks.app.backend.result_consumer
    consumer.stop()
    consumer._pubsub = None  # cancel_for() then has nothing to unsubscribe


@pytest.fixture(scope="session")
def server():
    s = Server(TARGET, PORT, os.path.join(TMP, "data"), SERVER_LOG, sync="always")
    s.start()
    yield s
    release_client()
    s.stop()


@pytest.fixture(scope="session")
def rc(server):
    c = redis.Redis(port=PORT, socket_timeout=10, decode_responses=True,
                    retry_on_timeout=False)
    yield c
    c.close()


def start_worker(ordered, name, retrying=False):
    w = Worker({"DBKV_CELERY_ORDERED": "1" if ordered else "0",
                "DBKV_CELERY_RETRYING": "1" if retrying else "0"},
               WORKER_LOG, os.path.join(TMP, "work"), name=name)
    w.start()
    return w


@pytest.fixture(scope="class")
def ordered_worker(server):
    w = start_worker(True, "ordered")
    yield w
    w.stop()


@pytest.fixture(scope="class")
def list_worker(server):
    w = start_worker(False, "list")
    yield w
    w.stop()


def slow_chord(n, delay, tag):
    """A chord whose header is n slow_add(i, i) and whose callback is
    record(tag); returns (AsyncResult of the callback, header task ids)."""
    header = [tasks.slow_add.s(i, i, delay) for i in range(n)]
    res = chord(header)(tasks.record.s(tag))
    return res, [r.id for r in res.parent.results]


def group_id_of(res):
    return res.parent.id


# --------------------------------------------------------------------------

def chord_kind(rc, gid):
    """The type of a running chord's .j key, once Celery has created it."""
    key = chord_key(gid, ".j")
    return wait_for(lambda: rc.type(key) if rc.exists(key) else None, 30, "the chord's .j key")


@pytest.mark.usefixtures("ordered_worker")
class TestResults:
    def test_add(self):
        r = tasks.add.delay(2, 3)
        assert r.get(timeout=30) == 5
        assert r.state == "SUCCESS"

    def test_failure_reraises_task_exception(self, rc):
        r = tasks.fail.delay("boom 42")
        with pytest.raises(tasks.TaskBoom, match="^boom 42$") as ei:
            r.get(timeout=30)
        assert ei.type is tasks.TaskBoom
        assert r.state == "FAILURE"
        assert isinstance(r.result, tasks.TaskBoom)
        meta = json.loads(rc.get(meta_key(r.id)))
        assert meta["status"] == "FAILURE"
        assert meta["result"]["exc_type"] == "TaskBoom"
        assert "TaskBoom: boom 42" in meta["traceback"]

    def test_result_expires_sets_ttl(self, rc):
        r = tasks.add.delay(20, 22)
        assert r.get(timeout=30) == 42
        ttl = rc.ttl(meta_key(r.id))
        assert 0 < ttl <= tasks.RESULT_EXPIRES, ttl
        meta = json.loads(rc.get(meta_key(r.id)))
        assert (meta["status"], meta["result"], meta["task_id"]) == ("SUCCESS", 42, r.id)

    def test_group_of_50_in_order(self):
        # Later members take less time, so completion order differs from
        # submission order; the results must come back in submission order.
        g = group(tasks.slow_add.s(i, 1, (49 - i) % 5 * 0.004) for i in range(50))
        assert g.apply_async().get(timeout=60) == [i + 1 for i in range(50)]

    def test_forget_deletes_result_key(self, rc):
        r = tasks.add.delay(4, 4)
        assert r.get(timeout=30) == 8
        assert rc.exists(meta_key(r.id)) == 1
        r.forget()
        assert rc.exists(meta_key(r.id)) == 0


@pytest.mark.usefixtures("ordered_worker")
class TestChordOrdered:
    """result_chord_ordered=True (Celery 5's default): a sorted set."""

    def test_chord_of_20(self, rc):
        # Even members sleep, odd ones do not: with two processes parts land
        # out of order, and ZRANGE by score (the group index) must still hand
        # the callback the header order.
        header = [tasks.slow_add.s(i, i, 0.03 if i % 2 == 0 else 0) for i in range(20)]
        tag = uuid.uuid4().hex
        res = chord(header)(tasks.record.s(tag))
        gid = group_id_of(res)
        assert res.get(timeout=60) == [2 * i for i in range(20)]
        # Celery deletes the chord's keys once the callback is sent.
        assert rc.exists(chord_key(gid, ".j"), chord_key(gid, ".s"), chord_key(gid, ".t")) == 0
        assert len(marks(tag)) == 1

    def test_chord_keys_are_a_zset(self, rc):
        tag = uuid.uuid4().hex
        res, _ = slow_chord(20, 0.05, tag)
        gid = group_id_of(res)
        kind = chord_kind(rc, gid)
        assert kind == "zset"
        assert 0 < rc.ttl(chord_key(gid, ".j")) <= tasks.RESULT_EXPIRES
        assert rc.get(chord_key(gid, ".s")) == "20"
        assert sum(res.get(timeout=60)) == 380

    def test_redelivered_header_task_is_counted_once(self, rc):
        """At-least-once delivery runs a header task twice; on this path the
        second ZADD of the same member changes nothing, so the count still
        reaches 20 only when all 20 parts are in."""
        tag = uuid.uuid4().hex
        res, ids = slow_chord(20, 0.1, tag)
        wait_for(lambda: done_count(rc, ids[:1]) == 1, 30, "the first header task")
        assert redeliver(os.path.join(BROKER, "processed"), os.path.join(BROKER, "queue"), ids[:1]) == 1
        assert res.get(timeout=60) == [2 * i for i in range(20)]
        assert len(marks(tag)) == 1


@pytest.mark.usefixtures("list_worker")
class TestChordList:
    """result_chord_ordered=False: a list."""

    def test_chord_of_20(self, rc):
        tag = uuid.uuid4().hex
        res, _ = slow_chord(20, 0.05, tag)
        gid = group_id_of(res)
        kind = chord_kind(rc, gid)
        assert kind == "list"
        got = res.get(timeout=60)
        # Completion order, not header order, on this path.
        assert sorted(got) == [2 * i for i in range(20)]
        assert rc.exists(chord_key(gid, ".j"), chord_key(gid, ".s"), chord_key(gid, ".t")) == 0
        assert len(marks(tag)) == 1

    def test_redelivered_header_task_is_counted_twice(self, rc):
        """The finding for this path, pinned: RPUSH is not idempotent, so a
        header task run twice pushes its result twice, LLEN reaches the chord
        size one part early, and the callback runs once, too soon, with that
        result twice and the last part's missing. Redis does the same (run
        with DBKV_CELERY_TARGET=redis); a server-side fix is impossible."""
        tag = uuid.uuid4().hex
        res, ids = slow_chord(20, 0.1, tag)
        wait_for(lambda: done_count(rc, ids[:1]) == 1, 30, "the first header task")
        assert redeliver(os.path.join(BROKER, "processed"), os.path.join(BROKER, "queue"), ids[:1]) == 1
        got = res.get(timeout=60)
        assert len(got) == 20
        assert got.count(0) == 2, got  # slow_add(0, 0) twice
        assert sorted(got) != [2 * i for i in range(20)]
        # The late part finds the chord's keys gone and sends nothing more.
        wait_for(lambda: done_count(rc, ids) == 20, 30, "all header tasks")
        time.sleep(0.5)
        assert len(marks(tag)) == 1


# --------------------------------------------------------------------------
# Crashes, on the ordered path. Each test starts its own worker(s).

class TestCrash:
    N, DELAY = 20, 0.2
    VICTIM = 5  # header task whose pool process test_pool_process_killed kills
    EXPECTED = [2 * i for i in range(20)]

    def wait_callback_once(self, res, tag, ids, rc):
        wait_for(lambda: marks(tag), 90, "the chord callback")
        assert res.get(timeout=60) == self.EXPECTED
        # Give a duplicate callback time to show: every header task and any
        # redelivered copy has finished once the queue folder is empty.
        wait_for(lambda: not [n for n in os.listdir(os.path.join(BROKER, "queue")) if n.endswith(".msg")],
                 30, "an empty queue")
        time.sleep(1.0)
        lines = marks(tag)
        assert len(lines) == 1, lines
        assert lines[0][1:3] == [str(sum(self.EXPECTED)), str(self.N)], lines

    def test_pool_process_killed(self, server, rc):
        """SIGKILL one pool process mid-task: the worker's main process sees
        WorkerLostError and, with acks_late and task_reject_on_worker_lost,
        requeues the message; the task runs again, in another process, and
        the chord callback runs once, with every part.

        The process killed is the one running header task VICTIM
        (tasks.stall_first_add), whose first run writes its pid and then
        sleeps: it is known to be mid-task. Killing whichever pool process
        happens to be first, as this test once did, can hit one between two
        tasks, and that wedges the pool for good. This transport has no
        async I/O, so Celery runs billiard's threaded pool, whose processes
        share one job pipe and one result pipe, each behind a semaphore: an
        idle process holds the job pipe's while it waits for the next job,
        and each holds the result pipe's while it sends "started" or a
        result. Killed holding one, the semaphore stays taken, and every
        other pool process, the replacement too, blocks on it for ever
        (python/cpython#96062 is the same with multiprocessing.Pool). Seen
        here: one kill, WorkerLostError logged, then both live pool
        processes in futex wait and no task ran again."""
        w = start_worker(True, "crash-pool")
        try:
            tag = uuid.uuid4().hex
            runs_path = os.path.join(TMP, f"runs-{tag}")
            v = self.VICTIM
            header = [tasks.slow_add.s(i, i, self.DELAY) for i in range(self.N)]
            header[v] = tasks.stall_first_add.s(v, v, self.DELAY, runs_path)
            res = chord(header)(tasks.record.s(tag))
            ids = [r.id for r in res.parent.results]

            def runs():
                try:
                    with open(runs_path, encoding="utf-8") as f:
                        return [int(line) for line in f if line.endswith("\n")]
                except FileNotFoundError:
                    return []
            victim = wait_for(runs, 30, "the first run of the victim task")[0]
            assert victim in w.pool_pids(), (victim, w.pool_pids())
            assert done_count(rc, [ids[v]]) == 0 and not marks(tag)
            log_start = os.path.getsize(WORKER_LOG)

            def job_lost():
                with open(WORKER_LOG, encoding="utf-8", errors="replace") as f:
                    f.seek(log_start)
                    log = f.read()
                return "WorkerLostError" in log and "signal 9 (SIGKILL)" in log
            os.kill(victim, signal.SIGKILL)
            # Usually 2-3 s: billiard's Supervisor thread notices the death
            # (it looks every 0.8 s) and waits worker_lost_wait (1 s) for a
            # result the process may have sent before failing the job.
            wait_for(job_lost, 30, "WorkerLostError in the worker log")
            self.wait_callback_once(res, tag, ids, rc)
            # Ran again, in another process, and only once more.
            again = runs()
            assert len(again) == 2 and again[1] != victim, (victim, again)
            # ...from the message the worker put back on the queue: the
            # transport moved two copies of it to processed/.
            processed = os.path.join(BROKER, "processed")
            copies = [n for n in os.listdir(processed)
                      if message_task_id(os.path.join(processed, n)) == ids[v]]
            assert len(copies) == 2, copies
            # And the pool replaced the dead process.
            wait_for(lambda: len(w.pool_pids()) == 2, 30, "a replacement pool process")
            assert victim not in w.pool_pids()
        finally:
            w.stop()

    def test_worker_killed_and_restarted(self, server, rc):
        """SIGKILL the whole worker (main and pool processes) mid-chord. The
        filesystem transport keeps unacknowledged messages in the worker's
        memory only, so the harness redelivers, as a broker would, every
        header message the dead worker had taken: the unacknowledged ones
        and, to exercise the ZADD dedup, the finished ones too."""
        w = start_worker(True, "crash-worker-1")
        tag = uuid.uuid4().hex
        try:
            res, ids = slow_chord(self.N, self.DELAY, tag)
            wait_for(lambda: done_count(rc, ids) >= 4, 30, "4 header tasks")
            w.kill9()
            assert not marks(tag)
            done = done_count(rc, ids)
            assert done < self.N, "the chord finished before the kill"
            n = redeliver(os.path.join(BROKER, "processed"), os.path.join(BROKER, "queue"), ids)
            assert n >= done, (n, done)
        finally:
            w.stop()
        w = start_worker(True, "crash-worker-2")
        try:
            self.wait_callback_once(res, tag, ids, rc)
        finally:
            w.stop()

    def test_server_killed_and_restarted(self, server, rc):
        """SIGKILL the server (--sync always) mid-chord and start it again on
        the same port and data dir: the chord's size and the parts stored
        before the kill must survive it, and the worker must carry on. The
        worker uses tasks.RetryingRedisBackend: with the stock backend a part
        whose result was stored just before the kill is lost or failed, as
        on Redis (see tasks.py)."""
        w = start_worker(True, "crash-server", retrying=True)
        try:
            tag = uuid.uuid4().hex
            res, ids = slow_chord(self.N, self.DELAY, tag)
            wait_for(lambda: done_count(rc, ids) >= 4, 30, "4 header tasks")
            gid = group_id_of(res)
            assert not marks(tag), "the chord finished before the kill"
            server.kill9()
            time.sleep(0.5)  # header tasks finishing now meet a dead server
            server.start()
            assert rc.get(chord_key(gid, ".s")) == str(self.N) or marks(tag)
            self.wait_callback_once(res, tag, ids, rc)
        finally:
            w.stop()
