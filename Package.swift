// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "zonegate",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "zonegate", targets: ["zonegate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // Pure: policy values, YAML parsing with source positions, validation.
        .target(name: "ZonegatePolicy", dependencies: [
            .product(name: "Yams", package: "Yams"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Pure: inventory, zones of a container, verdicts, matrix, explain, assertion prover.
        .target(name: "ZonegateEngine", dependencies: ["ZonegatePolicy"]),
        // The subcommands: thin argument parsing and rendering over the modules.
        .target(name: "ZonegateCLI", dependencies: [
            "ZonegatePolicy", "ZonegateEngine", "ZonegateRuleset", "ZonegateNetfilter", "ZonegateDocker", "ZonegateDaemon", "ZonegateProbe",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Pure: nftables objects as values, the compiler from (policy, inventory) to zonegate's
        // tables, and the diff from the kernel's tables to those as one transaction.
        .target(name: "ZonegateRuleset", dependencies: ["ZonegateEngine", "ZonegatePolicy"]),
        // libnftnl + libmnl, imported only by ZonegateNetfilter.
        .systemLibrary(name: "CNftnl", path: "Sources/CNftnl", pkgConfig: "libnftnl"),
        // Encodes and decodes the ruleset values over netlink; the only importer of CNftnl.
        .target(name: "ZonegateNetfilter", dependencies: ["CNftnl", "ZonegateRuleset", "ZonegatePolicy"]),
        // The Docker Engine API client over the unix socket (async-http-client) and the inventory
        // builder: Docker's view of containers and networks -> zonegate's inventory.
        .target(name: "ZonegateDocker", dependencies: [
            "ZonegateEngine", "ZonegatePolicy",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOFoundationCompat", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // `verify --probe`: real connection attempts from containers' network namespaces, the host
        // and a temporary outside namespace (setns, rtnetlink, epoll; no external commands).
        .target(name: "ZonegateProbe", dependencies: ["ZonegatePolicy", "CZonegateProbe"]),
        // setns, unshare, accept4 and netlink macros, which Swift's Glibc module does not import.
        .target(name: "CZonegateProbe"),
        // The reconciler: Docker events, policy reloads and periodic resyncs -> enforcement.
        .target(name: "ZonegateDaemon", dependencies: [
            "ZonegateDocker", "ZonegateRuleset", "ZonegateEngine", "ZonegatePolicy",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // Fakes and network-namespace fixtures shared by test targets (test-only: it drives the
        // nft CLI for a stand-in of Docker's NAT, so it lives under Tests/).
        .target(name: "ZonegateTesting", dependencies: ["ZonegateRuleset", "ZonegateDocker", "ZonegateNetfilter", "ZonegateProbe"],
                path: "Tests/ZonegateTesting"),
        .executableTarget(name: "zonegate", dependencies: ["ZonegateCLI"]),
        // `make bench`: ratios against baselines measured in the same run. Not product code: its
        // baselines load rulesets with the nft CLI, and the packet and zero-exposure benchmarks use
        // the test fixtures (namespaces, a private dockerd), so it lives under Benchmarks/.
        .executableTarget(name: "zonegate-bench", dependencies: [
            "ZonegateEngine", "ZonegatePolicy", "ZonegateRuleset", "ZonegateNetfilter", "ZonegateDocker", "ZonegateDaemon", "ZonegateProbe",
            "ZonegateTesting",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ], path: "Benchmarks/zonegate-bench"),
        .testTarget(name: "ZonegatePolicyTests", dependencies: ["ZonegatePolicy", "ZonegateTesting"]),
        .testTarget(name: "ZonegateEngineTests", dependencies: ["ZonegateEngine", "ZonegatePolicy", "ZonegateTesting"]),
        .testTarget(name: "ZonegateCLITests", dependencies: ["ZonegateCLI", "ZonegateTesting"]),
        .testTarget(name: "ZonegateRulesetTests", dependencies: ["ZonegateRuleset", "ZonegateTesting", "ZonegateEngine", "ZonegatePolicy"]),
        .testTarget(name: "ZonegateNetfilterTests", dependencies: ["ZonegateNetfilter", "ZonegateTesting", "CNftnl"],
                    exclude: ["wire.nft"]),
        .testTarget(name: "ZonegateDockerTests", dependencies: ["ZonegateDocker", "ZonegateTesting", "ZonegateEngine", "ZonegatePolicy"]),
        .testTarget(name: "ZonegateDaemonTests", dependencies: ["ZonegateDaemon", "ZonegateDocker", "ZonegateTesting", "ZonegateEngine", "ZonegatePolicy",
                                                               .product(name: "Logging", package: "swift-log"),
                                                               .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                                                               .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle")]),
        // Root only, a real dockerd in private namespaces: `make test` runs them with ZONEGATE_E2E_TESTS=1.
        .testTarget(name: "ZonegateEndToEndTests", dependencies: ["ZonegateTesting", "ZonegateDocker", "ZonegateEngine"]),
        .testTarget(name: "ZonegateProbeTests", dependencies: ["ZonegateProbe", "ZonegatePolicy"]),
        // Root only, in a private network namespace: `make test` runs them under `unshare -n`.
        .testTarget(name: "ZonegateKernelTests", dependencies: ["ZonegateNetfilter", "ZonegateTesting", "CNftnl", "ZonegateEngine", "ZonegatePolicy", "ZonegateProbe"]),
    ]
)
