#!/usr/bin/env bash
# The cost of single request stages, in instructions: runs every scenario of
# benches/stage_cost.rs under callgrind, collecting only inside its `measured` functions, and
# prints instructions per call, and per call less the bare loop (`noop`).
#
#   benches/stage_cost.sh                      # every scenario, 10000 calls each
#   benches/stage_cost.sh ua_browser ua_tool   # some scenarios (noop is always run)
#   N=20000 benches/stage_cost.sh              # another call count
#   OUT=/tmp/mine benches/stage_cost.sh        # where the callgrind files go
#
# Every scenario runs twice; the last column is what the second run differs by (header-map
# hashing in actix-http is randomly seeded; nothing else here is). Needs valgrind.
set -euo pipefail

cd "$(dirname "$0")/.."
N=${N:-10000}
OUT=${OUT:-/tmp/stage_cost}
mkdir -p "$OUT"

for tool in valgrind callgrind_annotate; do
    command -v "$tool" >/dev/null || { echo "stage_cost.sh: $tool not found" >&2; exit 1; }
done

echo "building (cargo bench --bench stage_cost --no-run)..." >&2
build_log=$(cargo bench --bench stage_cost --no-run 2>&1) || { echo "$build_log" >&2; exit 1; }
bin=$(sed -n 's/.*Executable benches\/stage_cost\.rs (\(.*\))$/\1/p' <<<"$build_log" | tail -n 1)
if [[ -z "$bin" ]]; then
    bin=$(ls -t target/release/deps/stage_cost-* 2>/dev/null | grep -v '\.d$' | head -n 1 || true)
fi
[[ -x "$bin" ]] || { echo "stage_cost.sh: no bench binary found" >&2; exit 1; }
echo "binary: $bin; $N calls per scenario; callgrind files in $OUT" >&2

if [[ $# -gt 0 ]]; then
    scenarios=(noop "$@")
else
    scenarios=(noop resolve_direct resolve_xff_0 resolve_xff_1 resolve_xff_5 resolve_xff_v6
        resolve_forwarded_1 ua_missing ua_tool ua_browser ua_browser_mix ua_browser_distinct
        ua_crawler ua_512 ua_crafted)
fi
results=()
for run in 1 2; do
    for scenario in "${scenarios[@]}"; do
        out="$OUT/$scenario.$run.callgrind"
        log="$OUT/$scenario.$run.log"
        if ! valgrind --tool=callgrind --toggle-collect='*measured*' \
            --callgrind-out-file="$out" "$bin" "$scenario" "$N" >"$log" 2>&1; then
            echo "stage_cost.sh: $scenario failed; see $log" >&2
            tail -n 20 "$log" >&2
            exit 1
        fi
        total=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out")
        [[ -n "$total" && "$total" -gt 0 ]] || { echo "stage_cost.sh: $scenario: nothing collected" >&2; exit 1; }
        echo "  $scenario (run $run): $total Ir" >&2
        results+=("$scenario $run $total")
    done
done

printf '%s\n' "${results[@]}" | awk -v n="$N" '
    { ir[$1 "." $2] = $3; if ($2 == 1) order[++k] = $1 }
    END {
        loop = ir["noop.1"] / n
        printf "\n%-22s %10s %12s   %s\n", "scenario", "Ir/call", "less loop", "run 2 - run 1"
        for (i = 1; i <= k; i++) {
            s = order[i]; a = ir[s ".1"]; b = ir[s ".2"]
            printf "%-22s %10.1f %12.1f   %+.2f Ir/call\n", s, a / n, a / n - loop, (b - a) / n
        }
    }'
