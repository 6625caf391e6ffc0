import Foundation
import Testing

@testable import CancelWatch

/// One source's requests and alert states, as a replica reads them when it takes the source
/// over: that source's rows alone, told from the others by every byte of its name.
extension StateStoreContractTests {
    /// Names that a prefix, a pattern, a cut at a NUL, a Unicode form or a case would confuse.
    static let neighbouringSources = [
        "shop", "sho", "shop-2", "shop ", "Shop", "shop\u{0}", "shop\u{0}x", "\u{0}shop", "sh%", "sh_p", "shop\u{FFFD}",
        "caf\u{E9}", "cafe\u{301}", "",
    ]

    /// Two requests and three alert states in each of `sources`, and an alert state of a
    /// request that was never saved; committed at once.
    static func commitPerSource(_ sources: [String], to store: any ContractStore) throws -> [AlertState] {
        let requests = sources.flatMap { source in [Samples.tracked("1", source: source), Samples.tracked("shop", source: source)] }
        let alerts =
            requests.flatMap { item in ["r1", "r2"].map { AlertState(request: item.key, rule: $0, firings: 1, active: true) } }
            + sources.map { AlertState(request: RequestKey(source: $0, id: "never-saved"), rule: "r1", firings: 2) }
        try store.commit(StoreChanges(tracked: requests, alerts: alerts), at: Samples.now)
        return alerts
    }

    @Test(arguments: StoreKind.all)
    func loadingOneSourceGivesItsRequestsAndAlertStatesAloneBesideSourcesNamedAlmostAlike(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let alerts = try Self.commitPerSource(Self.neighbouringSources, to: store)
            let all = try store.loadTracked()
            for source in Self.neighbouringSources {
                let loaded = try store.loadTracked(source: source, keepingRaw: .everything)
                let expected = all.filter { sameBytes($0.request.source, source) }
                #expect(expected.count == 2, "\(Array(source.utf8))")
                #expect(Samples.bytes(of: loaded) == Samples.bytes(of: expected), "\(Array(source.utf8))")
                #expect(loaded.allSatisfy { sameBytes($0.key.source, source) }, "\(Array(source.utf8))")

                let loadedAlerts = try store.loadAlerts(source: source)
                #expect(loadedAlerts.count == 5, "\(Array(source.utf8))")
                #expect(Set(loadedAlerts) == Set(alerts.filter { sameBytes($0.request.source, source) }), "\(Array(source.utf8))")
                #expect(loadedAlerts.allSatisfy { sameBytes($0.request.source, source) }, "\(Array(source.utf8))")
            }
            #expect(try store.loadTracked(source: "sh", keepingRaw: .everything).isEmpty)
            #expect(try store.loadAlerts(source: "shop-").isEmpty)
        }
    }

    /// Sources whose names are the edge cases of the bytes contract (NUL, every control
    /// byte, escapes, U+FFFD, 64 KB) and random ones: each loads its own request alone.
    @Test(arguments: StoreKind.all)
    func loadingOneSourceByANameOfAnyBytesGivesThatSourcesRowsAlone(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let texts = Strings.samples(count: 40)
            let tracked = try texts.enumerated().map { try Self.textRequest($1, $0) }
            let alerts = texts.enumerated().map { index, text in AlertState(request: tracked[index].key, rule: text, firings: 1) }
            try store.commit(StoreChanges(tracked: tracked, alerts: alerts), at: Samples.now)
            for (index, item) in tracked.enumerated() {
                let source = item.request.source
                #expect(Samples.bytes(of: try store.loadTracked(source: source, keepingRaw: .everything)) == [Samples.bytes(of: item)], "sample \(index)")
                let loadedAlerts = try store.loadAlerts(source: source)
                #expect(loadedAlerts == [alerts[index]], "sample \(index)")
                #expect(loadedAlerts.map { Array($0.rule.utf8) } == [Array(texts[index].utf8)], "sample \(index)")
            }
        }
    }

    /// One source's requests come pruned as ``StateStore/loadTracked(keepingRaw:)`` prunes
    /// every request, with the whole object's change fingerprint.
    @Test(arguments: StoreKind.all)
    func loadingOneSourceKeepingRawPathsPrunesAsLoadingEveryRequestDoes(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let page = try Samples.fromPage(id: 7)
            let red = Samples.tracked("P2", source: "ozon\u{0}", marketplace: .xiaohongshu, raw: #"{"flag":true,"max_audit_time":3600}"#)
            let requests = [
                Samples.tracked("a", source: "ozon"), Samples.tracked("lacks-the-path", source: "ozon", raw: #"{"other":1}"#), page, red,
            ]
            try store.save(requests, health: nil)
            #expect(page.request.source == "ozon")

            for paths in [RawPaths([["nested", "flag"], ["extra", "n"]]), .none, .everything] {
                let every = try store.loadTracked(keepingRaw: paths)
                for source in ["ozon", "ozon\u{0}"] {
                    let loaded = try store.loadTracked(source: source, keepingRaw: paths).sorted { $0.key < $1.key }
                    let expected = every.filter { sameBytes($0.request.source, source) }.sorted { $0.key < $1.key }
                    #expect(!expected.isEmpty)
                    #expect(Samples.bytes(of: loaded) == Samples.bytes(of: expected), "\(paths) \(Array(source.utf8))")
                    #expect(loaded.map(\.rawKept) == expected.map(\.rawKept), "\(paths)")
                    #expect(loaded.map(\.rawFingerprint) == expected.map(\.rawFingerprint), "\(paths)")
                }
            }
            let pruned = try store.loadTracked(source: "ozon", keepingRaw: .none)
            #expect(pruned.allSatisfy { $0.request.raw == .object([:]) && $0.rawKept == RawPaths.none })
            #expect(pruned.first { $0.key == page.key }?.rawFingerprint == page.request.rawObject.changeFingerprint)
            #expect(page.request.rawObject.changeFingerprint != nil)
        }
    }
}
