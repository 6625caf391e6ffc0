@testable import CancelWatch
import Foundation
import Testing

@testable import cancelwatch

/// `status`'s deliveries section from outbox figures, without a state file.
@Suite struct StatusViewTests {
    let now = Date(timeIntervalSince1970: 1_764_000_000)

    @Test func marketplaceTextCannotBreakTheTableOrReachTheTerminal() {
        let request = CancellationRequest(
            marketplace: .ozon, source: "ozon", id: "1", order: "1-1\u{1B}[2J", state: .pending, rawState: "ON_APPROVAL",
            initiator: "CLIENT\r\n", reason: "Передумал\u{2028}\u{1B}[31mпокупать", deadline: now.addingTimeInterval(3600))
        var health = SourceHealth(source: "ozon", marketplace: .ozon)
        health.consecutiveFailures = 2
        health.lastError = "HTTP 500: \u{1B}]0;owned\u{7}\nmore"
        let text = StatusView.table([request], health: [health], sources: ["ozon"], now: now, timeZone: .gmt)
        #expect(!text.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || $0.value == 0x2028 || $0.value == 0x7F }, "\(text)")
        #expect(text.split(separator: "\n").count == 5, "\(text)")  // header, the row, the count, "Sources:", the source
        #expect(text.contains("1-1 [2J") && text.contains("Передумал [31mпокупать") && text.contains("HTTP 500: ]0;owned more"))
    }

    @Test func sinksWithNothingAndSinksNoLongerConfiguredAreSaidSo() {
        #expect(StatusView.deliveries(.init(counts: [], latestDead: []), sinks: [], now: now, timeZone: .gmt) == "\nDeliveries:\n  no sinks\n")
        let deliveries = StatusView.Deliveries(
            counts: [
                OutboxCount(sink: "hook", status: "delivered", count: 9), OutboxCount(sink: "hook", status: "pending", count: 2),
                OutboxCount(sink: "old", status: "dead", count: 7),
            ],
            latestDead: [
                DeadLetter(
                    eventID: "e1", sink: "old", event: nil, attempts: 3, at: now,
                    error: "HTTP 400: \u{1B}[31mred\u{1B}[0m\r\nsecond line")
            ])
        let text = StatusView.deliveries(deliveries, sinks: ["hook", "mail"], now: now, timeZone: .gmt)
        #expect(
            text == """

                Deliveries:
                  hook: 2 waiting
                  mail: ok
                  old (no longer configured): 7 DEAD LETTERS (never delivered)

                Dead letters (latest 1 of 7, newest first):
                  2025-11-24 16:00:00  old  event e1, 3 attempts: HTTP 400: [31mred [0m second line

                """)
    }

    /// A dead group is one dead letter, read as its list's first line; its members count as `grouped`.
    @Test func aDeadGroupIsOneDeadLetterSayingHowManyRequestsItCarried() {
        let members = (1...3).map { index in
            AlertEvent(
                id: "m\(index)", kind: .firing, rule: "final-hour", severity: .warning, source: "ozon", marketplace: .ozon,
                request: CancellationRequest(
                    marketplace: .ozon, source: "ozon", id: "\(index)", order: "1-\(index)", state: .pending, rawState: "ON_APPROVAL",
                    initiator: "CLIENT", reason: "", deadline: now.addingTimeInterval(TimeInterval(3600 * index))),
                occurredAt: now, message: "", sinks: ["tg"])
        }
        let group = AlertEvent.group(members, sink: "tg", at: now)
        let deliveries = StatusView.Deliveries(
            counts: [OutboxCount(sink: "tg", status: "dead", count: 1), OutboxCount(sink: "tg", status: "grouped", count: 3)],
            latestDead: [DeadLetter(eventID: group.id, sink: "tg", event: group, attempts: 1, at: now, error: "HTTP 400: chat not found")])
        let text = StatusView.deliveries(deliveries, sinks: ["tg"], now: now, timeZone: .gmt)
        #expect(text.contains("  tg: 1 DEAD LETTER (never delivered)\n"), "\(text)")
        #expect(
            text.hasSuffix(
                "Dead letters (1, newest first):\n"
                    + "  2025-11-24 16:00:00  tg  group 3 cancellation requests, earliest deadline in 1h 00m, 1 attempt: HTTP 400: chat not found\n"),
            "\(text)")
    }
}

/// A webhook that refuses every event for good (404): the events become dead letters, and
/// `status` (the real binary, on the state file `once` wrote) says so per sink and lists them.
@Suite(.serialized) struct DeadLetterStatusEndToEndTests {
    @Test func statusShowsASinksDeadLetters() async throws {
        var options = WatchOptions()
        options.red = false
        options.extraSinks = "  - {name: quiet, kind: stdout}"
        let setup = try WatchSetup(ozon: 2, red: 0, options: options)
        defer { setup.shutdown() }
        setup.receiver.setMode(.fail(status: 404, retryAfter: nil))

        let once = try await setup.command(["once", "--config", setup.configPath])
        #expect(once.status == 0, "once failed: \(once.stderr)")
        #expect(once.stderr.contains("dead letter"))
        #expect(setup.receiver.allReceipts.count == 2, "a 404 is not retried")

        let status = try await setup.command(["status", "--config", setup.configPath])
        #expect(status.status == 0, "status failed: \(status.stderr)")
        let text = status.stdout
        #expect(text.contains("2 pending"), "\(text)")
        #expect(text.contains("\nDeliveries:\n  hook: 2 DEAD LETTERS (never delivered)\n  quiet: ok\n"), "\(text)")
        #expect(text.contains("Dead letters (2, newest first):"), "\(text)")
        let lines = text.split(separator: "\n").filter { $0.contains("  hook  firing pending ozon ") }
        #expect(lines.count == 2 && lines.allSatisfy { $0.contains("1 attempt: HTTP 404") }, "\(text)")
    }
}
