@testable import CancelWatch
import Foundation
import Testing

@testable import cancelwatch

/// `status`'s deliveries section from outbox figures, without a state file.
@Suite struct StatusViewTests {
    let now = Date(timeIntervalSince1970: 1_764_000_000)

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
                  2025-11-24 16:00:00  old  event e1, 3 attempts: HTTP 400:  [31mred [0m  second line

                """)
    }
}
