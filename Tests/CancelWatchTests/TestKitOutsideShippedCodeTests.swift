import CancelWatch
import Foundation
import Testing
import TestServers

/// What the package ships (the `cancelwatch` executable, the CancelWatch and MarketSim
/// libraries) never links the test kit, CancelWatchTesting: read from Package.swift as
/// SwiftPM itself reads it, following dependencies through every target of the package.
@Suite struct TestKitOutsideShippedCodeTests {
    static let kit = "CancelWatchTesting"

    /// `swift package dump-package`, in a scratch directory of its own: the package's
    /// `.build` is locked while `swift test` runs.
    static let manifest = Task<JSONValue, Error> {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("cw-manifest-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let root = RulesFixture.packageRoot.path
        let text = try await offPool {
            try runToEnd("/usr/bin/env", ["swift", "package", "--package-path", root, "--scratch-path", scratch.path, "dump-package"])
        }
        return try JSONParser.parse(text)
    }

    /// Every target of the package that `name` reaches through its dependencies, itself included.
    static func closure(of name: String, in manifest: JSONValue) throws -> Set<String> {
        let targets = try #require(manifest["targets"]?.arrayValue)
        var dependencies: [String: [String]] = [:]
        for target in targets {
            let name = try #require(target["name"]?.stringValue)
            // Each dependency is {"byName": [name, condition]}, {"target": [...]} or {"product": [name, package, ...]}.
            dependencies[name] = (target["dependencies"]?.arrayValue ?? []).compactMap {
                ($0["byName"] ?? $0["target"])?.arrayValue?.first?.stringValue
            }
        }
        var reached: Set<String> = []
        var next = [name]
        while let target = next.popLast() {
            guard dependencies[target] != nil, reached.insert(target).inserted else { continue }
            next += dependencies[target] ?? []
        }
        return reached
    }

    @Test func theShippedExecutableAndLibrariesDoNotLinkTheTestKit() async throws {
        let manifest = try await Self.manifest.value
        let products = try #require(manifest["products"]?.arrayValue)
        #expect(products.contains { $0["name"]?.stringValue == "cancelwatch" })
        for product in products {
            let name = product["name"]?.stringValue ?? "?"
            let roots = try #require(product["targets"]?.arrayValue).compactMap(\.stringValue)
            #expect(!roots.isEmpty, "\(name) names no target")
            for root in roots {
                #expect(!(try Self.closure(of: root, in: manifest)).contains(Self.kit), "product \(name) links \(Self.kit) through \(root)")
            }
        }
    }

    @Test func theCheckFindsTheKitWhereItIsLinkedAndFollowsDependenciesThrough() async throws {
        let manifest = try await Self.manifest.value
        // The kit is a target of the package, and the tests and the benchmark reach it.
        #expect(try Self.closure(of: "CancelWatchTests", in: manifest).contains(Self.kit))
        #expect(try Self.closure(of: "cancelwatch-bench", in: manifest).contains(Self.kit))
        // The executable names neither HTTPServing nor CCurl itself: it reaches them through CancelWatch.
        #expect(try Self.closure(of: "cancelwatch", in: manifest).isSuperset(of: ["cancelwatch", "CancelWatch", "MarketSim", "HTTPServing", "CCurl"]))
    }
}
