#!/usr/bin/env bash
# Runs every libFuzzer target (Fuzz/Targets) for SECONDS each, JOBS at a time, and writes a
# table of executions, coverage and findings to benchmarks/results/fuzz-DATE.md.
#
#   scripts/fuzz.sh [SECONDS=600] [JOBS=2] [TARGET ...]
#
# Each target starts from its committed seeds (Fuzz/corpus/TARGET) and grows a working corpus in
# .build-fuzz/corpus/TARGET (not committed). A crash, sanitizer report, leak (ASan's leak check
# after each input), an input over FUZZ_TIMEOUT s (default 10; -timeout) or over 2 GB (-rss_limit_mb) stops the target
# and leaves the input in .build-fuzz/findings/TARGET/ — turn each into a regression test.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}; jobs=${2:-2}; shift 2 2>/dev/null || shift $#
binary=.build-fuzz/debug/sprout-fuzz
[ -x "$binary" ] || { echo "no $binary: run make fuzz-build first" >&2; exit 1; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(ls Fuzz/corpus))
stamp=$(date -u +%Y%m%d-%H%M%S)
logs=.build-fuzz/logs/$stamp
mkdir -p "$logs"

# A Swift trap should stop the target as a crash libFuzzer reports, without the Swift runtime's
# backtracer (which reads other threads' stacks and trips the address sanitizer itself).
export SWIFT_BACKTRACE=enable=no

run_one() {
    local t=$1 start=$SECONDS
    mkdir -p ".build-fuzz/corpus/$t" ".build-fuzz/findings/$t"
    "$binary" "$t" ".build-fuzz/corpus/$t" "Fuzz/corpus/$t" \
        -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix=".build-fuzz/findings/$t/" >"$logs/$t.log" 2>&1
    echo $? >"$logs/$t.rc"
    echo $((SECONDS - start)) >"$logs/$t.seconds"
}

running=0
for t in "${targets[@]}"; do
    echo "fuzzing $t for ${seconds}s"
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait

out=benchmarks/results/fuzz-$stamp.md
{
    echo "# Fuzzing, $(date -u +%Y-%m-%d) — scripts/fuzz.sh $seconds $jobs"
    echo
    echo "$(uname -m), $(nproc) cores, $jobs targets at a time; -sanitize=fuzzer,address, debug build; leak check on."
    echo
    echo "| target | seconds | executions | exec/s | coverage (edges) | features | corpus | peak RSS MB | result |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    for t in "${targets[@]}"; do
        log=$logs/$t.log
        rc=$(cat "$logs/$t.rc" 2>/dev/null || echo "?")
        stat() { grep -o "stat::$1: *[0-9]*" "$log" | tail -1 | grep -o "[0-9]*$"; }
        last=$(grep -E "^#[0-9]+" "$log" | tail -1)
        cov=$(echo "$last" | grep -o "cov: [0-9]*" | grep -o "[0-9]*")
        ft=$(echo "$last" | grep -o "ft: [0-9]*" | grep -o "[0-9]*")
        corp=$(echo "$last" | grep -o "corp: [0-9]*" | grep -o "[0-9]*$")
        if [ "$rc" = 0 ]; then result="no crash, hang or leak"
        else result="**stopped (exit $rc)**: $(grep -m1 -E "ERROR|SUMMARY|Fatal error|deadly signal|timeout|out-of-memory" "$log" | cut -c1-120)"; fi
        echo "| $t | $(cat "$logs/$t.seconds") | $(stat number_of_executed_units) | $(stat average_exec_per_sec) | $cov | $ft | $corp | $(stat peak_rss_mb) | $result |"
    done
} >"$out"
cat "$out"
echo "logs: $logs"
