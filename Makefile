# zonegate: `make demo` shows the product on real input, `make test` runs every test.
SHELL := /bin/bash
SWIFT ?= swift
ZONEGATE := .build/debug/zonegate
# Debian packages the build and the tests need; `make deps` installs whichever are missing.
# docker.io brings containerd, runc and iptables: the end-to-end tests and the demo start a private dockerd.
DEBIAN_PACKAGES := pkg-config libnftnl-dev libmnl-dev nftables iproute2 busybox-static python3 docker.io

.PHONY: all deps build demo test fuzz bench clean

all: build

deps:
	@command -v $(SWIFT) >/dev/null || { echo "zonegate needs the Swift 6 toolchain (swift.org/install) on PATH" >&2; exit 2; }
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build --product zonegate

# The live demo (tools/demo.sh, root): a private dockerd in private namespaces (the host's own Docker,
# if any, is untouched), containers in the example zones, `zonegate run`, real connections from
# inside the containers against the expected verdicts, the live matrix; then it cleans up.
demo: build
	tools/demo.sh

# Pure and wire-level tests, then the kernel tests and the end-to-end tests (a private dockerd of
# their own, real containers, the zonegate binary): as root, inside private network and mount
# namespaces so that the host's ruleset, links and /run/netns are never touched (all the tests
# create disappears with them); serial, as they share tables.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	SWIFT=$(SWIFT) Fuzz/build.sh
	SWIFT=$(SWIFT) FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) Fuzz/run.sh
	ZONEGATE_KERNEL_TESTS=1 unshare --net --mount --propagation private -- $(SWIFT) test --skip-build --no-parallel --filter ZonegateKernelTests
	ZONEGATE_E2E_TESTS=1 unshare --net --mount --propagation private -- $(SWIFT) test --skip-build --no-parallel --filter ZonegateEndToEndTests

# libFuzzer targets for every decoder of outside input (docs/fuzzing.md): each runs FUZZ_SECONDS
# from its seed corpus (Fuzz/corpus), growing a scratch corpus under .build/fuzz; a crash, hang or
# out-of-memory is kept as a test case in Fuzz/crashes/<target>/ and fails the run.
# `make test` runs each for FUZZ_TEST_SECONDS and replays the kept cases.
FUZZ_SECONDS ?= 180
FUZZ_TEST_SECONDS ?= 5
fuzz: deps
	SWIFT=$(SWIFT) Fuzz/build.sh
	SWIFT=$(SWIFT) FUZZ_SECONDS=$(FUZZ_SECONDS) Fuzz/run.sh $(FUZZ_TARGETS)

clean:
	rm -rf .build

# Benchmarks (release build, root): a table on stdout and bench-results.json. The kernel
# benchmarks load rulesets and make namespaces for containers, so they run in private network and
# mount namespaces: the host's ruleset, links and /run/netns stay untouched; the zero-exposure one
# starts a private dockerd and the zonegate binary (debug, as the end-to-end tests).
bench: deps
	$(SWIFT) build --product zonegate
	$(SWIFT) build -c release --product zonegate
	$(SWIFT) build -c release --product zonegate-bench
	ZONEGATE_BENCH_NETNS=1 unshare --net --mount --propagation private -- .build/release/zonegate-bench bench-results.json
