#!/usr/bin/env bash
# Throughput of the demo's index handler over real sockets, bare against behind the bouncer,
# with wrk (Debian's package): ROUNDS interleaved runs (bare, bouncer, bare, bouncer, ...),
# each a fresh server (one worker), 2 s of warm-up and DURATION of load from 1 wrk thread with CONNECTIONS
# connections; prints each run's requests/s and the ratio of the medians.
#
#   benches/wrk.sh                         # 5 rounds of 10 s, 32 connections
#   ROUNDS=3 DURATION=20s benches/wrk.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-8089}
command -v wrk >/dev/null || { echo "wrk.sh: wrk not found (apt-get install wrk)" >&2; exit 1; }
build_log=$(cargo bench --bench wrk_serve --no-run 2>&1) || { echo "$build_log" >&2; exit 1; }
bin=$(sed -n 's/.*Executable benches\/wrk_serve\.rs (\(.*\))$/\1/p' <<<"$build_log" | tail -n 1)
[[ -x "$bin" ]] || { echo "wrk.sh: no server binary found" >&2; exit 1; }

declare -A rates
for round in $(seq 1 "$ROUNDS"); do
    for mode in bare bouncer; do
        "$bin" "$mode" "$PORT" >/dev/null &
        server=$!
        for _ in $(seq 1 100); do
            curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
            sleep 0.05
        done
        # Warm-up (connections, caches, the CPU's clock), then the measured run.
        wrk -t1 -c"$CONNECTIONS" -d2s -s benches/wrk.lua "http://127.0.0.1:$PORT/" >/dev/null
        out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s benches/wrk.lua "http://127.0.0.1:$PORT/")
        rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
        non2xx=${non2xx:-0}
        kill "$server"; wait "$server" 2>/dev/null || true
        echo "round $round $mode: $rate requests/s (non-2xx answers: $non2xx)"
        rates[$mode]+="$rate "
    done
done
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
bare=$(median "${rates[bare]}")
bouncer=$(median "${rates[bouncer]}")
echo "median: bare $bare, bouncer $bouncer requests/s: $(awk -v a="$bouncer" -v b="$bare" 'BEGIN {printf "%.1f", 100*a/b}') %"
