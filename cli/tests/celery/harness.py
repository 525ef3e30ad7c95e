"""Processes for the Celery suite and bench: a result-backend server (dbkv
serve or redis-server) and Celery workers, each started in a session of its
own so that a kill reaches the whole process group (a prefork worker's main
process and its pool processes alike).

Every process group started here is recorded as an empty file named by its
pid under $DBKV_CELERY_PIDS (removed again when it is stopped here), so that
run.sh's exit trap can kill whatever a crashed or interrupted run left.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def free_port():
    # Port 0 lets the kernel pick; the race until the server binds it again
    # is acceptable on a test machine.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _register(pid):
    d = os.environ.get("DBKV_CELERY_PIDS")
    if d:
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, str(pid)), "w").close()


def _unregister(pid):
    d = os.environ.get("DBKV_CELERY_PIDS")
    if d:
        try:
            os.unlink(os.path.join(d, str(pid)))
        except FileNotFoundError:
            pass


def _killpg(pid, sig):
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def proc_stat(pid):
    """(state, ppid) of a process from /proc/PID/stat, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "PID (comm) "
    return fields[0], int(fields[1])


def tail(path, n=40):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except FileNotFoundError:
        return "(no log)\n"


class Server:
    """dbkv serve (target "dbkv") or redis-server (target "redis") on a fixed
    port and data dir, so that it can be killed and started again on both.
    `sync` is dbkv's --sync; redis-server gets the matching appendfsync."""

    def __init__(self, target, port, data_dir, log_path, sync="always", bin_path=None):
        self.target, self.port, self.data_dir = target, port, data_dir
        self.log_path, self.sync = log_path, sync
        self.bin = bin_path or os.environ.get("DBKV_BIN") or os.path.join(ROOT, "target/release/dbkv")
        self.proc = None
        os.makedirs(data_dir, exist_ok=True)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self):
        if self.target == "redis":
            fsync = {"always": "always", "interval": "everysec", "none": "no"}[self.sync]
            return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                    "--dir", self.data_dir, "--save", "", "--appendonly", "yes",
                    "--appendfsync", fsync]
        return [self.bin, "serve", "--port", str(self.port), "--data-dir", self.data_dir,
                "--sync", self.sync]

    def start(self, timeout=20):
        log = open(self.log_path, "a")
        log.write(f"== {' '.join(self.command())}\n")
        log.flush()
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        _register(self.proc.pid)
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.target} exited with {self.proc.returncode} before "
                                   f"answering PING:\n{tail(self.log_path)}")
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.target} did not answer PING in {timeout} s:\n"
                                   f"{tail(self.log_path)}")
            time.sleep(0.05)
        client.close()

    def kill9(self):
        """What a power cut does to the server: SIGKILL, no shutdown path."""
        _killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        _unregister(self.proc.pid)

    def stop(self):
        """SIGTERM, then SIGKILL after 10 s; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.terminate()
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            _killpg(self.proc.pid, signal.SIGKILL)
            rc = self.proc.wait()
        _killpg(self.proc.pid, signal.SIGKILL)  # anything it left in its group
        _unregister(self.proc.pid)
        return rc


class Worker:
    """`celery -A tasks worker --pool=prefork --concurrency=2` from the venv,
    with the DBKV_CELERY_* environment given (see tasks.py)."""

    def __init__(self, env, log_path, workdir, name="w", concurrency=2):
        self.env = dict(os.environ, **env)
        # tasks.py is imported from here; no bytecode is written into the tree.
        self.env["PYTHONPATH"] = HERE
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.log_path, self.workdir = log_path, workdir
        self.name, self.concurrency = name, concurrency
        self.proc = None
        os.makedirs(workdir, exist_ok=True)

    def command(self):
        return [sys.executable, "-m", "celery", "-A", "tasks", "worker",
                "--pool=prefork", f"--concurrency={self.concurrency}", "--loglevel=INFO",
                "-n", f"{self.name}-{uuid.uuid4().hex[:8]}@%h",
                # No other workers to sync with or gossip to: start faster.
                "--without-mingle", "--without-gossip", "--without-heartbeat"]

    def start(self, timeout=60):
        log = open(self.log_path, "a")
        log.write(f"== worker {self.name}: {' '.join(self.command())}\n")
        log.flush()
        start_size = os.path.getsize(self.log_path)
        # The working directory is a temp dir: nothing lands in the source tree.
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir, env=self.env,
                                     start_new_session=True)
        log.close()
        _register(self.proc.pid)
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                f.seek(start_size)
                if " ready." in f.read():
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{tail(self.log_path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker not ready in {timeout} s:\n{tail(self.log_path)}")
            time.sleep(0.1)

    def pool_pids(self):
        """The worker's live pool processes: every process whose parent is
        the worker's main process, zombies (killed, not yet reaped) left out.
        Not /proc/PID/task/PID/children: that lists only what the main thread
        forked, and billiard forks the replacement of a dead pool process
        from its Supervisor thread."""
        pids = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = proc_stat(int(name))
                if st and st[1] == self.proc.pid and st[0] != "Z":
                    pids.append(int(name))
        return sorted(pids)

    def kill9(self):
        """SIGKILL the main process and its pool processes at once."""
        _killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        _unregister(self.proc.pid)

    def stop(self, timeout=20):
        """Warm shutdown (SIGTERM), SIGKILL to the group after `timeout` s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        _killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        _unregister(self.proc.pid)


def message_task_id(path):
    """The Celery task id carried by one filesystem-transport message file."""
    with open(path, encoding="utf-8") as f:
        return (json.load(f).get("headers") or {}).get("id")


def redeliver(processed_dir, queue_dir, task_ids):
    """Put the messages of `task_ids` that a worker consumed back on the queue,
    as a broker redelivers what a dead consumer left unacknowledged. The new
    names sort before every queued message, so they are taken first. Returns
    how many were put back."""
    wanted = set(task_ids)
    n = 0
    for name in sorted(os.listdir(processed_dir)):
        src = os.path.join(processed_dir, name)
        if message_task_id(src) not in wanted:
            continue
        queue = name.rsplit(".", 2)[-2]  # <ms>_<uuid>.<queue>.msg
        tmp = os.path.join(queue_dir, f".redeliver-{uuid.uuid4().hex}")
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            fout.write(fin.read())
        # Taken only once complete: the transport lists names ending .<queue>.msg.
        os.rename(tmp, os.path.join(queue_dir, f"0_{uuid.uuid4()}.{queue}.msg"))
        n += 1
    return n
