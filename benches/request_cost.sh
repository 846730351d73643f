#!/usr/bin/env bash
# The cost of one request, in instructions: runs every scenario of benches/request_cost.rs
# under callgrind, collecting only inside its `measured` function, and prints instructions per
# request and what each scenario adds over bare actix-web. Instruction counts repeat from run
# to run (to a fraction of a percent: hash seeds are random), unlike wall-clock times.
#
#   benches/request_cost.sh            # 2000 requests per scenario
#   N=5000 benches/request_cost.sh     # another request count
#   OUT=/tmp/mine benches/request_cost.sh   # where the callgrind files go
#
# The table is the first pass; every scenario runs twice, and the last columns are what the
# second run differs by. Needs valgrind (callgrind, callgrind_annotate). Takes a few minutes
# after the build (the set-up runs under valgrind too).
set -euo pipefail

cd "$(dirname "$0")/.."
N=${N:-2000}
OUT=${OUT:-/tmp/request_cost}
mkdir -p "$OUT"

for tool in valgrind callgrind_annotate; do
    command -v "$tool" >/dev/null || { echo "request_cost.sh: $tool not found" >&2; exit 1; }
done

echo "building (cargo bench --bench request_cost --no-run)..." >&2
build_log=$(cargo bench --bench request_cost --no-run 2>&1) || { echo "$build_log" >&2; exit 1; }
# cargo prints "Executable benches/request_cost.rs (target/release/deps/request_cost-HASH)".
bin=$(sed -n 's/.*Executable benches\/request_cost\.rs (\(.*\))$/\1/p' <<<"$build_log" | tail -n 1)
if [[ -z "$bin" ]]; then
    bin=$(ls -t target/release/deps/request_cost-* 2>/dev/null | grep -v '\.d$' | head -n 1 || true)
fi
[[ -x "$bin" ]] || { echo "request_cost.sh: no bench binary found" >&2; exit 1; }
echo "binary: $bin; $N requests per scenario; callgrind files in $OUT" >&2

# Every scenario runs twice: the second pass is the repeatability check.
scenarios=(bare repeat first_seen repeat_1m first_seen_1m repeat_ua access_log)
runs=("${scenarios[@]}" "${scenarios[@]}")
declare -A seen=()
results=()

for scenario in "${runs[@]}"; do
    run=$(( ${seen[$scenario]:-0} + 1 ))
    seen[$scenario]=$run
    out="$OUT/$scenario.$run.callgrind"
    log="$OUT/$scenario.$run.log"
    started=$SECONDS
    if ! valgrind --tool=callgrind --toggle-collect='*measured*' \
        --callgrind-out-file="$out" "$bin" "$scenario" "$N" >"$log" 2>&1; then
        echo "request_cost.sh: $scenario failed; see $log" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
    grep -hE '^(warning|note)' "$log" | sed "s/^/  $scenario: /" >&2 || true
    total=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out")
    # Everything collected must be inside `measured`: the toggle pattern matched it, and
    # nothing else. (awk reads to the end: an early exit would fail the pipe.)
    inside=$(callgrind_annotate --inclusive=yes "$out" 2>/dev/null |
        awk '/:request_cost::measured / && !found {gsub(",", "", $1); print $1; found = 1}')
    if [[ -z "$total" || "$total" -eq 0 || "$inside" != "$total" ]]; then
        echo "request_cost.sh: $scenario: collected ${total:-nothing}, inside measured" \
            "${inside:-nothing}: the toggle pattern did not match as expected" >&2
        exit 1
    fi
    echo "  $scenario (run $run): $total Ir in $((SECONDS - started)) s" >&2
    results+=("$scenario $run $total")
done

printf '%s\n' "${results[@]}" | awk -v n="$N" '
    { ir[$1 "." $2] = $3; if ($2 == 1) order[++k] = $1 }
    END {
        bare = ir["bare.1"] / n
        printf "\n%-14s %11s %11s   %s\n", "scenario", "Ir/request", "over bare",
            "run 2 - run 1 (repeatability)"
        for (i = 1; i <= k; i++) {
            s = order[i]; a = ir[s ".1"]; b = ir[s ".2"]
            printf "%-14s %11.1f %+11.1f   %+d Ir = %+.2f Ir/request (%+.4f%%)\n",
                s, a / n, a / n - bare, b - a, (b - a) / n, (b - a) * 100 / a
        }
    }'
