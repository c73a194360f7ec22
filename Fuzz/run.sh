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

# Whether a run ended inside libnftnl: its exit on a malformed attribute, or a fault whose
# first frames past the sanitizer's own are libnftnl's.
in_libnftnl() {
    grep -q "nf_tables kernel ABI is broken" "$1" && grep -q "fuzz target exited" "$1" && return 0
    grep -A6 "ERROR: AddressSanitizer" "$1" | grep -E "^ +#[0-9] " | grep -v -E "sanitizer|asan_|interceptors" | head -1 | grep -q "libnftnl.so"
}

failed=()
for target in "${targets[@]}"; do
    [ -x "$bin/$target" ] || { echo "fuzz: $bin/$target is not built (Fuzz/build.sh)" >&2; exit 2; }
    kept=(Fuzz/crashes/"$target"/*)
    if [ -e "${kept[0]}" ]; then
        # Each kept case must pass now: it was fixed when it was committed.
        if ! "$bin/$target" -runs=1 "${kept[@]}" > ".build/fuzz/$target-replay.log" 2>&1; then
            echo "fuzz: $target: a kept case of Fuzz/crashes/$target crashes again (.build/fuzz/$target-replay.log):" >&2
            grep -E "^(==[0-9]+==ERROR|.*Fatal error|SUMMARY|Running:)" ".build/fuzz/$target-replay.log" | tail -5 >&2
            failed+=("$target")
            continue
        fi
        echo "fuzz: $target: ${#kept[@]} kept case(s) pass"
    fi
    $replay && continue
    work=.build/fuzz/work/$target
    rm -rf "$work/artifacts"
    mkdir -p "$work/corpus" "$work/artifacts" "$work/libnftnl"
    : > "$work/log"
    # libnftnl, which parses nf_tables messages before zonegate's decoders see them, trusts the
    # kernel: it ends the process (exit(1), "nf_tables kernel ABI is broken") on an attribute of
    # the wrong length and dereferences missing attributes (docs/fuzzing.md, Known limits). The
    # read-back target restarts after each failure inside libnftnl; those are counted and kept
    # under .build/fuzz/work/fuzz-nft-readback/libnftnl, not as zonegate crashes.
    end=$((SECONDS + seconds)) runs=0 exits=0 status=0
    while :; do
        left=$((end - SECONDS))
        [ "$left" -gt 0 ] || break
        "$bin/$target" "$work/corpus" "Fuzz/corpus/$target" -max_total_time="$left" -timeout="$timeout" \
            -max_len="$(max_len "$target")" -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
            > "$work/last.log" 2>&1
        status=$?
        cat "$work/last.log" >> "$work/log"
        runs=$((runs + $(sed -n 's/^stat::number_of_executed_units: *//p' "$work/last.log" | tail -1 | grep . || echo 0)))
        if [ "$target" = fuzz-nft-readback ] && [ $status -ne 0 ] && in_libnftnl "$work/last.log"; then
            for artifact in "$work"/artifacts/*; do
                [ -e "$artifact" ] || continue
                mv "$artifact" "$work/libnftnl/"
                { echo "$(basename "$artifact"):"; grep -m3 -E "ABI is broken|^rule.c|^set|ERROR: AddressSanitizer|^ +#[0-9] .*libnftnl" "$work/last.log"; } >> "$work/libnftnl/summary"
            done
            exits=$((exits + 1)) status=0
            continue
        fi
        break
    done
    elapsed=$((seconds - (end - SECONDS > 0 ? end - SECONDS : 0)))
    echo "fuzz: $target: $runs inputs in ${elapsed}s ($((runs / (elapsed > 0 ? elapsed : 1)))/s), scratch corpus $(ls "$work/corpus" | wc -l) files$([ $exits -gt 0 ] && echo ", $exits failures inside libnftnl, not kept") (log: $work/log)"
    found=("$work"/artifacts/*)
    if [ -e "${found[0]}" ]; then
        mkdir -p "Fuzz/crashes/$target"
        cp "${found[@]}" "Fuzz/crashes/$target/"
        echo "fuzz: $target: FOUND $(basename -a "${found[@]}" | tr '\n' ' ')-> kept in Fuzz/crashes/$target/" >&2
        grep -E "^(==[0-9]+==ERROR|.*Fatal error|SUMMARY|ALARM|.*out-of-memory)" "$work/last.log" | head -3 >&2
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
