import Foundation
import Testing

@testable import CancelWatch

/// Instants and durations no marketplace should send, but one might: formatting them,
/// or an event about them, never traps.
@Suite struct ExtremeValuesTests {
    static let extremes: [Double] = [1e300, -1e300, .infinity, -.infinity, .nan, 9.3e18, -9.3e18, 1e12, 0]

    @Test(arguments: extremes)
    func durationsAndInstantsFormatWithoutTrapping(_ value: Double) {
        #expect(!DurationText.format(value).isEmpty)
        #expect(!DurationText.spell(value).isEmpty)
        let written = Timestamp.format(Date(timeIntervalSince1970: value))
        if value.isFinite && abs(value) < 1e12 {
            #expect(written.wholeMatch(of: /-?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\dZ/) != nil, "\(written)")
        } else {
            #expect(written.contains("out of range"), "\(written)")
        }
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
        #expect(event.remainingSeconds == Int64(clampingFloor: value - 1_764_000_000))
        #expect(throws: Never.self) { try JSONParser.parse(event.webhookBody.serialized()) }
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
