"""Celery app and tasks for the dbkv result-backend suite (cli/tests/celery).

The app is configured from the environment so that the test process and
the worker processes it starts build the same app:

  DBKV_CELERY_BACKEND   result backend URL, e.g. redis://127.0.0.1:PORT/0
  DBKV_CELERY_BROKER    folder of the filesystem:// broker (queue/,
                        processed/ and control/ live under it)
  DBKV_CELERY_ORDERED   "1" (default): result_chord_ordered=True, the chord
                        header results go to a sorted set (ZADD/ZCOUNT/ZRANGE);
                        "0": to a list (RPUSH/LLEN/LRANGE)
  DBKV_CELERY_MARKS     file that the chord callback `record` appends one
                        line to each time it runs (the crash tests count them)
  DBKV_CELERY_RETRYING  "1": RetryingRedisBackend below instead of the stock
                        redis:// backend (the server-crash test needs it)

The broker is kombu's filesystem transport (with the atomic write below) so
that the only network service in play is the result backend under test.
"""
import os
import time
import uuid

import redis
from celery import Celery
from celery.backends.redis import RedisBackend
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

BACKEND = os.environ.get("DBKV_CELERY_BACKEND", "redis://127.0.0.1:6379/0")
RETRYING = os.environ.get("DBKV_CELERY_RETRYING", "0") == "1"
BROKER_DIR = os.environ.get("DBKV_CELERY_BROKER", "/tmp/dbkv-celery-broker")
ORDERED = os.environ.get("DBKV_CELERY_ORDERED", "1") == "1"
MARKS = os.environ.get("DBKV_CELERY_MARKS", os.path.join(BROKER_DIR, "marks"))

# Seconds a finished task's result key lives (SETEX); the suite checks the TTL.
RESULT_EXPIRES = 600

QUEUE_DIR = os.path.join(BROKER_DIR, "queue")
PROCESSED_DIR = os.path.join(BROKER_DIR, "processed")
CONTROL_DIR = os.path.join(BROKER_DIR, "control")

class AtomicChannel(filesystem.Channel):
    """kombu's filesystem channel writes a message in place (open, then
    write), and a consumer listing the folder in between takes an empty
    file, fails to parse it and the worker stops with "Unrecoverable error:
    JSONDecodeError" (seen here about once in ten runs; kombu issue 1551).
    This one writes to a name the consumer skips and renames it into place."""

    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(time.monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        tmp = os.path.join(self.data_folder_out, f".put-{uuid.uuid4().hex}")
        with open(tmp, "wb") as f:
            f.write(str_to_bytes(dumps(payload)))
        os.rename(tmp, os.path.join(self.data_folder_out, name))


class AtomicFilesystemTransport(filesystem.Transport):
    Channel = AtomicChannel


class RetryingRedisBackend(RedisBackend):
    """Celery's redis backend, sending the same commands, with redis-py told
    to retry connection errors (backoff 50 ms doubling to 500 ms, 40 tries,
    about 18 s) on every command and pipeline, and on (re)connecting.

    Why: result_backend_always_retry covers storing and reading a result,
    but not a chord part. on_chord_part_return runs right after the result
    is stored, and its MULTI ZADD ZCOUNT GET GET EXPIRE... EXEC is sent once:
    if the server is down at that moment the part is lost (the chord never
    completes) or the task is failed with ConnectionError (the chord fails)
    -- celery issue 3363; seen here with dbkv and it is the same with Redis.
    Retrying that transaction is safe on the ordered (zset) path: ZADD of
    the same member is idempotent, so a retry after an EXEC whose reply was
    lost counts nothing twice. It is NOT safe with result_chord_ordered=False
    (a retried RPUSH pushes the part twice).

    Selected as result_backend = "tasks:RetryingRedisBackend+redis://...".
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connparams.update(
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.025), 40),
            # OSError: a refused connect is retried as well.
            retry_on_error=[redis.ConnectionError, redis.TimeoutError, OSError],
        )


app = Celery("tasks")
app.conf.update(
    broker_url="filesystem://",
    broker_transport="tasks:AtomicFilesystemTransport",
    broker_transport_options={
        # Producer and consumer share one folder: that folder is the queue.
        "data_folder_in": QUEUE_DIR,
        "data_folder_out": QUEUE_DIR,
        # Keep every consumed message: the crash test redelivers the ones a
        # SIGKILLed worker had taken (this transport keeps unacked messages
        # in the worker's memory only, see test_celery.py).
        "store_processed": True,
        "processed_folder": PROCESSED_DIR,
        "control_folder": CONTROL_DIR,
        # The default 1 s poll of an empty queue would dominate every test.
        "polling_interval": 0.05,
    },
    result_backend=("tasks:RetryingRedisBackend+" if RETRYING else "") + BACKEND,
    result_expires=RESULT_EXPIRES,
    result_backend_transport_options={"result_chord_ordered": ORDERED},
    # Backend outages (the dbkv kill -9 test): store_result and
    # get_task_meta retry connection errors with exponential backoff
    # instead of failing the task; the delay is capped at 500 ms so a
    # restarted server is picked up quickly. `ensure()` (SET of the chord
    # size, the result consumer's resubscribe) retries by retry_policy.
    result_backend_always_retry=True,
    result_backend_max_retries=60,
    result_backend_base_sleep_between_retries_ms=50,
    result_backend_max_sleep_between_retries_ms=500,
    # A pooled connection whose server went away with a FIN or RST is
    # reconnected by redis-py when it is next taken from the pool; one to a
    # server that vanished silently (half-open) would not be: connections
    # idle for over 5 s are PINGed before use, and no read waits past 30 s.
    redis_backend_health_check_interval=5,
    redis_socket_connect_timeout=5,
    redis_socket_timeout=30,
    # At-least-once delivery: ack after the task ran, and redeliver a task
    # whose pool process died.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # Celery's default, spelled out: with 1 (as many messages in flight as
    # pool processes) the worker's blocking loop, which this transport
    # gets, was seen idling up to 2 s between batches (a 20 x 0.2 s group
    # took 18 s instead of 2 s). So a killed worker holds up to 8 messages.
    worker_prefetch_multiplier=4,
    # How long the worker waits for a result from a pool process that died
    # before it raises WorkerLostError (and so requeues): 10 s by default.
    worker_lost_wait=1.0,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
)


class TaskBoom(Exception):
    """Raised by `fail`: the client must get this type back, not a generic one."""


@app.task
def add(x, y):
    return x + y


@app.task
def slow_add(x, y, delay):
    time.sleep(delay)
    return x + y


# How long the first run of `stall_first_add` sleeps: far longer than the
# crash test takes to kill it, so that a run nobody killed holds the chord
# back and the test times out instead of passing.
STALL = 300


@app.task
def stall_first_add(x, y, delay, runs):
    """slow_add for the pool-process crash test. Each run first appends its
    pid to the file `runs`, one line per run; the first run then sleeps STALL
    seconds, so that the test can SIGKILL its pool process knowing that it is
    mid-task, and a later run (the redelivered message) takes `delay`."""
    first = not os.path.exists(runs)
    with open(runs, "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
        f.flush()
        os.fsync(f.fileno())
    time.sleep(STALL if first else delay)
    return x + y


@app.task
def fail(message):
    raise TaskBoom(message)


@app.task
def tsum(values):
    return sum(values)


@app.task
def record(values, tag):
    """Chord callback that leaves evidence of every run outside the backend:
    one line "TAG SUM COUNT PID" appended to DBKV_CELERY_MARKS. Returns the
    header results as it got them."""
    with open(MARKS, "a", encoding="utf-8") as f:
        f.write(f"{tag} {sum(values)} {len(values)} {os.getpid()}\n")
        f.flush()
        os.fsync(f.fileno())
    return values
