# zonegate: `make demo` shows the product on real input, `make test` runs every test.
SHELL := /bin/bash
SWIFT ?= swift
ZONEGATE := .build/debug/zonegate
# Debian packages the build and the tests need; `make deps` installs whichever are missing.
DEBIAN_PACKAGES := pkg-config libnftnl-dev libmnl-dev nftables iproute2 busybox-static python3

.PHONY: all deps build demo test bench clean

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

# Validates the shipped policy, proves its assertions, and prints the reachability matrix and one
# explained verdict for a sample inventory of a PCI-scoped host.
demo: build
	$(ZONEGATE) check --policies policies
	$(ZONEGATE) matrix --policies policies --inventory Tests/Fixtures/pci-host-inventory.json --format table
	$(ZONEGATE) explain --policies policies --inventory Tests/Fixtures/pci-host-inventory.json \
		--from wiki --to payments-1 --port 8443/tcp --format table

# Pure and wire-level tests, then the kernel tests: as root, inside private network and mount
# namespaces so that the host's ruleset, links and /run/netns are never touched (all the tests
# create disappears with them); serial, as they share tables.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	ZONEGATE_KERNEL_TESTS=1 unshare --net --mount --propagation private -- $(SWIFT) test --skip-build --no-parallel --filter ZonegateKernelTests

clean:
	rm -rf .build

# Benchmarks (release build): a table on stdout and bench-results.json.
bench: deps
	$(SWIFT) build -c release --product zonegate-bench
	.build/release/zonegate-bench bench-results.json
