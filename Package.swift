// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "cancelwatch",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cancelwatch", targets: ["cancelwatch"]),
        .library(name: "CancelWatch", targets: ["CancelWatch"]),
        .library(name: "MarketSim", targets: ["MarketSim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // HTTP serving (/metrics, /healthz, the simulator, test receivers) and the metrics behind it.
        // Hummingbird's optional swift-configuration support is left off (`traits: []`).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Already pulled in by Hummingbird; named so HTTPServing can add its own channel handlers.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // `run`'s services in one ServiceGroup (graceful SIGTERM/SIGINT, SIGHUP reload); Hummingbird uses it too.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The PostgreSQL state store (`state: postgres://…`), shared by replicas.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // System libraries: libcurl (HTTP and SMTP), SQLite (state), libcrypto (MD5/HMAC).
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // HTTP/1.1 serving on Hummingbird, with limits: the simulator, /metrics, test receivers.
        .target(
            name: "HTTPServing",
            dependencies: [
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The engine: no command line, no test helpers.
        .target(
            name: "CancelWatch",
            dependencies: [
                "CCurl", "CSQLite", "CCrypto", "HTTPServing",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),

        // The simulator of both marketplaces.
        .target(name: "MarketSim", dependencies: ["CancelWatch", "HTTPServing"]),

        // Test support for the tests and the benchmarks (never the shipped binary): in-memory sink, waiting on a condition.
        .target(name: "CancelWatchTesting", dependencies: ["CancelWatch"]),

        .executableTarget(
            name: "cancelwatch",
            dependencies: [
                "CancelWatch", "MarketSim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),

        // Benchmarks: `swift run -c release cancelwatch-bench [--quick]` (BENCHMARKS.md).
        .executableTarget(
            name: "cancelwatch-bench",
            dependencies: [
                // TestServers: the replicas workload's throwaway PostgreSQL and `cancelwatch` processes.
                "CancelWatch", "CancelWatchTesting", "MarketSim", "TestServers",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Real servers the tests talk to (aiosmtpd for email), shared by both test targets.
        .target(name: "TestServers", path: "Tests/TestServers"),

        .testTarget(
            name: "CancelWatchTests",
            dependencies: [
                // `cancelwatch`: the benchmark's replicas workload runs the binary.
                "CancelWatch", "CancelWatchTesting", "MarketSim", "HTTPServing", "TestServers", "cancelwatch-bench", "cancelwatch",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["cancelwatch", "CancelWatch", "CancelWatchTesting", "MarketSim", "HTTPServing", "TestServers"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
