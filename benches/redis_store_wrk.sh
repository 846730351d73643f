#!/bin/sh
# wrk against `redis_store --serve`: memory mode and Redis mode in turn (A B A B ...), one
# server at a time on 127.0.0.1:$PORT, requests spread over 1,000 clients by
# benches/wrk.lua. Prints each run's requests/s and, in Redis mode, the
# EVALSHA calls the Redis server counted per request (INFO commandstats; other clients of the
# same Redis add to it).
#
#   cargo bench --features redis --bench redis_store --no-run
#   benches/redis_store_wrk.sh target/release/deps/redis_store-<hash> [rounds] [seconds]
#
# Environment: BOUNCER_TEST_REDIS (default redis://127.0.0.1:6379/), PORT (8091),
# CONNECTIONS (32), THREADS (1).
set -eu
BIN=$1
ROUNDS=${2:-2}
SECS=${3:-10}
PORT=${PORT:-8091}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
HERE=$(dirname "$0")
evalsha() {
  redis-cli -u "${BOUNCER_TEST_REDIS:-redis://127.0.0.1:6379/}" info commandstats |
    sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p'
}
i=0
while [ "$i" -lt "$ROUNDS" ]; do
  i=$((i + 1))
  for mode in memory redis; do
    "$BIN" --serve "$mode" "$PORT" >"/tmp/redis_store_serve_$mode.log" 2>&1 &
    pid=$!
    until wrk -t1 -c1 -d1s -s "$HERE/wrk.lua" "http://127.0.0.1:$PORT/" >/dev/null 2>&1; do
      sleep 0.2
    done
    # Warm-up, then the measured run.
    wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$HERE/wrk.lua" "http://127.0.0.1:$PORT/" >/dev/null
    before=$(evalsha)
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECS}s" --latency -s "$HERE/wrk.lua" "http://127.0.0.1:$PORT/")
    after=$(evalsha)
    kill -INT "$pid"
    wait "$pid" || true
    rps=$(echo "$out" | sed -n 's/^Requests\/sec: *//p')
    reqs=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
    lat=$(echo "$out" | awk '/^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {print "p50 " p50 ", p99 " p99}')
    errors=$(echo "$out" | grep -E "Non-2xx|Socket errors" || true)
    echo "round $i $mode: $rps req/s ($reqs requests, $lat) EVALSHA/request $(echo "$after $before $reqs" | awk '{printf "%.5f", ($1 - $2) / $3}') $errors"
    grep -h "mode stopped" "/tmp/redis_store_serve_$mode.log" || true
  done
done
