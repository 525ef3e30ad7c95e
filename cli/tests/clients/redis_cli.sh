#!/usr/bin/env bash
# redis-cli (Debian's redis-tools) against the server at $REDIS_HOST:$REDIS_PORT.
# Checks the exact text redis-cli prints, so reply types matter: --no-raw
# shows "(integer) 1" vs "\"1\"" vs "(nil)" vs "(error) ...".
# DBKV_CLIENTS_TARGET=redis skips the DBKV.* commands (plain Redis lacks them).
set -euo pipefail
: "${REDIS_PORT:?REDIS_PORT must be set}"
host=${REDIS_HOST:-127.0.0.1}

cli() { redis-cli -h "$host" -p "$REDIS_PORT" --no-raw "$@"; }

passed=0
failed=0
# Readable in a failure message: quoted as is, or shell-escaped ($'..\r')
# when it holds control characters.
show() { if [[ "$1" =~ [[:cntrl:]] ]]; then printf '%q' "$1"; else printf "'%s'" "$1"; fi; }
# check NAME EXPECTED ACTUAL: exact comparison, printing both on a mismatch.
check() {
  if [[ "$2" == "$3" ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    printf 'FAIL %s\n  expected: %s\n  got:      %s\n' "$1" "$(show "$2")" "$(show "$3")"
  fi
}
# check_match NAME REGEX ACTUAL: for answers that are only known to a range.
check_match() {
  if [[ "$3" =~ $2 ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    printf 'FAIL %s\n  expected to match: %s\n  got:               %s\n' "$1" "$2" "$(show "$3")"
  fi
}
# The integer from an "(integer) N" line, or "" when it is not one.
int_of() { [[ "$1" =~ ^\(integer\)\ (-?[0-9]+)$ ]] && echo "${BASH_REMATCH[1]}" || echo ""; }

# Every suite starts from an empty database so DBSIZE below is exact.
check "FLUSHALL" "OK" "$(cli FLUSHALL)"

check "PING" "PONG" "$(cli PING)"
check "PING msg" '"hi there"' "$(cli PING 'hi there')"
check "ECHO" '"echo me"' "$(cli ECHO 'echo me')"

# Strings: values with spaces survive; a missing key is nil, not "".
check "SET" "OK" "$(cli SET cli:k 'hello world')"
check "GET" '"hello world"' "$(cli GET cli:k)"
check "GET missing" "(nil)" "$(cli GET cli:missing)"
check "SET empty" "OK" "$(cli SET cli:empty '')"
check "GET empty" '""' "$(cli GET cli:empty)"
check "STRLEN" "(integer) 11" "$(cli STRLEN cli:k)"
check "SET NX on existing" "(nil)" "$(cli SET cli:k other NX)"
check "SET GET returns old" '"hello world"' "$(cli SET cli:k v2 GET)"

# Expiry: TTL counts down from EX; PERSIST removes it; -1/-2 for none/missing.
check "SET EX" "OK" "$(cli SET cli:t v EX 100)"
ttl=$(int_of "$(cli TTL cli:t)")
check_match "TTL after EX 100 in [98,100]" '^(98|99|100)$' "$ttl"
pttl=$(int_of "$(cli PTTL cli:t)")
if [[ -n "$pttl" ]] && ((pttl > 97000 && pttl <= 100000)); then passed=$((passed + 1)); else
  failed=$((failed + 1)); echo "FAIL PTTL after EX 100: expected (97000,100000], got '$pttl'"; fi
check "PERSIST" "(integer) 1" "$(cli PERSIST cli:t)"
check "TTL no expiry" "(integer) -1" "$(cli TTL cli:t)"
check "TTL missing" "(integer) -2" "$(cli TTL cli:missing)"
check "SET PX short" "OK" "$(cli SET cli:gone v PX 50)"
sleep 0.2
check "GET after PX expiry" "(nil)" "$(cli GET cli:gone)"

# Counters, and the error text for a non-integer.
check "INCR new" "(integer) 1" "$(cli INCR cli:n)"
check "INCRBY" "(integer) 11" "$(cli INCRBY cli:n 10)"
check "DECR" "(integer) 10" "$(cli DECR cli:n)"
check "DECRBY" "(integer) 7" "$(cli DECRBY cli:n 3)"
check "GET counter is a string" '"7"' "$(cli GET cli:n)"
check "INCR non-integer" "(error) ERR value is not an integer or out of range" "$(cli INCR cli:k)"

# MSET/MGET: nil in the middle of a multi-bulk reply.
check "MSET" "OK" "$(cli MSET cli:a 1 cli:b 2)"
check "MGET" $'1) "1"\n2) (nil)\n3) "2"' "$(cli MGET cli:a cli:missing cli:b)"

# DEL counts only keys that existed; EXISTS counts the keys present.
check "EXISTS before" "(integer) 2" "$(cli EXISTS cli:a cli:b cli:missing)"
check "DEL" "(integer) 2" "$(cli DEL cli:a cli:b cli:missing)"
check "EXISTS after" "(integer) 0" "$(cli EXISTS cli:a cli:b)"
check "TYPE" "string" "$(cli TYPE cli:k)"
check "TYPE missing" "none" "$(cli TYPE cli:missing)"

# Unknown command: Redis 7's exact text (with its trailing space), which
# clients and scripts match on.
check "unknown command" \
  "(error) ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' " \
  "$(cli NOSUCH a b)"
check "unknown command, no args" \
  "(error) ERR unknown command 'NOSUCH', with args beginning with: " \
  "$(cli NOSUCH)"

# Mass insert with --pipe: redis-cli writes raw RESP as fast as it can and
# counts the replies (it appends an ECHO to find the last one), so this is
# the pipelining path with thousands of commands in flight.
n=3000
check "FLUSHDB" "OK" "$(cli FLUSHDB)"
pipe_out=$(for ((i = 0; i < n; i++)); do
  key="cli:pipe:$i"
  printf '*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n' "${#key}" "$key" "${#i}" "$i"
done | redis-cli -h "$host" -p "$REDIS_PORT" --pipe 2>&1)
check "--pipe summary" "errors: 0, replies: $n" "$(tail -n 1 <<<"$pipe_out")"
check "DBSIZE after --pipe" "(integer) $n" "$(cli DBSIZE)"
check "GET a piped key" '"2999"' "$(cli GET cli:pipe:2999)"

# MULTI/EXEC in one session: commands are QUEUED, EXEC answers them all.
multi_out=$(cli <<'EOF'
MULTI
SET cli:tx 1
INCR cli:tx
GET cli:tx
EXEC
EOF
)
check "MULTI/EXEC" $'OK\nQUEUED\nQUEUED\nQUEUED\n1) OK\n2) (integer) 2\n3) "2"' "$multi_out"
# DISCARD drops the queue: the key keeps its value.
discard_out=$(cli <<'EOF'
MULTI
SET cli:tx 100
DISCARD
GET cli:tx
EOF
)
check "MULTI/DISCARD" $'OK\nQUEUED\nOK\n"2"' "$discard_out"

# Inline commands (telnet style, no RESP framing) over a raw TCP connection.
exec 3<>"/dev/tcp/$host/$REDIS_PORT"
printf 'PING\r\nSET cli:inline hello\r\nGET cli:inline\r\n' >&3
raw=()
for _ in 1 2 3 4; do
  IFS= read -r -t 5 line <&3 || { line="<timeout>"; }
  raw+=("$line")
done
exec 3>&-
check "inline PING" $'+PONG\r' "${raw[0]}"
check "inline SET" $'+OK\r' "${raw[1]}"
check "inline GET header" $'$5\r' "${raw[2]}"
check "inline GET body" $'hello\r' "${raw[3]}"

if [[ "${DBKV_CLIENTS_TARGET:-dbkv}" == redis ]]; then
  echo "skipping DBKV.* checks (target is plain Redis)"
else
  # Fencing tokens: an integer per grant, strictly increasing, also when
  # the same owner re-locks (refresh) and across different owners.
  t1=$(int_of "$(cli DBKV.LOCK cli:lock alice 10000)")
  check_match "DBKV.LOCK grants a token" '^[0-9]+$' "$t1"
  check "DBKV.LOCK held by another" "(nil)" "$(cli DBKV.LOCK cli:lock bob 10000)"
  t2=$(int_of "$(cli DBKV.LOCK cli:lock alice 10000)")
  check_match "DBKV.LOCK refresh grants a token" '^[0-9]+$' "$t2"
  if [[ -n "$t1" && -n "$t2" ]] && ((t2 > t1)); then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL refresh token must be larger: t1='$t1' t2='$t2'"; fi
  check "DBKV.EXTENDLOCK by another" "(integer) -1" "$(cli DBKV.EXTENDLOCK cli:lock bob 10000)"
  check "DBKV.EXTENDLOCK by owner" "(integer) 1" "$(cli DBKV.EXTENDLOCK cli:lock alice 20000)"
  check "DBKV.UNLOCK by another" "(integer) -1" "$(cli DBKV.UNLOCK cli:lock bob)"
  check "DBKV.UNLOCK by owner" "(integer) 1" "$(cli DBKV.UNLOCK cli:lock alice)"
  check "DBKV.UNLOCK again" "(integer) 0" "$(cli DBKV.UNLOCK cli:lock alice)"
  check "DBKV.EXTENDLOCK released" "(integer) 0" "$(cli DBKV.EXTENDLOCK cli:lock alice 1000)"
  t3=$(int_of "$(cli DBKV.LOCK cli:lock bob 10000)")
  if [[ -n "$t2" && -n "$t3" ]] && ((t3 > t2)); then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL new owner's token must be larger: t2='$t2' t3='$t3'"; fi
  check "DBKV.UNLOCK bob" "(integer) 1" "$(cli DBKV.UNLOCK cli:lock bob)"

  # A lock lapses by its TTL: then another owner can take it, and the old
  # owner's UNLOCK sees either nothing (0) or the new holder (-1).
  t4=$(int_of "$(cli DBKV.LOCK cli:short alice 100)")
  check_match "DBKV.LOCK short" '^[0-9]+$' "$t4"
  sleep 0.3
  check "DBKV.UNLOCK expired" "(integer) 0" "$(cli DBKV.UNLOCK cli:short alice)"
  cli DBKV.LOCK cli:short2 alice 100 >/dev/null
  sleep 0.3
  check_match "DBKV.LOCK after expiry" '^\(integer\) [0-9]+$' "$(cli DBKV.LOCK cli:short2 bob 10000)"
  check "DBKV.UNLOCK after takeover" "(integer) -1" "$(cli DBKV.UNLOCK cli:short2 alice)"
  # Leave no lock held for the suites that run next.
  check "DBKV.UNLOCK by new holder" "(integer) 1" "$(cli DBKV.UNLOCK cli:short2 bob)"

  check "SET before DBKV.SYNC" "OK" "$(cli SET cli:durable yes)"
  check "DBKV.SYNC" "OK" "$(cli DBKV.SYNC)"
fi

echo "redis-cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
