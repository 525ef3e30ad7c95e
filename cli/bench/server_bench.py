#!/usr/bin/env python3
"""Compare `dbkv serve` with redis-server on this machine, in one run.

Every (scenario, run) pair starts a fresh server of each kind in a fresh temp
directory, dbkv and redis alternately (the order flips every run so neither
always goes first), and reports the median of each figure over --runs runs
plus the ratio dbkv/redis.  Progress goes to stderr, the report to stdout.
Stdlib only.  See README.md next to this file.
"""

import argparse
import base64
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ["p1", "p16", "durable", "memory", "lists-p1", "lists-p16", "collmem"]
SCENARIO_ALIASES = {"throughput": ["p1", "p16"], "cpu": ["p1", "p16"],
                    "collections": ["lists-p1", "lists-p16", "collmem"], "all": SCENARIOS}
# redis-benchmark's list and sorted-set tests (issue 10's performance targets).
COLL_TESTS = "lpush,rpush,lpop,rpop,lrange_100,zadd"
SERVERS = ["dbkv", "redis"]
CSV_HEADER = ["test", "rps", "avg_latency_ms", "min_latency_ms", "p50_latency_ms",
              "p95_latency_ms", "p99_latency_ms", "max_latency_ms"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
VALUE_SIZE = 200


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def q(cmd):
    return " ".join(shlex.quote(str(c)) for c in cmd)


# ---------------------------------------------------------------- /proc


def proc_cpu(pid):
    """(utime+stime, cutime+cstime) of pid in seconds, all threads included."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    # comm (field 2) may contain spaces and parens: split after the last ')'.
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] is field 3 (state), so field k is rest[k - 3].
    utime, stime, cutime, cstime = (int(rest[k - 3]) for k in (14, 15, 16, 17))
    return (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK


def proc_mem(pid):
    """VmRSS and VmHWM of pid in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(val.split()[0]) * 1024
    return out["VmRSS"], out["VmHWM"]


# ---------------------------------------------------------------- servers


class Server:
    """One fresh server process in its own temp dir."""

    def __init__(self, kind, args, durable, tmp_root):
        self.kind = kind
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"bench-{kind}-", dir=tmp_root)
        if kind == "redis":
            self.cmd = ["redis-server", "--port", self.port, "--dir", self.dir,
                        "--appendonly", "yes",
                        "--appendfsync", "always" if durable else "everysec",
                        "--save", ""]
        else:
            data_dir = os.path.join(self.dir, "data")
            os.mkdir(data_dir)
            self.cmd = [args.dbkv_bin, "serve", "--port", self.port, "--data-dir", data_dir,
                        "--sync", "always" if durable else "interval"]
            if not durable and args.fsync_interval_ms is not None:
                self.cmd += ["--fsync-interval-ms", args.fsync_interval_ms]
            self.cmd += shlex.split(args.dbkv_args)
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.exit_info = None

    def start(self, timeout=30.0):
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(c) for c in self.cmd], stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode} before "
                                   f"answering PING\n  cmd: {q(self.cmd)}\n{self.log_tail()}")
            r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "PING"],
                               capture_output=True, text=True)
            if r.stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} did not answer PING within {timeout}s\n"
                           f"  cmd: {q(self.cmd)}\n{self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cli(self, *words):
        r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *words],
                           capture_output=True, text=True, timeout=60)
        return r.stdout.strip()

    def log_tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()[-n:]
            return "\n".join("  | " + l for l in lines)
        except OSError:
            return ""

    def stop(self, timeout=60.0):
        if self.proc is not None and self.exit_info is None:
            killed = False
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    log(f"WARNING: {self.kind} ignored SIGTERM for {timeout}s; SIGKILL")
                    self.proc.kill()
                    self.proc.wait()
                    killed = True
            self.exit_info = {"returncode": self.proc.returncode, "sigkilled": killed}
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- workloads


def test_name(cell):
    """redis-benchmark's test name without its remark: "LRANGE_100 (first 100
    elements)" -> "LRANGE_100"; None for the setup pass it reports before
    LRANGE ("LPUSH (needed to benchmark LRANGE)"), which is not a test."""
    if "(needed" in cell:
        return None
    return cell.split(" (")[0]


def parse_csv(lines):
    """redis-benchmark --csv lines -> {TEST: {field: float}}."""
    out = {}
    for line in lines:
        line = line.strip()
        if not line:
            continue
        cells = [c.strip().strip('"') for c in line.split(",")]
        if cells[0] == "test":
            if cells != CSV_HEADER:
                raise RuntimeError(f"unexpected redis-benchmark CSV header: {line}")
            continue
        if len(cells) != len(CSV_HEADER):
            raise RuntimeError(f"unexpected redis-benchmark CSV line: {line}")
        name = test_name(cells[0])
        if name is not None:
            out[name] = {k: float(v) for k, v in zip(CSV_HEADER[1:], cells[1:])}
    return out


def bench_cmd(port, tests, requests, pipeline, args):
    return ["redis-benchmark", "-h", "127.0.0.1", "-p", port, "-c", args.clients,
            "-d", VALUE_SIZE, "-r", args.keyspace, "-n", requests, "-t", tests,
            "-P", pipeline, "--csv"]


def run_benchmark(server, tests, requests, pipeline, args):
    """Run redis-benchmark against server; sample server CPU before it and as each
    test's CSV line arrives (stdbuf -oL makes them arrive when each test ends)."""
    cmd = [str(c) for c in bench_cmd(server.port, tests, requests, pipeline, args)]
    full = (["stdbuf", "-oL"] if args.stdbuf else []) + cmd
    cpu0, child0 = proc_cpu(server.proc.pid)
    t0 = time.monotonic()
    p = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_chunks = []
    err_thread = threading.Thread(target=lambda: err_chunks.append(p.stderr.read()), daemon=True)
    err_thread.start()
    timer = threading.Timer(args.timeout, p.kill)
    timer.start()
    lines, marks = [], []  # marks: (test, cpu at the moment its line arrived)
    try:
        for line in p.stdout:
            lines.append(line)
            name = test_name(line.split(",")[0].strip().strip('"'))
            if name and name != "test" and server.alive():
                marks.append((name, proc_cpu(server.proc.pid)[0]))
        rc = p.wait()
    finally:
        timer.cancel()
        if p.poll() is None:  # interrupted: don't leave the client behind
            p.kill()
            p.wait()
    err_thread.join()
    wall = time.monotonic() - t0
    if not server.alive():
        raise RuntimeError(f"{server.kind} died during redis-benchmark\n{server.log_tail()}")
    cpu1, child1 = proc_cpu(server.proc.pid)
    if rc != 0:
        raise RuntimeError(f"redis-benchmark exited {rc} (timeout {args.timeout}s?)\n"
                           f"  cmd: {q(cmd)}\n  stderr: {''.join(err_chunks)[-2000:]}")
    results = parse_csv(lines)
    want = [t.upper() for t in tests.split(",")]
    if sorted(results) != sorted(want):
        raise RuntimeError(f"redis-benchmark reported {sorted(results)}, expected {want}\n"
                           f"  stdout: {''.join(lines)}\n  stderr: {''.join(err_chunks)[-2000:]}")
    rec = {"cmd": q(cmd), "wall_s": wall, "requests_per_test": requests,
           "cpu_s": cpu1 - cpu0, "child_cpu_s": child1 - child0, "tests": results,
           "csv": "".join(lines)}
    # Per-test CPU split (only when the lines arrived as each test ended).
    if args.stdbuf and [m[0] for m in marks] == want:
        prev = cpu0
        for name, c in marks:
            results[name]["cpu_s"] = c - prev
            prev = c
        # CPU after the last line (tear-down) goes to the last test.
        results[want[-1]]["cpu_s"] += cpu1 - prev
    return rec


def metrics_from_bench(rec, prefix=""):
    m = {}
    n = rec["requests_per_test"]
    for name, r in rec["tests"].items():
        m[f"{prefix}{name} rps"] = r["rps"]
        m[f"{prefix}{name} p99 ms"] = r["p99_latency_ms"]
        m[f"{prefix}{name} p50 ms"] = r["p50_latency_ms"]
        if "cpu_s" in r:
            m[f"{prefix}{name} CPU s/Mreq"] = r["cpu_s"] / n * 1e6
    total = n * len(rec["tests"])
    label = "+".join(rec["tests"])
    m[f"{prefix}{label} CPU s/Mreq"] = rec["cpu_s"] / total * 1e6
    # Reaped children (redis's AOF-rewrite fork): not in the figure above.
    m[f"{prefix}{label} CPU s/Mreq incl. child processes"] = (
        (rec["cpu_s"] + rec["child_cpu_s"]) / total * 1e6)
    return m


def make_load_file(path, nkeys):
    """RESP stream of nkeys SETs: distinct keys, random printable 200-byte values."""
    log(f"generating {nkeys} SET commands into {path}")
    raw_per_value = VALUE_SIZE * 3 // 4  # base64: 150 raw bytes -> 200 chars
    with open(path, "wb") as f:
        batch = 10000
        for start in range(0, nkeys, batch):
            count = min(batch, nkeys - start)
            blob = base64.b64encode(os.urandom(raw_per_value * count))
            parts = []
            for i in range(count):
                key = b"memkey:%010d" % (start + i)
                val = blob[i * VALUE_SIZE:(i + 1) * VALUE_SIZE]
                parts.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                             % (len(key), key, len(val), val))
            f.write(b"".join(parts))


def load_pipe(server, path, nkeys, args):
    cmd = ["redis-cli", "-h", "127.0.0.1", "-p", str(server.port), "--pipe",
           "--pipe-timeout", str(args.pipe_timeout)]
    with open(path, "rb") as f:
        r = subprocess.run(cmd, stdin=f, capture_output=True, text=True, timeout=args.timeout)
    out = r.stdout + r.stderr
    # Last line: "errors: 0, replies: 1000000"
    errors = replies = None
    for line in out.splitlines():
        if line.startswith("errors:"):
            bits = dict(p.strip().split(": ") for p in line.split(","))
            errors, replies = int(bits["errors"]), int(bits["replies"])
    if r.returncode != 0 or errors != 0 or replies != nkeys:
        raise RuntimeError(f"redis-cli --pipe into {server.kind} failed (rc {r.returncode}, "
                           f"errors {errors}, replies {replies}, expected {nkeys}); "
                           f"the server must answer ECHO for --pipe, else use --loader python\n"
                           f"  cmd: {q(cmd)} < {path}\n  output: {out[-2000:]}")
    return q(cmd) + " < " + path


def load_python(server, path, nkeys, args):
    """Same stream over one socket; count +OK / -ERR replies (no ECHO needed)."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.settimeout(args.pipe_timeout)
    failure = []

    def writer():
        try:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    sock.sendall(chunk)
        except OSError as e:
            failure.append(e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    replies = errors = 0
    buf = b""
    try:
        while replies < nkeys:
            data = sock.recv(1 << 20)
            if not data:
                raise RuntimeError("connection closed")
            buf += data
            lines = buf.split(b"\r\n")
            buf = lines.pop()
            for line in lines:
                replies += 1
                if not line.startswith(b"+"):
                    errors += 1
    finally:
        t.join(timeout=5)
        sock.close()
    if errors or failure:
        raise RuntimeError(f"python loader into {server.kind}: {errors} error replies, {failure}")
    return f"(python socket loader) {path} -> 127.0.0.1:{server.port}"


# ---------------------------------------------------------------- scenarios


def scenario_throughput(server, pipeline, args):
    rec = run_benchmark(server, "set,get", args.requests, pipeline, args)
    return metrics_from_bench(rec), {"bench": rec}


def scenario_durable(server, args):
    rec = run_benchmark(server, "set", args.durable_requests, 1, args)
    return metrics_from_bench(rec), {"bench": rec}


def scenario_memory(server, args):
    rss0, _ = proc_mem(server.proc.pid)
    loader = load_pipe if args.loader == "pipe" else load_python
    t0 = time.monotonic()
    cmd = loader(server, args.load_file, args.mem_keys, args)
    load_s = time.monotonic() - t0
    time.sleep(args.settle)
    rss, hwm = proc_mem(server.proc.pid)
    reply = server.cli("DBSIZE")
    try:
        keys = int(reply.split()[-1])
        keys_src = "DBSIZE"
    except (ValueError, IndexError):
        keys, keys_src = args.mem_keys, f"loaded count (DBSIZE answered {reply!r})"
        log(f"WARNING: {server.kind} DBSIZE answered {reply!r}; using the loaded count")
    if keys != args.mem_keys:
        log(f"WARNING: {server.kind} holds {keys} keys, loaded {args.mem_keys}")
    m = {"keys": keys, "RSS MiB": rss / 2**20, "peak RSS (VmHWM) MiB": hwm / 2**20,
         "RSS bytes/key": rss / keys, "RSS bytes/key over empty server": (rss - rss0) / keys,
         "load s": load_s}
    return m, {"load_cmd": cmd, "rss_empty": rss0, "rss": rss, "hwm": hwm,
               "keys_source": keys_src}


def scenario_collections(server, pipeline, args):
    rec = run_benchmark(server, COLL_TESTS, args.requests, pipeline, args)
    return metrics_from_bench(rec), {"bench": rec}


def resp(*words):
    out = [b"*%d\r\n" % len(words)]
    for w in words:
        w = w if isinstance(w, bytes) else str(w).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(w), w))
    return b"".join(out)


def send_all(server, stream, replies):
    """Writes `stream` on one socket and reads `replies` replies (any kind)."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    t = threading.Thread(target=sock.sendall, args=(stream,), daemon=True)
    t.start()
    got, buf = 0, b""
    while got < replies:
        data = sock.recv(1 << 20)
        if not data:
            raise RuntimeError(f"{server.kind} closed the connection after {got} replies")
        buf += data
        lines = buf.split(b"\r\n")
        buf = lines.pop()
        for line in lines:
            if line.startswith(b"-"):
                raise RuntimeError(f"{server.kind}: {line.decode(errors='replace')}")
            got += 1
    t.join()
    sock.close()


def scenario_collmem(server, args):
    """Memory per element: one big list and one big sorted set (Redis: quicklist of
    listpacks, skiplist + dict), and many small ones as a Celery chord keeps
    (Redis: listpack). Elements are 16-byte strings; scores are integers."""
    n, small_keys, small_len = args.coll_elems, args.coll_small_keys, 20
    out = {}
    cases = [
        ("big list", lambda i: resp("RPUSH", "biglist", *[b"e%015d" % j for j in range(i, i + 1000)]), n // 1000, n),
        ("big zset", lambda i: resp("ZADD", "bigzset", *[x for j in range(i, i + 1000) for x in (j, b"m%015d" % j)]), n // 1000, n),
        ("small lists", lambda i: resp("RPUSH", b"sl%08d" % i, *[b"e%015d" % j for j in range(small_len)]), small_keys, small_keys * small_len),
        ("small zsets", lambda i: resp("ZADD", b"sz%08d" % i, *[x for j in range(small_len) for x in (j, b"m%015d" % j)]), small_keys, small_keys * small_len),
    ]
    for name, cmd, count, elems in cases:
        rss0, _ = proc_mem(server.proc.pid)
        step = 1000 if name.startswith("big") else 1
        send_all(server, b"".join(cmd(i * step) for i in range(count)), count)
        time.sleep(args.settle)
        rss, _ = proc_mem(server.proc.pid)
        out[f"{name}: RSS bytes/element"] = (rss - rss0) / elems
        if server.kind == "redis":
            key = {"big list": "biglist", "big zset": "bigzset", "small lists": "sl00000000", "small zsets": "sz00000000"}[name]
            usage = server.cli("MEMORY", "USAGE", key, "SAMPLES", "0")
            per = elems if name.startswith("big") else small_len
            out[f"{name}: MEMORY USAGE bytes/element"] = int(usage) / per
    return out, {}


def run_one(kind, scenario, args):
    server = Server(kind, args, scenario == "durable", args.tmp_dir)
    try:
        server.start()
        pid = server.proc.pid
        if scenario == "p1":
            m, raw = scenario_throughput(server, 1, args)
        elif scenario == "p16":
            m, raw = scenario_throughput(server, 16, args)
        elif scenario == "durable":
            m, raw = scenario_durable(server, args)
        elif scenario in ("lists-p1", "lists-p16"):
            m, raw = scenario_collections(server, 1 if scenario == "lists-p1" else 16, args)
        elif scenario == "collmem":
            m, raw = scenario_collmem(server, args)
        else:
            m, raw = scenario_memory(server, args)
    finally:
        server.stop()
    raw.update({"server_cmd": q(server.cmd), "pid": pid, "exit": server.exit_info})
    if server.exit_info and (server.exit_info["sigkilled"] or server.exit_info["returncode"] not in (0, -signal.SIGTERM)):
        log(f"WARNING: {kind} exit after SIGTERM: {server.exit_info}")
    return m, raw


# ---------------------------------------------------------------- report

# (scenario, metric) -> (target text, predicate on ratio dbkv/redis)
TARGETS = {
    ("p16", "SET rps"): ("≥ 1.3×", lambda r: r >= 1.3),
    ("p16", "GET rps"): ("≥ 1.3×", lambda r: r >= 1.3),
    ("p1", "SET rps"): ("≥ 1.0×", lambda r: r >= 1.0),
    ("p1", "GET rps"): ("≥ 1.0×", lambda r: r >= 1.0),
    ("p16", "SET p99 ms"): ("≤ 1.0×", lambda r: r <= 1.0),
    ("p16", "GET p99 ms"): ("≤ 1.0×", lambda r: r <= 1.0),
    ("p1", "SET p99 ms"): ("≤ 1.0×", lambda r: r <= 1.0),
    ("p1", "GET p99 ms"): ("≤ 1.0×", lambda r: r <= 1.0),
    ("p1", "SET+GET CPU s/Mreq"): ("≤ 0.7×", lambda r: r <= 0.7),
    ("p16", "SET+GET CPU s/Mreq"): ("≤ 0.7×", lambda r: r <= 0.7),
    ("durable", "SET rps"): ("≥ 1.5×", lambda r: r >= 1.5),
    ("memory", "RSS MiB"): ("≤ 1.0×", lambda r: r <= 1.0),
    **{(scen, f"{t.upper()} rps"): ("≥ 1.0×", lambda r: r >= 1.0)
       for scen in ("lists-p1", "lists-p16")
       for t in COLL_TESTS.split(",")},
}
SCENARIO_TITLES = {
    "p1": "SET/GET -P 1", "p16": "SET/GET -P 16",
    "durable": "durable SET (fsync always) -P 1", "memory": "memory",
    "lists-p1": "lists/zsets -P 1", "lists-p16": "lists/zsets -P 16", "collmem": "collection memory",
}


def fmt(v):
    if v is None:
        return "—"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def report(results, args, commands, header_info):
    out = []
    out.append("# dbkv serve vs redis-server")
    out.append("")
    for k, v in header_info.items():
        out.append(f"- {k}: {v}")
    out.append("")
    out.append("Commands (PORT and DIR are fresh per server start; every (scenario, run) pair "
               "starts both servers fresh, dbkv and redis alternately, order flipped each run):")
    out.append("")
    out.append("```")
    out.extend(commands)
    out.append("```")
    out.append("")
    out.append(f"Medians of {args.runs} run(s); ratio = dbkv / redis.")
    out.append("")
    out.append("| scenario | metric | dbkv median | redis median | ratio | target | met |")
    out.append("|---|---|---:|---:|---:|---|---|")
    per_run_lines = []
    for scen in args.scenario_list:
        runs = results[scen]
        metrics = []
        for kind in SERVERS:
            for r in runs[kind]:
                for name in r:
                    if name not in metrics:
                        metrics.append(name)
        for name in metrics:
            vals = {k: [r[name] for r in runs[k] if name in r] for k in SERVERS}
            med = {k: statistics.median(v) if v else None for k, v in vals.items()}
            ratio = (med["dbkv"] / med["redis"]
                     if med["dbkv"] is not None and med["redis"] else None)
            target, pred = TARGETS.get((scen, name), ("", None))
            met = "—" if pred is None or ratio is None else ("yes" if pred(ratio) else "**no**")
            if pred is None:
                met = ""
            ratio_s = "—" if ratio is None else f"{ratio:.2f}×"
            out.append(f"| {SCENARIO_TITLES[scen]} | {name} | {fmt(med['dbkv'])} | "
                       f"{fmt(med['redis'])} | {ratio_s} | {target} | {met} |")
            if args.runs > 1:
                per_run_lines.append(
                    f"- {scen} / {name}: dbkv [{', '.join(fmt(x) for x in vals['dbkv'])}]"
                    f"  redis [{', '.join(fmt(x) for x in vals['redis'])}]")
    if per_run_lines:
        out.append("")
        out.append("Per-run values (run 1, 2, ...; dbkv went first in odd runs, redis in even):")
        out.append("")
        out.extend(per_run_lines)
    out.append("")
    out.append("CPU s/Mreq = server process utime+stime (/proc/PID/stat fields 14+15, all threads) "
               "per million requests over the redis-benchmark invocation; per-test rows split it "
               "at the moment each test's CSV line appeared. The target row excludes child processes; "
               "the 'incl. child processes' row adds those the server reaped during the "
               "invocation (/proc/PID/stat fields 16+17: redis's AOF-rewrite fork).")
    return "\n".join(out)


# ---------------------------------------------------------------- main


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--runs", type=int, default=None, help="runs per scenario (default 5; 1 with --quick)")
    ap.add_argument("--requests", type=int, default=None,
                    help="redis-benchmark -n for the -P 1 / -P 16 scenarios (default 2000000)")
    ap.add_argument("--durable-requests", type=int, default=None,
                    help="-n for the durable scenario (default 200000)")
    ap.add_argument("--mem-keys", type=int, default=None,
                    help="distinct keys loaded in the memory scenario (default 1000000)")
    ap.add_argument("--scenarios", default="p1,p16,durable,memory",
                    help="comma list of p1,p16,durable,memory,lists-p1,lists-p16,collmem "
                         "(aliases: throughput, cpu, collections, all)")
    ap.add_argument("--coll-elems", type=int, default=1000000,
                    help="elements of the big list and big sorted set (collmem)")
    ap.add_argument("--coll-small-keys", type=int, default=20000,
                    help="small lists and small sorted sets of 20 elements each (collmem)")
    ap.add_argument("--dbkv-bin", default=os.environ.get("DBKV_BIN", str(REPO_ROOT / "target/release/dbkv")),
                    help="dbkv binary (env DBKV_BIN)")
    ap.add_argument("--dbkv-args", default="", help="extra arguments for `dbkv serve`")
    ap.add_argument("--fsync-interval-ms", type=int, default=None,
                    help="pass --fsync-interval-ms to dbkv in interval mode (default: the server's own, 100)")
    ap.add_argument("--clients", type=int, default=50, help="redis-benchmark -c")
    ap.add_argument("--keyspace", type=int, default=1000000, help="redis-benchmark -r")
    ap.add_argument("--loader", choices=["pipe", "python"], default="pipe",
                    help="memory scenario loader: redis-cli --pipe (needs ECHO) or a python socket")
    ap.add_argument("--pipe-timeout", type=int, default=60, help="redis-cli --pipe-timeout seconds")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds to wait after loading before reading RSS")
    ap.add_argument("--timeout", type=float, default=1800, help="per redis-benchmark / load timeout, s")
    ap.add_argument("--tmp-dir", default=None,
                    help="parent for server temp dirs (must be a real disk for the durable scenario)")
    ap.add_argument("--json", metavar="FILE", help="write raw per-run numbers to FILE")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: runs=1, requests=50000, durable 5000, mem-keys 100000")
    ap.add_argument("--no-stdbuf", dest="stdbuf", action="store_false",
                    help="don't line-buffer redis-benchmark (loses the per-test CPU split)")
    args = ap.parse_args()
    defaults = ({"runs": 1, "requests": 50000, "durable_requests": 5000, "mem_keys": 100000}
                if args.quick else
                {"runs": 5, "requests": 2000000, "durable_requests": 200000, "mem_keys": 1000000})
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    scen = []
    for s in args.scenarios.split(","):
        s = s.strip()
        for x in SCENARIO_ALIASES.get(s, [s]):
            if x not in SCENARIOS:
                ap.error(f"unknown scenario {s!r}; choose from {SCENARIOS}")
            if x not in scen:
                scen.append(x)
    args.scenario_list = scen
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    return args


def fs_type(path):
    try:
        r = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True)
        return r.stdout.strip() or "?"
    except OSError:
        return "?"


def main():
    args = parse_args()
    for tool in ("redis-server", "redis-benchmark", "redis-cli"):
        if not shutil.which(tool):
            sys.exit(f"error: {tool} not found on PATH")
    if args.stdbuf and not shutil.which("stdbuf"):
        log("stdbuf not found: per-test CPU split disabled")
        args.stdbuf = False
    args.dbkv_bin = os.path.abspath(args.dbkv_bin)
    if not os.access(args.dbkv_bin, os.X_OK):
        sys.exit(f"error: dbkv binary {args.dbkv_bin} not found or not executable "
                 f"(cargo build --release -p dbkv-cli, or --dbkv-bin / DBKV_BIN)")

    own_tmp = tempfile.mkdtemp(prefix="dbkv-server-bench-", dir=args.tmp_dir)
    args.tmp_dir = own_tmp
    tmp_fs = fs_type(own_tmp)
    if "durable" in args.scenario_list and tmp_fs in ("tmpfs", "ramfs"):
        log(f"WARNING: {own_tmp} is on {tmp_fs}: fsync is free there, durable figures are meaningless "
            "(use --tmp-dir on a real disk)")
    args.load_file = os.path.join(own_tmp, "load.resp")

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    redis_ver = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    git_rev = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip() or "?"
    header_info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs, Linux {platform.release()}",
        "redis": redis_ver,
        "dbkv binary": f"{args.dbkv_bin} (mtime {time.strftime('%Y-%m-%d %H:%M', time.localtime(os.path.getmtime(args.dbkv_bin)))}; repo HEAD {git_rev})",
        "temp dirs": f"{own_tmp} ({tmp_fs})",
        "runs": args.runs,
        "scenarios": ",".join(args.scenario_list),
    }

    sb = "stdbuf -oL " if args.stdbuf else ""
    dbkv_serve = q([args.dbkv_bin, "serve", "--port", "PORT", "--data-dir", "DIR"])
    extra = (" " + args.dbkv_args) if args.dbkv_args else ""
    fi = f" --fsync-interval-ms {args.fsync_interval_ms}" if args.fsync_interval_ms is not None else ""
    commands = [
        f"dbkv:   {dbkv_serve} --sync interval{fi}{extra}      # p1, p16, memory",
        f"dbkv:   {dbkv_serve} --sync always{extra}      # durable",
        "redis:  redis-server --port PORT --dir DIR --appendonly yes --appendfsync everysec --save ''   # p1, p16, memory",
        "redis:  redis-server --port PORT --dir DIR --appendonly yes --appendfsync always --save ''     # durable",
        "ready:  redis-cli -h 127.0.0.1 -p PORT PING  -> PONG;  stop: SIGTERM, wait",
    ]
    for scen in args.scenario_list:
        if scen in ("p1", "p16"):
            p = 1 if scen == "p1" else 16
            commands.append(f"{scen + ':':8} {sb}{q(bench_cmd('PORT', 'set,get', args.requests, p, args))}")
        elif scen == "durable":
            commands.append(f"durable: {sb}{q(bench_cmd('PORT', 'set', args.durable_requests, 1, args))}")
        elif scen in ("lists-p1", "lists-p16"):
            p = 1 if scen == "lists-p1" else 16
            commands.append(f"{scen + ':':8} {sb}{q(bench_cmd('PORT', COLL_TESTS, args.requests, p, args))}")
        elif scen == "collmem":
            commands.append(f"collmem: RPUSH biglist / ZADD bigzset {args.coll_elems} 16-byte elements "
                            f"(1000 per command), then {args.coll_small_keys} lists and sorted sets of 20; "
                            "VmRSS delta per element; redis: MEMORY USAGE key SAMPLES 0")
        elif scen == "memory":
            load = ("redis-cli -h 127.0.0.1 -p PORT --pipe --pipe-timeout "
                    f"{args.pipe_timeout} < load.resp" if args.loader == "pipe"
                    else "python socket loader < load.resp")
            commands.append(f"memory:  {load}   # load.resp = {args.mem_keys} x SET memkey:%010d "
                            f"<{VALUE_SIZE} random base64 bytes>; then sleep {args.settle}; "
                            "VmRSS from /proc/PID/status; redis-cli DBSIZE")
    commands.append("CPU:     /proc/PID/stat fields 14+15 (utime+stime) / SC_CLK_TCK, "
                    "before and after each redis-benchmark")

    results = {s: {k: [] for k in SERVERS} for s in args.scenario_list}
    raw_runs = []
    t_start = time.monotonic()
    try:
        if "memory" in args.scenario_list:
            make_load_file(args.load_file, args.mem_keys)
        for scen in args.scenario_list:
            for run in range(args.runs):
                order = SERVERS if run % 2 == 0 else SERVERS[::-1]
                for kind in order:
                    log(f"{scen} run {run + 1}/{args.runs}: {kind}")
                    m, raw = run_one(kind, scen, args)
                    results[scen][kind].append(m)
                    raw_runs.append({"scenario": scen, "run": run, "server": kind,
                                     "order": order.index(kind), "metrics": m, **raw})
                    summary = ", ".join(f"{k} {fmt(v)}" for k, v in m.items()
                                        if "rps" in k or k in ("RSS MiB", "SET+GET CPU s/Mreq"))
                    log(f"  {summary}")
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        log(f"error: {e}")
        sys.exit(1)
    finally:
        shutil.rmtree(own_tmp, ignore_errors=True)
    header_info["elapsed"] = f"{time.monotonic() - t_start:.0f} s"

    print(report(results, args, commands, header_info))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header_info, "commands": commands,
                       "args": {k: v for k, v in vars(args).items() if k != "load_file"},
                       "runs": raw_runs}, f, indent=2)
        log(f"raw numbers written to {args.json}")


if __name__ == "__main__":
    main()
