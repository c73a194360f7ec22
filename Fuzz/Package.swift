// swift-tools-version:6.0
// The libFuzzer targets (docs/fuzzing.md). A package of its own, so that the main build never
// sees executables without a `main` of their own and the fuzz build (sanitizers, its own scratch
// path) never invalidates the main one. `make fuzz` and `make test` build it with:
//   swift build --package-path Fuzz --scratch-path .build/fuzz -Xswiftc -sanitize=address
//     -Xswiftc -Xfrontend -Xswiftc -sanitize=fuzzer,address -Xlinker <libclang_rt.fuzzer_no_main> ...
// (Fuzz/build.sh). The zonegate modules are the main package's sources, through the symlinks in
// Fuzz/Sources; the Docker decoders are four files of ZonegateDocker compiled without
// async-http-client and NIO, which they do not use. Yams and swift-crypto come from the main
// package's checkouts (.build/checkouts), at the versions its Package.resolved pins, offline.
import PackageDescription

let checkouts = "../.build/checkouts"

let package = Package(
    name: "zonegate-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(path: "\(checkouts)/Yams"),
        .package(path: "\(checkouts)/swift-crypto"),
    ],
    targets: [
        .target(name: "ZonegatePolicy", dependencies: [
            .product(name: "Yams", package: "Yams"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "ZonegateEngine", dependencies: ["ZonegatePolicy"]),
        .target(name: "ZonegateRuleset", dependencies: ["ZonegateEngine", "ZonegatePolicy"]),
        .systemLibrary(name: "CNftnl", pkgConfig: "libnftnl"),
        .target(name: "ZonegateNetfilter", dependencies: ["CNftnl", "ZonegateRuleset", "ZonegatePolicy"]),
        .target(name: "ZonegateDockerDecoders", dependencies: ["ZonegateEngine", "ZonegatePolicy"]),
        // libFuzzer's driver, called from each target's main (FuzzSupport.swift says why).
        .target(name: "FuzzSupport", path: "Targets/FuzzSupport"),
        .executableTarget(name: "fuzz-policy", dependencies: ["FuzzSupport", "ZonegatePolicy", "ZonegateEngine"],
                          path: "Targets/fuzz-policy"),
        .executableTarget(name: "fuzz-inventory", dependencies: ["FuzzSupport", "ZonegateEngine", "ZonegatePolicy"],
                          path: "Targets/fuzz-inventory"),
        .executableTarget(name: "fuzz-docker-events", dependencies: ["FuzzSupport", "ZonegateDockerDecoders"],
                          path: "Targets/fuzz-docker-events"),
        .executableTarget(name: "fuzz-docker-json", dependencies: ["FuzzSupport", "ZonegateDockerDecoders"],
                          path: "Targets/fuzz-docker-json"),
        .executableTarget(name: "fuzz-nft-readback", dependencies: ["FuzzSupport", "ZonegateNetfilter", "CNftnl"],
                          path: "Targets/fuzz-nft-readback"),
        .executableTarget(name: "fuzz-conntrack", dependencies: ["FuzzSupport", "ZonegateNetfilter"],
                          path: "Targets/fuzz-conntrack"),
        .executableTarget(name: "fuzz-nflog", dependencies: ["FuzzSupport", "ZonegateNetfilter"],
                          path: "Targets/fuzz-nflog"),
    ]
)
