import CancelWatchTesting
import Foundation
import HTTPServing
import Testing

@testable import CancelWatch

@Suite struct RedClientTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_764_000_000))
    let transport = CurlHTTPTransport(threads: 2)

    func client(_ server: ScriptedServer, unit: MaxAuditTimeUnit = .milliseconds, logistics: [String] = ["red_auto"]) -> RedClient {
        RedClient(
            account: RedAccount(
                source: "red-shop", baseURL: server.baseURL, appKey: "red-app-key", appSecret: "red-secret-value",
                logistics: logistics, maxAuditTimeUnit: unit, pageSize: 2),
            transport: transport, clock: clock,
            retry: RetryPolicy(maxAttempts: 3, initialDelay: 0.01, maxDelay: 0.02))
    }

    static func envelope(_ items: [JSONValue], page: Int = 1, totalPage: Int = 1) -> ServerResponse {
        let body: JSONValue = [
            "success": true, "error_code": 0,
            "data": [
                "total_number": .integer(Int64(items.count)), "current_page": .integer(Int64(page)),
                "total_page": .integer(Int64(totalPage)), "page_size": 2, "package_list": .array(items),
            ],
        ]
        return .json(body.serializedData())
    }

    static func unaudited(_ id: String, cancelTime: Int64 = 1_763_999_900, left: Int64 = 3_600_000, logistics: String = "red_auto")
        -> JSONValue
    {
        [
            "package_id": .string(id), "cancel_time": .integer(cancelTime), "status": "unaudited", "logistics": .string(logistics),
            "max_audit_time": .integer(left), "cancel_reason": "用户不想要了",
        ]
    }

    @Test func readsTheVendorsOwnExampleWithItsTrailingCommas() async throws {
        let fixture = try ScriptedServer.fixture("red-seed-response.json")
        let server = try ScriptedServer([{ _ in .json(fixture) }])
        let snapshot = try await client(server).fetchPending()
        let request = try #require(snapshot.requests.first)
        #expect(snapshot.requests.count == 1)  // the audited items in the example are not pending
        #expect(request.id == "P124394374937984@1471102500")
        #expect(request.order == "P124394374937984")
        #expect(request.reason == "用户不想要了")
        #expect(request.createdAt == Date(timeIntervalSince1970: 1_471_102_500))
        // 3600 read as milliseconds (the default): 3.6 seconds after the request was sent.
        #expect(request.deadline == clock.now().addingTimeInterval(3.6))
    }

    @Test func deadlineIsSendTimePlusMaxAuditTimeInTheConfiguredUnit() async throws {
        let server = try ScriptedServer(fallback: { _ in Self.envelope([Self.unaudited("P1", left: 7200)]) })
        let seconds = try #require(try await client(server, unit: .seconds).fetchPending().requests.first)
        #expect(seconds.deadline == clock.now().addingTimeInterval(7200))
        let millis = try #require(try await client(server, unit: .milliseconds).fetchPending().requests.first)
        #expect(millis.deadline == clock.now().addingTimeInterval(7.2))
    }

    @Test func signsEveryRequestAsTheVendorDescribes() async throws {
        let server = try ScriptedServer([{ _ in Self.envelope([Self.unaudited("P1")]) }])
        _ = try await client(server).fetchPending()
        let request = try #require(server.requests.first)
        #expect(request.path == "/ark/open_api/v0/packages/canceling/list")
        #expect(request.header("app-key") == "red-app-key")
        let timestamp = try #require(request.header("timestamp"))
        #expect(timestamp == "1764000000")
        // Recomputed independently: sorted key=value pairs (query + app-key + timestamp), path, '?', secret.
        var pairs = request.query.map { "\($0.name)=\($0.value)" }
        pairs.append("app-key=red-app-key")
        pairs.append("timestamp=\(timestamp)")
        pairs.sort()
        let plain = "/ark/open_api/v0/packages/canceling/list?" + pairs.joined(separator: "&") + "red-secret-value"
        #expect(request.header("sign") == Digest.md5Hex(plain))
        #expect(request.queryValue("status") == "unaudited")
        #expect(request.queryValue("logistics") == "red_auto")
        #expect(request.queryValue("page_no") == "1")
    }

    @Test func md5MatchesAKnownVector() {
        #expect(Digest.md5Hex("The quick brown fox jumps over the lazy dog") == "9e107d9d372bb6826bd81d3542a419d6")
    }

    @Test func pagesToTotalPageForEveryLogisticsMode() async throws {
        let server = try ScriptedServer(fallback: { request in
            let page = Int(request.queryValue("page_no") ?? "1") ?? 1
            let mode = request.queryValue("logistics") ?? "?"
            return Self.envelope(
                [Self.unaudited("\(mode)-\(page)-a", logistics: mode), Self.unaudited("\(mode)-\(page)-b", logistics: mode)],
                page: page, totalPage: 3)
        })
        let snapshot = try await client(server, logistics: ["red_auto", "red_box"]).fetchPending()
        #expect(snapshot.requests.count == 12)
        #expect(server.requests.count == 6)
        #expect(Set(snapshot.requests.map(\.logistics)) == ["red_auto", "red_box"])
    }

    @Test func aListThatIgnoresThePageNumberIsAnErrorNotAShortListing() async throws {
        // Every page_no answers page 1 again: what the later pages hold is unknown.
        let server = try ScriptedServer(fallback: { _ in
            Self.envelope([Self.unaudited("P1"), Self.unaudited("P2")], page: 1, totalPage: 3)
        })
        let error = await #expect(throws: PollError.self) { try await client(server).fetchPending() }
        #expect(error?.description.contains("repeated items of earlier pages") == true)
        #expect(server.requests.count == 2)
        // A page that only overlaps the one before it (the list moved while it was paged) is fine.
        let shifting = try ScriptedServer(fallback: { request in
            let page = Int(request.queryValue("page_no") ?? "1") ?? 1
            return page == 1
                ? Self.envelope([Self.unaudited("P1"), Self.unaudited("P2")], page: 1, totalPage: 2)
                : Self.envelope([Self.unaudited("P2"), Self.unaudited("P3")], page: 2, totalPage: 2)
        })
        let snapshot = try await client(shifting).fetchPending()
        #expect(snapshot.requests.map(\.order) == ["P1", "P2", "P3"])
    }

    @Test func aPackageAskedTwiceIsTwoRequests() async throws {
        let server = try ScriptedServer([
            { _ in Self.envelope([Self.unaudited("P1", cancelTime: 100), Self.unaudited("P1", cancelTime: 200)]) }
        ])
        let snapshot = try await client(server).fetchPending()
        #expect(snapshot.requests.map(\.id).sorted() == ["P1@100", "P1@200"])
    }

    @Test(arguments: [
        #"{"success": false, "error_code": 1001, "error_msg": "sign error", "data": null}"#,
        #"{"success": true, "error_code": 2005, "error_msg": "system busy"}"#,
    ])
    func envelopeFailuresUnderHTTP200AreErrors(_ body: String) async throws {
        let server = try ScriptedServer(fallback: { _ in .json(text: body) })
        let error = await #expect(throws: PollError.self) { try await client(server).fetchPending() }
        let text = try #require(error).description
        #expect(text.contains("red-shop"))
        #expect(text.contains(body.contains("1001") ? "error_code 1001: sign error" : "error_code 2005: system busy"))
        #expect(!text.contains("red-secret-value"))
        if body.contains("sign") { #expect(error?.kind == .auth) }
    }

    @Test func warnsOnceWhenValuesLookLikeTheOtherUnit() async throws {
        // Asked 100 s ago with 3600 left: as milliseconds that is 3.6 s, which looks like seconds.
        let server = try ScriptedServer(fallback: { _ in Self.envelope([Self.unaudited("P1", left: 3600), Self.unaudited("P2", left: 3500)]) })
        let client = client(server)
        let first = try await client.fetchPending()
        #expect(first.warnings.filter { $0.contains("look like seconds") }.count == 1)
        let second = try await client.fetchPending()
        #expect(second.warnings.isEmpty)
    }

    @Test func anItemThatCannotBeDecodedStaysListedByTheIDItsDecodingWouldGive() async throws {
        let broken: JSONValue = ["package_id": "P2", "cancel_time": "1763999800", "status": "unaudited", "max_audit_time": "soon"]
        let server = try ScriptedServer(fallback: { _ in Self.envelope([Self.unaudited("P1"), broken]) })
        let snapshot = try await client(server).fetchPending()
        #expect(snapshot.requests.map(\.id) == ["P1@1763999900"])
        // The id a successful decoding gives the same package and cancel time.
        var fixed = broken
        if case .object(var members) = fixed {
            members["max_audit_time"] = 1000
            fixed = .object(members)
        }
        let decoded = try RedWire.pendingRequest(from: fixed, source: "red-shop", sentAt: clock.now(), unit: .seconds, logistics: "red_auto")
        #expect(snapshot.skippedIDs == [decoded.id])
        #expect(snapshot.complete)
        #expect(snapshot.warnings.contains { $0.contains("P2") && $0.contains("max_audit_time") })
    }

    @Test(arguments: [
        ["cancel_time": 1_763_999_800, "status": "unaudited", "max_audit_time": 1000],
        ["package_id": "P2", "status": "unaudited", "max_audit_time": 1000],
        "P2",
    ] as [JSONValue])
    func anItemWithoutAReadableIDMakesTheListingIncomplete(_ broken: JSONValue) async throws {
        let server = try ScriptedServer(fallback: { _ in Self.envelope([Self.unaudited("P1"), broken]) })
        let snapshot = try await client(server).fetchPending()
        #expect(snapshot.requests.count == 1)
        #expect(snapshot.skippedIDs.isEmpty)
        #expect(!snapshot.complete)
    }

    @Test func anItemWithoutLogisticsTakesTheModeThatWasQueried() async throws {
        let server = try ScriptedServer(fallback: { request in
            var item = Self.unaudited("P-\(request.queryValue("logistics") ?? "?")")
            if case .object(var members) = item {
                members["logistics"] = nil
                item = .object(members)
            }
            return Self.envelope([item])
        })
        let snapshot = try await client(server, logistics: ["red_auto", "red_box"]).fetchPending()
        #expect(Dictionary(uniqueKeysWithValues: snapshot.requests.map { ($0.order, $0.logistics) }) == ["P-red_auto": "red_auto", "P-red_box": "red_box"])
    }

    @Test func aRetryIsSignedAfreshAndTheDeadlineCountsFromTheTryThatSucceeded() async throws {
        // The first try is refused for its rate ("Retry-After: 0" still waits the first
        // delay: no retry without a pause); seven seconds pass before the second.
        let server = try ScriptedServer(
            [{ _ in
                .json(
                    status: 429, text: #"{"success": false, "error_code": 429, "error_msg": "too many requests"}"#,
                    headers: ["Retry-After": "0"])
            }],
            fallback: { _ in Self.envelope([Self.unaudited("P1", left: 3_600_000)]) })
        let started = clock.now()
        let clock = self.clock
        let waker = Task {
            // The client is backing off on the test's clock: let seven seconds pass.
            try await waitFor { clock.sleeperCount > 0 }
            clock.advance(by: 7)
        }
        defer { waker.cancel() }
        let request = try #require(try await client(server).fetchPending().requests.first)
        #expect(request.deadline == started.addingTimeInterval(7 + 3600))
        let tries = server.requests
        #expect(tries.count == 2)
        #expect(tries.map { $0.header("timestamp") } == [String(Int64(started.timeIntervalSince1970)), String(Int64(started.timeIntervalSince1970) + 7)])
        for sent in tries {
            let timestamp = try #require(sent.header("timestamp"))
            let expected = RedSigner.sign(
                path: sent.path, query: sent.query.map { ($0.name, $0.value) }, appKey: "red-app-key", timestamp: timestamp,
                appSecret: "red-secret-value")
            #expect(sent.header("sign") == expected)
        }
    }

    @Test(arguments: ["1e300", "-1e300", "9223372036854775807", "\"1e30\""])
    func hugeAuditTimesWarnWithoutTrapping(_ left: String) async throws {
        for unit in [MaxAuditTimeUnit.milliseconds, .seconds] {
            let server = try ScriptedServer(fallback: { _ in
                .json(text: #"{"success": true, "error_code": 0, "data": {"total_page": 1, "package_list": [{"package_id": "P1", "cancel_time": 1763999990, "status": "unaudited", "max_audit_time": \#(left)}]}}"#)
            })
            let snapshot = try await client(server, unit: unit).fetchPending()
            #expect(snapshot.requests.count == 1)
            if unit == .seconds, !left.hasPrefix("-") {
                #expect(snapshot.warnings.contains { $0.contains("look like milliseconds") }, "\(snapshot.warnings)")
            }
        }
    }

    @Test func hugeAuditTimesInTheAuditedListDoNotTrap() async throws {
        let now = Int64(clock.now().timeIntervalSince1970)
        let server = try Self.listServer(audited: [
            ["package_id": "P1", "cancel_time": .integer(now - 60), "status": "audited", "audit_result": "canceled", "audit_time": .integer(.max)],
            ["package_id": "P2", "cancel_time": .integer(now - 60), "status": "audited", "audit_result": "refused", "audit_time": 1e300],
        ])
        let asked = [pending("P1", now - 60), pending("P2", now - 60)]
        let outcomes = try await client(server).lookupOutcomes(of: asked)
        #expect(outcomes[asked[0].key] == .resolved(.approved, at: nil))
        #expect(outcomes[asked[1].key] == .resolved(.rejected, at: nil))
    }

    @Test func credentialsEchoedInAnErrorNeverReachTheMessage() async throws {
        // A gateway that echoes what it was sent: the secret would only be there if the vendor
        // logged it, but the app key and the signature are headers of every request.
        let server = try ScriptedServer(fallback: { request in
            let echo = "app-key=\(request.header("app-key") ?? "") sign=\(request.header("sign") ?? "") secret=red-secret-value"
            if request.queryValue("logistics") == "red_auto" {
                return .json(text: #"{"success": false, "error_code": 1001, "error_msg": "bad request: \#(echo)"}"#)
            }
            // The app key straddles the end of the excerpt: it must not show cut short either.
            return .text(status: 400, String(repeating: "x", count: 154) + (request.header("app-key") ?? "") + " " + echo)
        })
        for logistics in ["red_auto", "red_box"] {
            let error = await #expect(throws: PollError.self) { try await client(server, logistics: [logistics]).fetchPending() }
            let text = try #require(error).description
            #expect(text.contains("<redacted>"), "\(text)")
            #expect(!text.contains("red-secret-value"))
            #expect(!text.contains("red-ap"))
            for sign in server.requests.compactMap({ $0.header("sign") }) {
                #expect(!text.contains(sign.prefix(8)), "\(text)")
            }
        }
    }

    func pending(_ id: String, _ time: Int64, logistics: String = "red_auto") -> CancellationRequest {
        CancellationRequest(
            marketplace: .xiaohongshu, source: "red-shop", id: "\(id)@\(time)", order: id, state: .pending,
            rawState: "unaudited", logistics: logistics, createdAt: Date(timeIntervalSince1970: TimeInterval(time)),
            deadline: clock.now().addingTimeInterval(3600))
    }

    static func audited(_ id: String, cancelTime: Int64, result: String = "canceled", at auditTime: Int64) -> JSONValue {
        [
            "package_id": .string(id), "cancel_time": .integer(cancelTime), "status": "audited", "logistics": "red_auto",
            "audit_result": .string(result), "audit_time": .integer(auditTime), "audit_reason": "同意取消",
        ]
    }

    /// A list server over fixed items. `auditedBy`: which time the `audited` list's window
    /// filters on (the vendor's page says the cancel time; nobody has said it cannot be the audit time).
    static func listServer(
        unaudited: [JSONValue] = [], audited: [JSONValue] = [], auditedBy timeField: String = "cancel_time"
    ) throws -> ScriptedServer {
        try ScriptedServer(fallback: { request in
            let status = request.queryValue("status")
            let start = request.queryValue("start_time").flatMap { Int64($0) } ?? .min
            let end = request.queryValue("end_time").flatMap { Int64($0) } ?? .max
            let field = status == "audited" ? timeField : "cancel_time"
            let items = (status == "audited" ? audited : unaudited).filter { item in
                if let mode = item["logistics"]?.stringValue, mode != request.queryValue("logistics") { return false }
                guard let time = item[field]?.lenientInt64 else { return true }
                return (start...end).contains(time)
            }
            return envelope(items)
        })
    }

    @Test func outcomesComeFromTheAuditedListAndAnUnlistedRequestVanished() async throws {
        let now = Int64(clock.now().timeIntervalSince1970)
        let server = try Self.listServer(audited: [
            Self.audited("P1", cancelTime: now - 300, at: now - 250),
            Self.audited("P2", cancelTime: now - 200, result: "refused", at: now - 150),
        ])
        let asked = [pending("P1", now - 300), pending("P2", now - 200), pending("P3", now - 100)]
        let outcomes = try await client(server).lookupOutcomes(of: asked)
        #expect(outcomes[asked[0].key] == .resolved(.approved, at: Date(timeIntervalSince1970: TimeInterval(now - 250))))
        #expect(outcomes[asked[1].key] == .resolved(.rejected, at: Date(timeIntervalSince1970: TimeInterval(now - 150))))
        #expect(outcomes[asked[2].key] == .resolved(.vanished, at: nil))
        // Unaudited first, then audited, each from the earliest cancel time less a second to now.
        let searched = server.requests.map { $0.queryValue("status") ?? "" }
        #expect(searched.prefix(2) == ["unaudited", "audited"])
        for request in server.requests.prefix(2) {
            #expect(request.queryValue("start_time") == String(now - 301))
            #expect(request.queryValue("end_time").flatMap { Int64($0) }.map { $0 >= now } == true)
        }
        // P3, found nowhere, is searched once more before it is called vanished.
        #expect(server.requests.dropFirst(2).map { $0.queryValue("start_time") } == [String(now - 101), String(now - 101)])
    }

    @Test func anOutcomeGoesToTheRequestWhoseIDHasItsBytes() async throws {
        // Two packages whose ids are equal as Swift text ("é" composed, and "e" with a combining
        // accent), one audited: only that one is resolved; the other is not found.
        let now = Int64(clock.now().timeIntervalSince1970)
        let server = try Self.listServer(audited: [Self.audited("P\u{E9}", cancelTime: now - 300, at: now - 250)])
        let asked = [pending("P\u{E9}", now - 300), pending("Pe\u{301}", now - 300)]
        let outcomes = try await client(server).lookupOutcomes(of: asked)
        #expect(outcomes[asked[0].key] == .resolved(.approved, at: Date(timeIntervalSince1970: TimeInterval(now - 250))))
        #expect(outcomes[asked[1].key] == .resolved(.vanished, at: nil))
    }

    @Test func aRequestAuditedLongAfterItWasAskedIsFoundWhicheverTimeTheWindowFilters() async throws {
        // Asked an hour and a half ago, audited ten seconds ago: a window over the cancel times
        // alone misses it when the API filters the audited list by audit time.
        let now = Int64(clock.now().timeIntervalSince1970)
        for field in ["cancel_time", "audit_time"] {
            let server = try Self.listServer(audited: [Self.audited("P1", cancelTime: now - 5400, at: now - 10)], auditedBy: field)
            let asked = pending("P1", now - 5400)
            let outcomes = try await client(server).lookupOutcomes(of: [asked])
            #expect(outcomes[asked.key] == .resolved(.approved, at: Date(timeIntervalSince1970: TimeInterval(now - 10))), "\(field)")
        }
    }

    @Test func theSearchIsInWindowsOfAtMostSevenDaysFromTheEarliestCancelTimeToNow() async throws {
        let now = Int64(clock.now().timeIntervalSince1970)
        let server = try Self.listServer()
        let asked = [pending("P1", now - 20 * 86400), pending("P2", now - 3600), pending("P3", now - 86400, logistics: "red_box")]
        _ = try await client(server).lookupOutcomes(of: asked)
        for logistics in ["red_auto", "red_box"] {
            for status in ["unaudited", "audited"] {
                let calls = server.requests.filter { $0.queryValue("status") == status && $0.queryValue("logistics") == logistics }
                let windows = calls.compactMap { call -> ClosedRange<Int64>? in
                    guard let start = call.queryValue("start_time").flatMap({ Int64($0) }),
                        let end = call.queryValue("end_time").flatMap({ Int64($0) })
                    else { return nil }
                    return start...end
                }
                #expect(windows.count == calls.count && !windows.isEmpty)
                // Searched twice (nothing was found the first time): each search covers the span once.
                let first = Array(windows.prefix(windows.count / 2))
                #expect(first.first?.lowerBound == (logistics == "red_auto" ? now - 20 * 86400 - 1 : now - 86400 - 1))
                #expect((first.last?.upperBound ?? 0) >= now)
                for (a, b) in zip(first, first.dropFirst()) { #expect(b.lowerBound == a.upperBound + 1) }
                #expect(first.allSatisfy { $0.upperBound - $0.lowerBound < 7 * 86400 })
                #expect(first.count == (logistics == "red_auto" ? 3 : 1))
            }
        }
    }

    @Test func aRequestStillListedUnauditedComesBackStillPendingWithItsQueriedMode() async throws {
        var item = Self.unaudited("P1", cancelTime: 1_763_999_000, left: 600_000)
        if case .object(var members) = item {
            members["logistics"] = nil
            item = .object(members)
        }
        let server = try Self.listServer(unaudited: [item])
        let asked = pending("P1", 1_763_999_000, logistics: "red_box")
        let outcomes = try await client(server).lookupOutcomes(of: [asked])
        guard case .stillPending(let still)? = outcomes[asked.key] else {
            Issue.record("expected still pending, got \(String(describing: outcomes[asked.key]))")
            return
        }
        #expect(still.id == asked.id)
        #expect(still.deadline == clock.now().addingTimeInterval(600))
        #expect(still.logistics == "red_box")
        #expect(server.requests.allSatisfy { $0.queryValue("logistics") == "red_box" })
    }

    @Test func aListThatShiftedWhileItWasPagedIsSearchedAgainBeforeARequestIsCalledVanished() async throws {
        // P2 is on page 2 of the unaudited list; between the two pages P0 is audited and leaves
        // it, so P2 moves up to page 1, which was already read. The next search finds it.
        let counter = Counter()
        let server = try ScriptedServer(fallback: { request in
            let page = Int(request.queryValue("page_no") ?? "1") ?? 1
            guard request.queryValue("status") == "unaudited" else {
                return Self.envelope([Self.audited("P0", cancelTime: 1_763_999_000, at: 1_763_999_990)])
            }
            let shifted = counter.next() > 1
            switch (shifted, page) {
            case (false, _): return Self.envelope([Self.unaudited("P0", cancelTime: 1_763_999_000), Self.unaudited("P1")], page: 1, totalPage: 2)
            case (true, 1): return Self.envelope([Self.unaudited("P1"), Self.unaudited("P2")], page: 1, totalPage: 1)
            default: return Self.envelope([], page: page, totalPage: 1)
            }
        })
        let asked = pending("P2", 1_763_999_900)
        let outcomes = try await client(server).lookupOutcomes(of: [asked])
        guard case .stillPending? = outcomes[asked.key] else {
            Issue.record("expected still pending, got \(String(describing: outcomes[asked.key]))")
            return
        }
    }

    @Test func anUnreadableItemInTheSearchLeavesTheRequestsOfItsModeUndecided() async throws {
        let server = try Self.listServer(audited: [["status": "audited", "audit_result": "canceled", "logistics": "red_auto"]])
        let asked = [pending("P1", 1_763_999_000), pending("P2", 1_763_999_000, logistics: "red_box")]
        let outcomes = try await client(server).lookupOutcomes(of: asked)
        // The item without an id may be P1 (red_auto is where it was listed): not vanished, not known.
        #expect(outcomes[asked[0].key] == nil)
        #expect(outcomes[asked[1].key] == .resolved(.vanished, at: nil))
    }

    @Test func aRequestWithoutAUsableCancelTimeIsNotLookedUp() async throws {
        let server = try Self.listServer()
        var asked = pending("P1", 1_763_999_000)
        asked.createdAt = nil
        let outcomes = try await client(server).lookupOutcomes(of: [asked])
        #expect(outcomes.isEmpty)
        #expect(server.requests.isEmpty)
    }
}

/// Counts calls from any thread.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func next() -> Int { lock.withLock { count += 1; return count } }
}

extension RedClientTests {
    /// A request's id is written in one go from its parts: the same text as joining them.
    @Test func aRequestIDIsThePackageAnAtAndTheCancelTime() {
        for (package, time) in [
            ("P1", Int64(1_763_999_900)), ("P100000000000000", 0), ("包裹-1", 7), ("", 42), ("X", -5), ("Y", Int64.min), ("Z", Int64.max),
        ] {
            #expect(RedWire.requestID(packageID: package, cancelTime: time) == package + "@" + String(time))
        }
    }
}
