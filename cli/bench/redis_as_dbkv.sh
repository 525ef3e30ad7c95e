#!/bin/sh
# Stand-in for `dbkv serve` that execs redis-server, for testing server_bench.py
# before the real server exists (or to see the noise floor: both sides are redis,
# so every ratio should come out near 1.0):
#   python3 cli/bench/server_bench.py --quick --dbkv-bin cli/bench/redis_as_dbkv.sh
# Maps: serve --port N --data-dir DIR [--sync interval|always|none] [--fsync-interval-ms MS]
# (the interval maps to everysec: redis has no other interval).
set -e
[ "$1" = serve ] || { echo "usage: $0 serve --port N --data-dir DIR [--sync MODE]" >&2; exit 2; }
shift
port= dir= fsync=everysec
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port=$2; shift 2 ;;
        --data-dir) dir=$2; shift 2 ;;
        --sync)
            case "$2" in
                interval) fsync=everysec ;; always) fsync=always ;; none) fsync=no ;;
                *) echo "bad --sync $2" >&2; exit 2 ;;
            esac
            shift 2 ;;
        --fsync-interval-ms) shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$port" ] && [ -n "$dir" ] || { echo "--port and --data-dir are required" >&2; exit 2; }
mkdir -p "$dir"
# exec: the benchmark reads /proc/PID of this very process.
exec redis-server --port "$port" --dir "$dir" --appendonly yes --appendfsync "$fsync" --save ''
