import CancelWatch
import Foundation
import Testing

/// A marketplace or a receiver answering with a huge error text costs a bounded line of
/// log and a bounded `last_error`, not megabytes of each.
@Suite struct HugeErrorTextTests {
    static let megabytes = 5

    @Test func aFiveMegabyteMarketplaceErrorIsABoundedLogLineAndLastError() async throws {
        let marketplace = try WebhookReceiver()
        defer { marketplace.stop() }
        let message = "rejected: " + String(repeating: "Ж", count: Self.megabytes << 19)
        marketplace.setMode(.reply(status: 400, body: #"{"code":3,"message":"\#(message)"}"#))
        let setup = try WatchSetup(ozon: 0, red: 0, options: WatchOptions())
        defer { setup.shutdown() }
        try """
            state: ./state.sqlite
            rules: [./rules]
            sources:
              - {name: huge, kind: ozon, client_id: "1", api_key: "huge-key", base_url: "\(marketplace.url)",
                 poll_interval: 1s, timeout: 10s}
            sinks:
              - {name: hook, kind: webhook, url: "\(setup.receiver.url)", timeout: 3s}
            health: {notify: [hook], down_after: 2}
            """.write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        let run = try setup.startRun()

        let down = WatchSetup.healthID(source: "huge", kind: .sourceDown)
        try await eventually("source_down for the source\n\(run.stderr.prefix(2000))") { setup.receiver.acknowledged.contains(down) }
        #expect(try await run.stop() == 0)
        let longest = run.stderr.split(separator: "\n").map(\.utf8.count).max() ?? 0
        #expect(longest <= 8192, "a log line of \(longest) bytes")
        #expect(run.stderr.contains("rejected: ЖЖЖ"), "the error's start is logged")
        let lastError = try #require(
            StateFileReader.rows(setup.statePath, "SELECT last_error FROM source_health WHERE source = 'huge'").first?.first)
        #expect(lastError.contains("rejected: ЖЖЖ"))
        #expect(lastError.utf8.count <= 4096, "last_error of \(lastError.utf8.count) bytes")
        #expect(!lastError.unicodeScalars.contains("\u{FFFD}"), "cut inside a character")
        let event = try #require(setup.receiver.acknowledgedReceipts.first { $0.id == down })
        #expect(event.message.utf8.count <= 8192, "a source_down message of \(event.message.utf8.count) bytes")
    }
}
