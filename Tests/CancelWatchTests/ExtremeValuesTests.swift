import CancelWatchTesting
import Foundation
import Testing

@testable import CancelWatch

/// Instants and durations no marketplace should send, but one might: formatting them,
/// or an event about them, never traps.
@Suite struct ExtremeValuesTests {
    static let extremes: [Double] = [1e300, -1e300, .infinity, -.infinity, .nan, 9.3e18, -9.3e18, 1e12, 0]

    @Test(arguments: extremes)
    func durationsAndInstantsFormatWithoutTrapping(_ value: Double) {
        _ = DurationText.format(value)
        _ = DurationText.spell(value)
        _ = Timestamp.format(Date(timeIntervalSince1970: value))
        _ = Int64(clampingFloor: value)
    }

    @Test func clampingFloorRoundsDownAndClamps() {
        #expect(Int64(clampingFloor: 1.9) == 1)
        #expect(Int64(clampingFloor: -1.1) == -2)
        #expect(Int64(clampingFloor: .nan) == 0)
        #expect(Int64(clampingFloor: 1e300) == 9_000_000_000_000_000_000)
        #expect(Int64(clampingFloor: -.infinity) == -9_000_000_000_000_000_000)
    }

    @Test(arguments: extremes)
    func anEventAboutARequestWithAnyDeadlineHasItsRemainingSeconds(_ value: Double) {
        let request = CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: "1", order: "o-1", state: .pending, rawState: "ON_APPROVAL",
            deadline: Date(timeIntervalSince1970: value))
        let event = AlertEvent(
            id: "e", kind: .firing, rule: "r", severity: .info, source: "ozon-main", marketplace: .ozon, request: request,
            occurredAt: Date(timeIntervalSince1970: 1_764_000_000), message: "m", sinks: [])
        _ = event.remainingSeconds
        _ = event.webhookBody.serialized()
    }

    @Test func timestampsAreWrittenAsFoundationWritesThem() {
        let formatter = ISO8601DateFormatter()
        var random = SystemRandomNumberGenerator()
        // 1583-01-01 ... 9999-12-31 (before 1583 Foundation writes Julian dates; RFC 3339 is proleptic Gregorian)
        for _ in 0..<2000 {
            let date = Date(timeIntervalSince1970: Double(Int64.random(in: -12_212_553_600...253_402_300_799, using: &random)))
            #expect(Timestamp.format(date) == formatter.string(from: date))
        }
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1_764_000_000.9)) == "2025-11-24T16:00:00Z")
    }
}
