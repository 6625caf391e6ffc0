// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "cancelwatch",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "cancelwatch", targets: ["cancelwatch"]),
        .library(name: "CancelWatch", targets: ["CancelWatch"]),
        .library(name: "MarketSim", targets: ["MarketSim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // System libraries: libcurl (HTTP and SMTP), SQLite (state), libcrypto (MD5/HMAC).
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // A small HTTP/1.1 server on POSIX sockets: the simulator, /metrics, test receivers.
        .target(name: "HTTPServing"),

        // The engine: no command line, no test helpers.
        .target(
            name: "CancelWatch",
            dependencies: [
                "CCurl", "CSQLite", "CCrypto", "HTTPServing",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),

        // The simulator of both marketplaces.
        .target(name: "MarketSim", dependencies: ["CancelWatch", "HTTPServing"]),

        // Test support: manual clock, in-memory sink, fixtures.
        .target(name: "CancelWatchTesting", dependencies: ["CancelWatch"]),

        .executableTarget(
            name: "cancelwatch",
            dependencies: [
                // CancelWatchTesting: `cancelwatch test` runs rules on its ManualClock.
                "CancelWatch", "CancelWatchTesting", "MarketSim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Benchmarks: `swift run -c release cancelwatch-bench [--quick]` (BENCHMARKS.md).
        .executableTarget(
            name: "cancelwatch-bench",
            dependencies: [
                "CancelWatch", "CancelWatchTesting", "MarketSim",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Real servers the tests talk to (aiosmtpd for email), shared by both test targets.
        .target(name: "TestServers", path: "Tests/TestServers"),

        .testTarget(
            name: "CancelWatchTests",
            dependencies: ["CancelWatch", "CancelWatchTesting", "MarketSim", "HTTPServing", "TestServers", "cancelwatch-bench"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["cancelwatch", "CancelWatch", "CancelWatchTesting", "MarketSim", "HTTPServing", "TestServers"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
