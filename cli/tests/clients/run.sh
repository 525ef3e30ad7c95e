#!/usr/bin/env bash
# Real-client suites against `dbkv serve`: redis-cli, redis-py, go-redis and
# ioredis each talk to one freshly started server, so the RESP layer is
# judged by the clients people actually use rather than by our own parser.
#
#   bash cli/tests/clients/run.sh [redis-cli] [python] [go] [node]
#
# With no names every suite runs. Environment:
#   DBKV_BIN                server binary (default target/release/dbkv)
#   DBKV_CLIENTS_TARGET     "redis" starts a real redis-server instead, to prove
#                           the suites themselves against the reference; the
#                           suites then skip the DBKV.* commands
# Each suite gets REDIS_HOST=127.0.0.1 and REDIS_PORT in its environment.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
cd "$root"

all_suites=(redis-cli python go node)
if [ $# -gt 0 ]; then suites=("$@"); else suites=("${all_suites[@]}"); fi
for s in "${suites[@]}"; do
  case " ${all_suites[*]} " in
    *" $s "*) ;;
    *) echo "run.sh: unknown suite '$s' (known: ${all_suites[*]})" >&2; exit 2 ;;
  esac
done

target=${DBKV_CLIENTS_TARGET:-dbkv}
case "$target" in dbkv|redis) ;; *) echo "run.sh: DBKV_CLIENTS_TARGET must be dbkv or redis" >&2; exit 2 ;; esac
export DBKV_CLIENTS_TARGET=$target
export REDIS_HOST=127.0.0.1

# Port 0 lets the kernel pick a free port; the tiny race until the server
# binds it again is acceptable on a test machine.
REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
export REDIS_PORT

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dbkv-clients.XXXXXX")
log=$tmp/server.log
server_pid=

# Always stop the server and remove the data dir, whatever happened.
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# kill -0 cannot tell: an exited child stays a zombie until it is waited for.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

show_log() {
  echo "---- server log (last 40 lines) ----" >&2
  tail -n 40 "$log" >&2 || true
  echo "------------------------------------" >&2
}

if [ "$target" = redis ]; then
  server=(redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp")
else
  bin=${DBKV_BIN:-target/release/dbkv}
  if [ ! -x "$bin" ]; then
    echo "run.sh: server binary '$bin' not found; build it with: cargo build --release -p dbkv-cli" >&2
    exit 1
  fi
  mkdir "$tmp/data"
  server=("$bin" serve --port "$REDIS_PORT" --data-dir "$tmp/data")
fi
echo "== starting ${server[*]}"
"${server[@]}" >"$log" 2>&1 &
server_pid=$!

# Ready when a PING answers PONG; give up after ~20 s or if the server died.
ready=
for _ in $(seq 200); do
  if ! alive "$server_pid"; then
    echo "run.sh: server exited before answering PING" >&2; show_log; exit 1
  fi
  if [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" PING 2>/dev/null || true)" = PONG ]; then
    ready=1; break
  fi
  sleep 0.1
done
if [ -z "$ready" ]; then echo "run.sh: server did not answer PING within 20 s" >&2; show_log; exit 1; fi

venv=$root/target/clients-venv
run_suite() {
  case "$1" in
    redis-cli)
      bash "$here/redis_cli.sh" ;;
    python)
      # A venv under target/ is kept between runs (pip is then a no-op); it is
      # rebuilt when the interpreter it points at is gone.
      if ! "$venv/bin/python" -c '' 2>/dev/null; then
        rm -rf "$venv"
        python3 -m venv "$venv"
      fi
      "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/python/requirements.txt"
      # No .pytest_cache or __pycache__ left in the source tree.
      PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest -p no:cacheprovider -q "$here/python" ;;
    go)
      (cd "$here/go" && go vet ./... && go test -count=1 ./...) ;;
    node)
      (cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error && node --test --test-reporter=spec test/) ;;
  esac
}

failed=()
for s in "${suites[@]}"; do
  echo "== suite: $s (target $target, 127.0.0.1:$REDIS_PORT)"
  start=$SECONDS
  if run_suite "$s"; then
    echo "== suite $s passed ($((SECONDS - start)) s)"
  else
    echo "== suite $s FAILED ($((SECONDS - start)) s)"
    failed+=("$s")
  fi
done

# The contract says the server exits 0 on SIGTERM: check it rather than
# just killing it.
kill -TERM "$server_pid"
stopped=
for _ in $(seq 100); do
  if ! alive "$server_pid"; then stopped=1; break; fi
  sleep 0.1
done
if [ -z "$stopped" ]; then
  echo "== server did not exit within 10 s of SIGTERM" >&2
  failed+=("shutdown")
else
  rc=0; wait "$server_pid" || rc=$?
  server_pid=
  if [ "$rc" -ne 0 ]; then
    echo "== server exited $rc on SIGTERM (expected 0)" >&2
    failed+=("shutdown")
  fi
fi

if [ ${#failed[@]} -gt 0 ]; then
  show_log
  echo "client suites FAILED: ${failed[*]}"
  exit 1
fi
echo "client suites passed: ${suites[*]}"
