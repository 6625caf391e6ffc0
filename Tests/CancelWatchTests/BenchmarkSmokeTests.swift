import CancelWatch
import Foundation
import Testing
import TestServers

@testable import cancelwatch_bench

/// The benchmark's workloads at tiny sizes: they run and agree with each other. No timing
/// is asserted (the numbers live in BENCHMARKS.md).
@Suite struct BenchmarkSmokeTests {
    @Test func ingestMatchesThePythonScript() async throws {
        let rules = try loadShippedRules()
        #expect(rules.count == 4)
        let corpus = IngestCorpus.generate(ozonAccounts: 1, ozonPages: 1, redAccounts: 1, redPages: 2)
        var tracker = LedgerStorage()
        let first = try await ingestPass(clients: corpus.clients(), rules: rules, now: corpus.now, tracker: &tracker)
        #expect(first.requests == 700)
        #expect(first.tracked == 700)
        #expect(first.matches > 0)
        // Every stage ran, and the stages fit in the pass.
        #expect(first.stages.fetch > 0 && first.stages.apply > 0 && first.stages.rules > 0)
        #expect(Double(first.stages.fetch + first.stages.apply + first.stages.rules) / 1e9 <= first.seconds)
        let again = try await ingestPass(clients: corpus.clients(), rules: rules, now: corpus.now, tracker: &tracker)
        #expect(again.requests == 700 && again.matches == first.matches && again.tracked == 700)
        // Polled together, as the watcher polls: the same requests tracked, the same matches.
        var fresh = LedgerStorage()
        let together = try await concurrentIngestPass(clients: corpus.clients(), rules: rules, now: corpus.now, tracker: &fresh)
        #expect(together.requests == 700 && together.tracked == 700 && together.matches == first.matches)
        // The floors read every page: every byte checked, every page's members built (an
        // Ozon page and its end page have 3, a RED envelope 4).
        #expect(try scanOnlyPass(corpus: corpus).bytes == corpus.bytes)
        let pages = corpus.accounts.map { $0.marketplace == .ozon ? 3 * $0.pages.count : 4 * $0.pages.count }
        #expect(try parseOnlyPass(corpus: corpus).members == pages.reduce(0, +))

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bench-smoke-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try corpus.write(to: directory)
        // (`runPython` waits for the script on a thread of its own, off the cooperative pool.)
        let python = try await runPython(directory: directory, parseOnly: false, repeats: 1)
        #expect(python.requests == first.requests)
        #expect(python.matches == first.matches)
        _ = try await runPython(directory: directory, parseOnly: true, repeats: 1)  // throws unless it gives its time
    }

    @Test func rulesEvaluate() async throws {
        let rules = try loadShippedRules()
        let corpus = IngestCorpus.generate(ozonAccounts: 1, ozonPages: 1, redAccounts: 0, redPages: 0)
        let requests = try await corpus.clients()[0].fetchPending().requests
        let outcome = rulesPass(requests: requests, rules: rules, evaluations: 4000, base: corpus.now)
        #expect(outcome.evaluations == 4000)
        #expect(outcome.matches > 0 && outcome.matches < 4000)
    }

    @Test func scaleTracksEveryRequest() async throws {
        let plain = try await scalePass(count: 1000)
        #expect(plain.count == 1000 && plain.pending == 1000)
        #expect(plain.rss > 0 && plain.peak >= plain.rss)
        let scheduled = try await scalePass(count: 500, dropRaw: true)
        #expect(scheduled.pending == 500)
    }

    @Test func onTimeDeliversEveryFiring() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bench-smoke-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let outcome = try await onTimePass(
            count: 20, window: 0.5, lead: 0.5, statePath: directory.appendingPathComponent("state.sqlite").path,
            grace: 180)  // a loaded machine once delivered 16 of 20 within 30 s; only the count is checked here
        #expect(outcome.delivered == 20)
        #expect(outcome.delays.allSatisfy { $0 >= 0 })
    }

    @Test func fleetPollsEveryAccount() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bench-smoke-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let outcome = try await fleetPass(
            ozon: 2, red: 2, perAccount: 120, statePath: directory.appendingPathComponent("state.sqlite").path, curlThreads: 2)
        #expect(outcome.accounts == 4)
        #expect(outcome.failures == 0)
        #expect(outcome.pending == 480)
        #expect(outcome.httpCalls == 2 * 1 + 2 * 2)
    }

    @Test func replicasShareTheFleetAndEachConfigurationIsMeasured() async throws {
        let cluster = try await offPool { try PostgresCluster.shared() }
        let outcomes = try await replicasPass(ozon: 2, red: 2, perAccount: 10, replicas: [1, 2], cluster: cluster, nextCycles: 1)
        #expect(outcomes.map(\.replicas) == [1, 2])
        for outcome in outcomes {
            #expect(outcome.accounts == 4)
            #expect(outcome.tracked == 40)
            #expect(outcome.first.polls >= 4)
            #expect(outcome.held.count == outcome.replicas && outcome.held.reduce(0, +) == 4)
            #expect(outcome.next.polls >= 4)
            // Each replica and the simulator used CPU, counted per process. PostgreSQL's share of
            // 40 requests can be under one clock tick (it was measured as 0 once): only read, never negative.
            #expect(outcome.first.cpu.replicas.count == outcome.replicas && outcome.first.cpu.replicas.allSatisfy { $0 > 0 })
            #expect(outcome.first.cpu.postgres >= 0 && outcome.first.cpu.postgres.isFinite && outcome.first.cpu.simulator > 0)
            #expect(outcome.first.wall > 0 && outcome.next.wall > 0)
        }
    }
}
