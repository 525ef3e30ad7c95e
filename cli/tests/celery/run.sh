#!/usr/bin/env bash
# Celery end to end: Celery's redis:// result backend on `dbkv serve`, with
# real prefork workers over kombu's filesystem:// broker (test_celery.py says
# what is tested). The test process starts and kills the server and the
# workers itself; this script makes the venv and the temp dir, and its exit
# trap stops whatever the tests left running and removes the temp dir.
#
#   bash cli/tests/celery/run.sh [pytest args...]
#   bash cli/tests/celery/run.sh --bench [bench_chord.py args...]
#
# --bench runs bench_chord.py instead (dbkv serve and redis-server, both
# needed; not part of `make test`).
#
# Environment:
#   DBKV_BIN             server binary (default target/release/dbkv)
#   DBKV_CELERY_TARGET   "redis" runs the same tests against redis-server
#                        (appendonly, appendfsync always), to prove them
#   DBKV_SKIP_CELERY=1   skip the suite (loudly)
#   DBKV_CELERY_KEEP=1   keep the temp dir (server.log, worker.log, data) for
#                        a post-mortem instead of removing it
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
cd "$root"

bench=
if [ "${1:-}" = --bench ]; then bench=1; shift; fi

if [ -z "$bench" ] && [ "${DBKV_SKIP_CELERY:-}" = 1 ]; then
  echo "##############################################################"
  echo "## SKIPPED: Celery suite (DBKV_SKIP_CELERY=1): the Celery     ##"
  echo "## result backend on dbkv serve was NOT tested in this run.   ##"
  echo "##############################################################"
  exit 0
fi

target=${DBKV_CELERY_TARGET:-dbkv}
if [ -n "$bench" ]; then
  command -v redis-server >/dev/null || { echo "celery/run.sh: --bench needs redis-server (apt-get install redis-server)" >&2; exit 1; }
  target=dbkv
fi
case "$target" in
  dbkv)
    bin=${DBKV_BIN:-target/release/dbkv}
    if [ ! -x "$bin" ]; then
      echo "celery/run.sh: server binary '$bin' not found; build it with: cargo build --release -p dbkv-cli" >&2
      exit 1
    fi
    DBKV_BIN=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin"); export DBKV_BIN ;;
  redis)
    command -v redis-server >/dev/null || { echo "celery/run.sh: redis-server not found (apt-get install redis-server)" >&2; exit 1; } ;;
  *) echo "celery/run.sh: DBKV_CELERY_TARGET must be dbkv or redis" >&2; exit 2 ;;
esac
export DBKV_CELERY_TARGET=$target

# The venv under target/ is reused while requirements.txt is unchanged (its
# hash is stored beside it) and the interpreter it points at still runs.
venv=$root/target/celery-venv
req=$here/requirements.txt
want=$(sha256sum "$req" | cut -d' ' -f1)
have=$(cat "$venv/.requirements.sha256" 2>/dev/null || true)
if [ "$want" != "$have" ] || ! "$venv/bin/python" -c '' 2>/dev/null; then
  echo "== building $venv from $req"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  echo "$want" > "$venv/.requirements.sha256"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dbkv-celery.XXXXXX")
export DBKV_CELERY_TMP=$tmp
# harness.py records each process group it starts here (an empty file named
# by the leader's pid) and removes the file when it stops the group.
export DBKV_CELERY_PIDS=$tmp/pids

# The process group is still ours if its leader is alive and leads it.
# (/proc/PID/stat after "(comm) ": state ppid pgrp ...)
leads_group() {
  local leader=$1 stat
  stat=$(cat "/proc/$leader/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  set -- $stat
  [ "$1" != Z ] && [ "$3" = "$leader" ]
}

child=
cleanup() {
  local rc=$? pid
  # pytest (or the bench) first, so that it starts nothing more.
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  if [ -d "$tmp/pids" ]; then
    for f in "$tmp/pids"/*; do
      [ -e "$f" ] || continue
      pid=$(basename "$f")
      if leads_group "$pid"; then
        echo "== cleanup: killing process group $pid" >&2
        kill -KILL -- "-$pid" 2>/dev/null || true
      fi
    done
  fi
  if [ "$rc" -ne 0 ] && [ -f "$tmp/server.log" ]; then
    echo "---- server log (last 30 lines) ----" >&2; tail -n 30 "$tmp/server.log" >&2 || true
    echo "---- worker log (last 60 lines) ----" >&2; tail -n 60 "$tmp/worker.log" >&2 || true
  fi
  if [ "${DBKV_CELERY_KEEP:-}" = 1 ]; then
    echo "== DBKV_CELERY_KEEP=1: logs and data left in $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

DBKV_CELERY_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
export DBKV_CELERY_PORT

# Each runs in the background and is waited for: bash runs a trap only
# once the foreground command is done, `wait` it interrupts at once.
if [ -n "$bench" ]; then
  PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" "$here/bench_chord.py" "$@" &
  child=$!
  rc=0; wait "$child" || rc=$?
  child=
  exit $rc
fi

echo "== celery suite: target $target on 127.0.0.1:$DBKV_CELERY_PORT"
start=$SECONDS
# No .pytest_cache or __pycache__ left in the source tree.
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest -p no:cacheprovider -q \
  --rootdir "$here" "$here/test_celery.py" "$@" &
child=$!
rc=0; wait "$child" || rc=$?
child=
echo "== celery suite (target $target): $([ $rc -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s"
exit $rc
