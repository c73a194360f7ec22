#!/usr/bin/env bash
# Runs the fuzz targets built by Fuzz/build.sh (docs/fuzzing.md).
#   Fuzz/run.sh [target...]            fuzz each for $FUZZ_SECONDS (default 180) from its seed corpus
#   Fuzz/run.sh --replay [target...]   only run the kept crash cases of Fuzz/crashes/<target>/
# What a run finds new goes to a scratch corpus, .build/fuzz/work/<target>/corpus, never into the
# repository. A crash, a timeout (an input taking over $FUZZ_TIMEOUT s) or an out-of-memory is
# copied to Fuzz/crashes/<target>/ as a test case and the script exits 1 once every target ran.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-180}
timeout=${FUZZ_TIMEOUT:-10}
bin=.build/fuzz/debug
replay=false
[ "${1:-}" = --replay ] && { replay=true; shift; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz-policy fuzz-inventory fuzz-docker-events fuzz-docker-json fuzz-nft-readback fuzz-conntrack fuzz-nflog)

# Policy files reach 16 files of a few KB (nesting is reached well within that); the others take
# what the kernel or Docker send in one message, line or answer.
max_len() { case $1 in fuzz-policy) echo 16384 ;; fuzz-nft-readback | fuzz-docker-json) echo 16384 ;; *) echo 8192 ;; esac; }

# Swift's own backtracer would take the signals libFuzzer and ASan report crashes with. Leaks are
# not checked: the Swift runtime keeps metadata caches for the life of the process.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}

failed=()
for target in "${targets[@]}"; do
    [ -x "$bin/$target" ] || { echo "fuzz: $bin/$target is not built (Fuzz/build.sh)" >&2; exit 2; }
    kept=(Fuzz/crashes/"$target"/*)
    if [ -e "${kept[0]}" ]; then
        # Each kept case must pass now: it was fixed when it was committed.
        if ! "$bin/$target" -runs=1 "${kept[@]}" > ".build/fuzz/$target-replay.log" 2>&1; then
            echo "fuzz: $target: a kept case of Fuzz/crashes/$target crashes again (.build/fuzz/$target-replay.log):" >&2
            grep -E "^(==[0-9]+==ERROR|.*Fatal error|SUMMARY|Running:|.*ABI is broken|.*fuzz target exited)" ".build/fuzz/$target-replay.log" | tail -5 >&2
            failed+=("$target")
            continue
        fi
        echo "fuzz: $target: ${#kept[@]} kept case(s) pass"
    fi
    $replay && continue
    work=.build/fuzz/work/$target
    rm -rf "$work/artifacts"
    mkdir -p "$work/corpus" "$work/artifacts"
    : > "$work/log"
    # A failure inside libnftnl (its exit(1) on a malformed attribute, a fault in its parsers) is a
    # crash like any other: read-back checks each message against libnftnl's attribute policy
    # first (NetlinkAttributeCheck, docs/fuzzing.md).
    start=$SECONDS
    "$bin/$target" "$work/corpus" "Fuzz/corpus/$target" -max_total_time="$seconds" -timeout="$timeout" \
        -max_len="$(max_len "$target")" -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
        > "$work/log" 2>&1
    status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1 | grep . || echo 0)
    elapsed=$((SECONDS - start))
    echo "fuzz: $target: $runs inputs in ${elapsed}s ($((runs / (elapsed > 0 ? elapsed : 1)))/s), scratch corpus $(ls "$work/corpus" | wc -l) files (log: $work/log)"
    found=("$work"/artifacts/*)
    if [ -e "${found[0]}" ]; then
        mkdir -p "Fuzz/crashes/$target"
        cp "${found[@]}" "Fuzz/crashes/$target/"
        echo "fuzz: $target: FOUND $(basename -a "${found[@]}" | tr '\n' ' ')-> kept in Fuzz/crashes/$target/" >&2
        grep -E "^(==[0-9]+==ERROR|.*Fatal error|SUMMARY|ALARM|.*out-of-memory|.*ABI is broken|.*fuzz target exited)" "$work/log" | head -3 >&2
        failed+=("$target")
    elif [ $status -ne 0 ]; then
        echo "fuzz: $target: libFuzzer exited $status without a test case (see $work/log)" >&2
        failed+=("$target")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failed: ${failed[*]} (docs/fuzzing.md: how a crash becomes a test case)" >&2
    exit 1
fi
