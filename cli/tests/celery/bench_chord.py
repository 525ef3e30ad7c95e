"""Chord benchmark: Celery's redis:// result backend on dbkv serve and on
redis-server, in the same run, with the same workers and broker.

    bash cli/tests/celery/run.sh --bench [--tasks 1000] [--runs 3] [--sync always,interval]

(run.sh builds the venv; this file needs it.) For each --sync mode it starts
dbkv serve --sync MODE and redis-server with the matching appendfsync
(always / everysec / no), each with its own prefork worker (concurrency 2)
and filesystem broker folder, then times, alternating between the two,
`--runs` chords of `--tasks` add(i, i) and a tsum callback:

  total  apply_async() until the callback's result is ready
  tail   the last header result stored (its date_done) until the callback's
         result is stored: the chord's completion (ZRANGE of all parts,
         decode, callback sent through the broker, callback run)

and prints the medians and the dbkv/redis ratio as a markdown table. The
broker and the workers are the same for both, so the ratio understates the
backend's own difference; it is the figure a Celery user would see.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def client_main(n):
    """One client per target (the app is configured from the environment at
    import): a warm-up chord, then one timed chord per 'run' line on stdin."""
    import tasks
    from celery import chord
    from datetime import datetime

    def one(n):
        t0 = time.monotonic()
        res = chord(tasks.add.s(i, i) for i in range(n))(tasks.tsum.s())
        value = res.get(timeout=600)
        total = time.monotonic() - t0
        assert value == n * (n - 1), value
        ids = [r.id for r in res.parent.results]
        client = tasks.app.backend.client
        metas = client.mget([f"celery-task-meta-{i}" for i in ids])
        last_part = max(datetime.fromisoformat(json.loads(m)["date_done"]) for m in metas)
        cb_done = datetime.fromisoformat(json.loads(client.get(f"celery-task-meta-{res.id}"))["date_done"])
        return total, (cb_done - last_part).total_seconds()

    one(50)  # warm-up: pool processes forked, connections made
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        total, tail = one(n)
        print(json.dumps({"total": total, "tail": tail}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sync", default="always",
                    help="comma-separated dbkv --sync modes (always, interval, none)")
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        return client_main(args.tasks)

    from harness import Server, Worker, free_port

    base = tempfile.mkdtemp(prefix="bench-", dir=os.environ.get("DBKV_CELERY_TMP"))
    rows = []
    started = []
    try:
        for sync in args.sync.split(","):
            setups = {}
            for target in ("dbkv", "redis"):
                d = os.path.join(base, f"{sync}-{target}")
                broker = os.path.join(d, "broker")
                for sub in ("queue", "processed", "control"):
                    os.makedirs(os.path.join(broker, sub))
                server = Server(target, free_port(), os.path.join(d, "data"),
                                os.path.join(d, "server.log"), sync=sync)
                server.start()
                started.append(server)
                env = {"DBKV_CELERY_BACKEND": server.url, "DBKV_CELERY_BROKER": broker,
                       "DBKV_CELERY_MARKS": os.path.join(d, "marks")}
                worker = Worker(env, os.path.join(d, "worker.log"), os.path.join(d, "work"),
                                name=f"bench-{target}")
                worker.start()
                started.append(worker)
                client = subprocess.Popen(
                    [sys.executable, __file__, "--client", "--tasks", str(args.tasks)],
                    env=dict(os.environ, PYTHONPATH=HERE, PYTHONDONTWRITEBYTECODE="1", **env),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=d)
                started.append(client)
                if client.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"{target} client failed to warm up")
                setups[target] = (server, worker, client, [])
            for run in range(args.runs):
                # Alternate, so that drift on a shared machine hits both alike.
                for target in (("dbkv", "redis") if run % 2 == 0 else ("redis", "dbkv")):
                    client, results = setups[target][2], setups[target][3]
                    client.stdin.write("run\n")
                    client.stdin.flush()
                    line = client.stdout.readline()
                    if not line:
                        raise RuntimeError(f"{target} client died")
                    results.append(json.loads(line))
                    print(f"  sync={sync} {target} run {run + 1}: total {results[-1]['total']:.2f} s, "
                          f"tail {results[-1]['tail'] * 1000:.0f} ms", file=sys.stderr, flush=True)
            for target in ("dbkv", "redis"):
                results = setups[target][3]
                rows.append((sync, target, [r["total"] for r in results],
                             statistics.median(r["total"] for r in results),
                             statistics.median(r["tail"] for r in results)))
            for server, worker, client, _ in setups.values():
                client.stdin.close()
                client.wait(30)
                worker.stop()
                server.stop()
    finally:
        for p in reversed(started):
            try:
                if isinstance(p, subprocess.Popen):
                    p.kill()
                    p.wait()
                else:
                    p.stop()
            except Exception as exc:  # keep stopping the others
                print(f"bench: stopping {p}: {exc}", file=sys.stderr)
        subprocess.run(["rm", "-rf", base])

    redis_ver = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2].removeprefix("v=")
    print(f"\nChord of {args.tasks} add() + tsum callback, {args.runs} runs each, "
          f"worker prefork concurrency 2, filesystem broker; redis-server {redis_ver}.\n")
    print("| sync | backend | runs, total (s) | median total (s) | median tail (ms) |")
    print("|---|---|---|---:|---:|")
    for sync, target, totals, mt, mtail in rows:
        name = f"dbkv serve --sync {sync}" if target == "dbkv" else \
            f"redis-server appendfsync {({'always': 'always', 'interval': 'everysec', 'none': 'no'})[sync]}"
        print(f"| {sync} | {name} | {', '.join(f'{t:.2f}' for t in totals)} | {mt:.2f} | {mtail * 1000:.0f} |")
    print()
    by = {(s, t): (mt, mtail) for s, t, _, mt, mtail in rows}
    for sync in args.sync.split(","):
        d, r = by[(sync, "dbkv")], by[(sync, "redis")]
        print(f"- sync {sync}: dbkv/redis median total {d[0] / r[0]:.2f}x, tail {d[1] / r[1]:.2f}x")


if __name__ == "__main__":
    main()
