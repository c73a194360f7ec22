#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/Package.swift into .build/fuzz/debug (docs/fuzzing.md).
# Usage: Fuzz/build.sh [target...]   (default: every fuzz-* target)
# Needs the main package resolved (its .build/checkouts hold Yams and swift-crypto).
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
# libFuzzer without its `main` (FuzzSupport.swift says why), from the toolchain's compiler-rt.
resource_dir=$("$SWIFT"c -print-target-info | python3 -c 'import json,sys; print(json.load(sys.stdin)["paths"]["runtimeResourcePath"])')
libfuzzer=
for candidate in "$resource_dir"/clang/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a \
                 "$resource_dir"/clang/lib/x86_64-unknown-linux-gnu/libclang_rt.fuzzer_no_main.a; do
    [ -f "$candidate" ] && { libfuzzer=$candidate; break; }
done
[ -n "$libfuzzer" ] || { echo "fuzz: libclang_rt.fuzzer_no_main not found under $resource_dir/clang/lib" >&2; exit 2; }
[ -d .build/checkouts/Yams ] && [ -d .build/checkouts/swift-crypto ] || "$SWIFT" package resolve
# Without arguments one build of the whole fuzz package (the modules the targets share, once);
# with arguments, those targets.
products=()
for target in "$@"; do products+=(--product "$target"); done
build() {
    # The driver instruments (coverage for libFuzzer, ASan) at compile time; ASan's runtime and
    # libFuzzer are linked explicitly. SWIFTCI_USE_LOCAL_DEPS: swift-crypto then takes swift-asn1
    # from the checkout beside it instead of the network.
    SWIFTCI_USE_LOCAL_DEPS=1 "$SWIFT" build --package-path Fuzz --scratch-path .build/fuzz -c debug \
        -Xswiftc -sanitize=address -Xswiftc -Xfrontend -Xswiftc -sanitize=fuzzer,address \
        -Xlinker "$libfuzzer" -Xlinker -lstdc++ "$@" 2>&1 \
        | { grep -E "error|Linking fuzz|Build complete|Build of product" || true; }   # not the dependencies' warnings
    return "${PIPESTATUS[0]}"
}
if [ ${#products[@]} -eq 0 ]; then
    build
else
    for ((i = 0; i < ${#products[@]}; i += 2)); do build "${products[i]}" "${products[i + 1]}"; done
fi
