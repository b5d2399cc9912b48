#!/bin/sh
# run.sh SECONDS JOBS TARGET... - runs fuzz targets, JOBS at a time.
#
# For each target: first every reproducer kept in crashes/<target>/ is run
# once (a regression must stay fixed); then, if SECONDS > 0, libFuzzer runs
# for SECONDS over a fresh working copy of corpus/<target>/ (new inputs go
# to build/work/<target>/, never into corpus/), else the seeds are only run
# once. Any crash, leak, sanitizer report, timeout or failed CHECK fails the
# target; its input is written to build/crashes/<target>/ and its log is
# build/logs/<target>.log. Prints one line per target, then
# "N passed, M failed"; exits non-zero if any failed.
set -u
cd "$(dirname "$0")"
secs=$1
jobs=$2
shift 2

# Longest input per target: enough for its seeds and protocol limits
# (HTTP_MAX_HEADER is 16 KiB; WebSocket messages over the 1k..16k max_msg
# settings of fuzz_ws), small enough to keep each run fast.
max_len() {
    case $1 in
    http) echo 24576 ;;
    ws) echo 20000 ;;
    config) echo 8192 ;;
    *) echo 4096 ;;
    esac
}

# Appended, so that what a caller's environment sets cannot turn them off.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"
ubsan=print_stacktrace=1:halt_on_error=1
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}$ubsan"

mkdir -p build/logs build/work build/crashes

# Runs one target; writes build/logs/<t>.result ("ok ..." or "FAIL ...").
one() {
    t=$1
    bin=build/fuzz_$t
    log=build/logs/$t.log
    res=build/logs/$t.result
    work=build/work/$t
    out=build/crashes/$t
    rm -rf "$work" "$out"
    mkdir -p "$work" "$out"
    : > "$log"
    regressed=
    if [ -d "crashes/$t" ] && [ -n "$(ls -A "crashes/$t" 2>/dev/null)" ]; then
        for f in crashes/"$t"/*; do
            echo "== regression $f" >> "$log"
            "$bin" -runs=1 "$f" >> "$log" 2>&1 || regressed="$regressed $f"
        done
    fi
    dict=
    [ -f "$t.dict" ] && dict="-dict=$t.dict"
    if [ "$secs" -gt 0 ]; then
        set -- -max_total_time="$secs"
    else
        set -- -runs=0
    fi
    # shellcheck disable=SC2086
    "$bin" "$@" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2560 \
        -print_final_stats=1 -artifact_prefix="$out/" $dict \
        "$work" "corpus/$t" >> "$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    new=$(ls "$work" | wc -l)
    seeds=$(ls "corpus/$t" | wc -l)
    if [ -n "$regressed" ]; then
        echo "FAIL kept reproducer(s) fail again:$regressed (log $log)" \
            > "$res"
    elif [ $rc -eq 0 ] && [ "$secs" -eq 0 ]; then
        echo "ok $seeds seeds replayed, cov ${cov:-?}" > "$res"
    elif [ $rc -eq 0 ]; then
        echo "ok ${runs:-?} runs (${rate:-?}/s), cov ${cov:-?}," \
            "$seeds seeds + $new new" > "$res"
    else
        art=$(ls "$out" 2>/dev/null | head -1)
        why=$(grep -m1 -E 'CHECK\(|ERROR: |runtime error|SUMMARY' "$log" |
            cut -c1-150)
        echo "FAIL ${why:-exit $rc}; input $out/${art:-?} (log $log)" > "$res"
    fi
}

running=0
for t in "$@"; do
    one "$t" &
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then
        wait
        running=0
    fi
done
wait

passed=0
failed=0
for t in "$@"; do
    r=$(cat "build/logs/$t.result" 2>/dev/null || echo "FAIL did not run")
    printf 'fuzz_%-7s %s\n' "$t" "$r"
    case $r in
    ok*) passed=$((passed + 1)) ;;
    *) failed=$((failed + 1)) ;;
    esac
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
