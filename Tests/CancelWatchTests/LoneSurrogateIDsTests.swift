import Foundation
import HTTPServing
import Testing

@testable import CancelWatch

/// Text is bytes end to end: ids that differ only by a lone surrogate escape (`\ud800`,
/// `\udbff`, `\udc00`) stay different strings, so two packages are two requests that both alert.
@Suite struct LoneSurrogateIDsTests {
    @Test func loneSurrogateEscapesParseToDistinctStrings() throws {
        let escapes = ["\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\ufffd"]
        let parsed = try escapes.map { escape -> String in
            let value = try JSONParser.parse(Data(#"{"id":"PKG\#(escape)A"}"#.utf8))
            return try #require(value["id"]?.stringValue)
        }
        #expect(Set(parsed.map { Array($0.utf8) }).count == escapes.count, "\(parsed.map { $0.unicodeScalars.map(\.value) })")
        #expect(parsed[0] == "PKG\u{F0000}A" && parsed[3] == "PKG\u{F07FF}A")
    }

    @Test func aLoneHighSurrogateKeepsTheEscapeThatFollowsIt() throws {
        #expect(try JSONParser.parse(Data(#""\ud800\u0041""#.utf8)) == .string("\u{F0000}A"))
        #expect(try JSONParser.parse(Data(#""\ud800\ud83d\ude00""#.utf8)) == .string("\u{F0000}😀"))
        #expect(try JSONParser.parse(Data(#""\ud83d\ude00\udc00""#.utf8)) == .string("😀\u{F0400}"))
    }

    @Test func twoRedPackagesThatDifferOnlyByALoneSurrogateAreTwoRequestsThatBothAlert() async throws {
        let item = { (id: String) in
            #"{"package_id":"\#(id)","cancel_time":1763999900,"status":"unaudited","logistics":"red_auto","max_audit_time":3600000,"cancel_reason":"x"}"#
        }
        let body = #"{"success":true,"error_code":0,"data":{"total_number":2,"current_page":1,"total_page":1,"page_size":2,"package_list":["#
            + item("PKG\\ud800A") + "," + item("PKG\\udbffA") + "]}}"
        let server = try ScriptedServer([{ _ in .json(text: body) }])
        let clock = ManualClock(Date(timeIntervalSince1970: 1_764_000_000))
        let client = RedClient(
            account: RedAccount(
                source: "red-shop", baseURL: server.baseURL, appKey: "red-app-key", appSecret: "red-secret-value",
                logistics: ["red_auto"], maxAuditTimeUnit: .milliseconds, pageSize: 2),
            transport: CurlHTTPTransport(threads: 1), clock: clock, retry: RetryPolicy(maxAttempts: 1, initialDelay: 0.01, maxDelay: 0.02))
        let snapshot = try await client.fetchPending()
        #expect(snapshot.requests.count == 2)
        #expect(Set(snapshot.requests.map(\.key)).count == 2, "\(snapshot.requests.map(\.id))")

        var tracker = LedgerStorage()
        let changes = tracker.apply(snapshot: snapshot, outcomes: [:], source: "red-shop", now: clock.now())
        let new = changes.compactMap { change -> String? in
            if case .new(let tracked) = change { return tracked.request.order }
            return nil
        }
        #expect(new.count == 2 && Set(new.map { Array($0.utf8) }).count == 2, "\(changes)")
        #expect(tracker.pending().count == 2)
    }
}
