import Foundation
import MarketSim
import Testing
@testable import CancelWatch

@Suite struct RulesEvaluatorTests {
    let deadline = RulesFixture.deadline

    private func matches(_ condition: String, _ request: CancellationRequest = RulesFixture.request(), at now: Date? = nil,
        timeZone: TimeZone = RulesFixture.utc) throws -> Bool
    {
        let rule = try #require(RulesFixture.rule(condition, timeZone: timeZone), "\(condition) does not compile")
        return rule.matches(request, now: now ?? deadline.addingTimeInterval(-3000))
    }

    // MARK: Strings

    @Test func stringFieldsCompareByEqualityOrderAndMembership() throws {
        let r = RulesFixture.request()
        #expect(try matches(#"marketplace == "ozon""#, r))
        #expect(try !matches(#"marketplace == "xiaohongshu""#, r))
        #expect(try matches(#"marketplace != "xiaohongshu""#, r))
        #expect(try matches(#"state == "pending""#, r))
        #expect(try matches(#"source == "ozon-main" and id == "c-1" and order == "0123-4567-1""#, r))
        #expect(try matches(#"raw_state == "ON_APPROVAL" and logistics == """#, r))
        #expect(try matches(#"initiator in ["SELLER", "CLIENT"]"#, r))
        #expect(try !matches(#"initiator not in ["SELLER", "CLIENT"]"#, r))
        #expect(try matches(#"order < "1""#, r))
        #expect(try matches(#"order >= "0123""#, r))
        #expect(try matches(#""CLIENT" in initiator"#, r))  // text inside the field
    }

    @Test func containsAndMatchesLookInsideText() throws {
        let r = RulesFixture.request(reason: "Wrong size, 太小")
        #expect(try matches(#"reason contains "size""#, r))
        #expect(try matches(#"reason contains "太小""#, r))
        #expect(try !matches(#"reason contains "Size""#, r))
        #expect(try matches(#"reason not contains "colour""#, r))
        #expect(try matches(#"reason matches "^Wrong (size|colour)""#, r))
        #expect(try matches(#"reason matches "(?i)SIZE""#, r))
        #expect(try !matches(#"reason matches "^size""#, r))
        #expect(try matches(#"reason not matches "^size""#, r))
    }

    @Test func stringFieldsCompareWithNumbersAsNumbers() throws {
        let r = RulesFixture.request(reasonID: "5")
        #expect(try matches("reason_id == 5", r))
        #expect(try matches("reason_id == 5.0", r))
        #expect(try matches(#"reason_id == "5""#, r))
        #expect(try matches("reason_id > 4 and reason_id <= 5", r))
        #expect(try matches("reason_id in [1, 5, 9]", r))
        #expect(try matches("reason_id != 6", r))
        let text = RulesFixture.request(reasonID: "abc")
        #expect(try !matches("reason_id == 5", text))
        #expect(try !matches("reason_id < 5", text))
        #expect(try matches("reason_id != 5", text))
    }

    // MARK: Durations and times

    @Test func remainingAndAgeCompareWithDurations() throws {
        let r = RulesFixture.request(createdAt: deadline.addingTimeInterval(-86400))
        let now = deadline.addingTimeInterval(-3600)  // 1h left, 23h old
        #expect(try matches("remaining <= 1h", r, at: now))
        #expect(try !matches("remaining < 1h", r, at: now))
        #expect(try matches("remaining >= 60m", r, at: now))
        #expect(try !matches("remaining > 1h", r, at: now))
        #expect(try matches("remaining == 3600s", r, at: now))
        #expect(try matches("remaining != 1h1s", r, at: now))
        #expect(try matches("remaining > 59m59s and remaining < 1h0m1s", r, at: now))
        #expect(try matches("remaining in [30m, 1h]", r, at: now))
        #expect(try matches("1h >= remaining", r, at: now))
        #expect(try matches("age >= 23h and age < 1d", r, at: now))
        #expect(try matches("remaining < 0s", r, at: deadline.addingTimeInterval(1)))
        #expect(try matches("remaining > -5m", r, at: deadline.addingTimeInterval(60)))
        let unknownAge = RulesFixture.request(createdAt: nil)
        #expect(try !matches("age > 0s", unknownAge))
        #expect(try !matches("age <= 100d", unknownAge))
    }

    @Test func deadlineAndCreatedCompareWithRFC3339Times() throws {
        let r = RulesFixture.request(createdAt: Timestamp.parse("2026-11-21T20:00:00Z"))
        #expect(try matches(#"deadline == "2026-11-23T23:00:00+03:00""#, r))
        #expect(try matches(#"deadline < "2026-11-23T20:00:01Z""#, r))
        #expect(try matches(#"deadline >= "2026-11-23T20:00:00.000Z""#, r))
        #expect(try matches(#"created < "2026-11-22T00:00:00Z""#, r))
        #expect(try !matches(#"created > "2026-11-22T00:00:00Z""#, RulesFixture.request(createdAt: nil)))
    }

    // MARK: Hour and weekday

    @Test func hourAndWeekdayAreReadInTheConfiguredTimeZone() throws {
        let r = RulesFixture.request()
        // 2026-11-23T20:30Z is Monday 20:30 in UTC and Monday 23:30 in Moscow; 21:30Z is Tuesday 00:30 in Moscow.
        let evening = Timestamp.parse("2026-11-23T20:30:00Z")!
        let lateEvening = Timestamp.parse("2026-11-23T21:30:00Z")!
        #expect(try matches("hour == 20 and weekday == 1", r, at: evening))
        #expect(try matches(#"hour == 23 and weekday == "monday""#, r, at: evening, timeZone: RulesFixture.moscow))
        #expect(try matches(#"hour == 0 and weekday == "Tue" and weekday == 2"#, r, at: lateEvening, timeZone: RulesFixture.moscow))
        #expect(try matches("hour >= 22 or hour < 8", r, at: evening, timeZone: RulesFixture.moscow))
        #expect(try !matches("hour >= 22 or hour < 8", r, at: evening))
        #expect(try matches("weekday <= 5", r, at: evening))
        #expect(try matches(#"weekday in ["sat", "sun", 1]"#, r, at: evening))
        let sunday = Timestamp.parse("2026-11-29T12:00:00Z")!
        #expect(try matches(#"weekday == 7 and weekday == "sunday" and weekday > 5"#, r, at: sunday))
    }

    // MARK: Raw values

    @Test func rawPathsReachNestedObjectsAndArrayItems() throws {
        let r = RulesFixture.request(raw: [
            "cancellation_reason": ["id": 352, "name": "Покупатель передумал"],
            "counter": "7", "is_express": true, "price": 12.5,
            "items": [["sku": "A-1", "qty": 2], ["sku": "B-2", "qty": 1]],
            "tags": ["vip", "fragile"],
            "labels": ["gift": true],
        ])
        #expect(try matches("raw.cancellation_reason.id == 352", r))
        #expect(try matches(#"raw.cancellation_reason.id == "352""#, r))  // numbers and strings compare loosely
        #expect(try matches(#"raw.cancellation_reason.name contains "передумал""#, r))
        #expect(try matches("raw.counter == 7 and raw.counter > 6.5", r))  // Ozon sends counters as strings
        #expect(try matches("raw.is_express", r))
        #expect(try matches("raw.is_express == true", r))
        #expect(try matches("raw.price >= 12 and raw.price < 13", r))
        #expect(try matches(#"raw.items.1.sku == "B-2""#, r))
        #expect(try matches("raw.items.0.qty in [2, 3]", r))
        #expect(try matches(#"raw.tags contains "vip""#, r))
        #expect(try !matches(#"raw.tags contains "cheap""#, r))
        #expect(try matches(#"raw.labels contains "gift""#, r))
        #expect(try matches(#"raw.items.0.sku matches "^A-\d$""#, r))
        #expect(try matches(#"raw.cancellation_reason.id matches "^35""#, r))
        #expect(try matches(#"raw.items.0.sku > "A""#, r))
    }

    @Test func aMissingRawPathIsFalseForEveryTestAndNeverCrashes() throws {
        let r = RulesFixture.request(raw: ["a": ["b": 1], "list": [1]])
        for condition in [
            "raw.nope == 1", #"raw.nope == "x""#, "raw.nope > 0", "raw.nope < 0", "raw.nope in [1]", #"raw.nope contains "x""#,
            #"raw.nope matches ".*""#, "raw.nope", "raw.a.b.c == 1", "raw.list.5 == 1", "raw.list.x == 1", "raw.a.b.0 == 1", "raw.a",
        ] {
            #expect(try !matches(condition, r), "\(condition)")
        }
        #expect(try matches("raw.nope != 1", r))
        #expect(try matches("not raw.nope", r))
    }

    // MARK: Logic

    @Test func andOrNotFollowTheirPrecedence() throws {
        let r = RulesFixture.request()
        #expect(try matches(#"state == "approved" or state == "pending" and marketplace == "ozon""#, r))
        #expect(try !matches(#"(state == "approved" or state == "pending") and marketplace == "xiaohongshu""#, r))
        #expect(try matches(#"not state == "approved" and not marketplace == "xiaohongshu""#, r))
        #expect(try !matches(#"not (state == "pending" or marketplace == "xiaohongshu")"#, r))
        #expect(try matches("not not true", r))
        #expect(try !matches("true and false", r))
        #expect(try matches("false or true", r))
    }

    // MARK: Next change

    private func rule(_ condition: String, timeZone: TimeZone = RulesFixture.utc) throws -> CompiledRule {
        try #require(RulesFixture.rule(condition, timeZone: timeZone), "\(condition) does not compile")
    }

    @Test func aRemainingThresholdChangesAtTheExactInstant() throws {
        let r = RulesFixture.request()
        let rule = try rule("remaining <= 1h")
        let start = deadline.addingTimeInterval(-5 * 3600)
        let crossing = try #require(rule.nextChange(for: r, after: start))
        #expect(crossing == deadline.addingTimeInterval(-3600))
        #expect(!rule.matches(r, now: crossing.addingTimeInterval(-0.001)))
        #expect(rule.matches(r, now: crossing))
        // Once true it stays true: nothing more to schedule after the instant itself.
        #expect(rule.nextChange(for: r, after: crossing.addingTimeInterval(1)) == nil)
    }

    @Test func aStrictThresholdIsReportedJustAfterTheInstant() throws {
        let r = RulesFixture.request()
        let rule = try rule("remaining < 1h")
        let boundary = deadline.addingTimeInterval(-3600)
        #expect(rule.nextChange(for: r, after: boundary.addingTimeInterval(-60)) == boundary)
        #expect(!rule.matches(r, now: boundary))
        let after = try #require(rule.nextChange(for: r, after: boundary))
        #expect(after == boundary.addingTimeInterval(0.001))
        #expect(rule.matches(r, now: after))
    }

    @Test func aWindowOnRemainingReportsItsOpeningThenItsClosing() throws {
        let r = RulesFixture.request()
        let rule = try rule("remaining <= 3h and remaining > 30m")
        let opens = try #require(rule.nextChange(for: r, after: deadline.addingTimeInterval(-86400)))
        #expect(opens == deadline.addingTimeInterval(-3 * 3600))
        #expect(rule.matches(r, now: opens))
        let closes = try #require(rule.nextChange(for: r, after: opens))
        #expect(closes == deadline.addingTimeInterval(-1800))
        #expect(rule.matches(r, now: closes.addingTimeInterval(-0.001)))
        #expect(!rule.matches(r, now: closes))  // exactly 30m left is not more than 30m
        #expect(rule.nextChange(for: r, after: closes) == nil)  // false for good once past the window
    }

    @Test func anAgeThresholdChangesAtCreationPlusTheDuration() throws {
        let created = deadline.addingTimeInterval(-86400)
        let r = RulesFixture.request(createdAt: created)
        let rule = try rule("age >= 2h")
        #expect(rule.nextChange(for: r, after: created) == created.addingTimeInterval(7200))
        #expect(rule.nextChange(for: RulesFixture.request(createdAt: nil), after: created) == nil)
    }

    @Test func conditionsTimeCannotChangeHaveNoNextChange() throws {
        let r = RulesFixture.request()
        let now = deadline.addingTimeInterval(-86400)
        #expect(try rule(#"state == "pending""#).nextChange(for: r, after: now) == nil)
        #expect(try rule(#"deadline < "2030-01-01T00:00:00Z""#).nextChange(for: r, after: now) == nil)
        // A false part that time cannot change settles an 'and'; a true one settles an 'or'.
        #expect(try rule(#"state == "approved" and remaining <= 1h"#).nextChange(for: r, after: now) == nil)
        #expect(try rule(#"state == "pending" or remaining <= 1h"#).nextChange(for: r, after: now) == nil)
        #expect(try rule(#"state == "pending" and remaining <= 1h"#).nextChange(for: r, after: now) == deadline.addingTimeInterval(-3600))
        #expect(try rule("not remaining > 2h").nextChange(for: r, after: now) == deadline.addingTimeInterval(-7200))
    }

    @Test func hourTestsChangeAtTheLocalHourWhereTheValueFlips() throws {
        let r = RulesFixture.request()
        let rule = try rule("hour >= 22 or hour < 8", timeZone: RulesFixture.moscow)
        // 2026-11-23T12:10Z is 15:10 in Moscow; 22:00 Moscow is 19:00Z.
        let afternoon = Timestamp.parse("2026-11-23T12:10:00Z")!
        #expect(rule.nextChange(for: r, after: afternoon) == Timestamp.parse("2026-11-23T19:00:00Z"))
        // Inside the window: it ends at 08:00 Moscow, 05:00Z.
        #expect(rule.nextChange(for: r, after: Timestamp.parse("2026-11-23T19:00:00Z")!) == Timestamp.parse("2026-11-24T05:00:00Z"))
        let kathmandu = try self.rule("hour == 9", timeZone: TimeZone(identifier: "Asia/Kathmandu")!)  // +05:45
        #expect(kathmandu.nextChange(for: r, after: Timestamp.parse("2026-11-23T00:00:00Z")!) == Timestamp.parse("2026-11-23T03:15:00Z"))
    }

    @Test func weekdayTestsChangeAtLocalMidnight() throws {
        let r = RulesFixture.request()
        let weekend = try rule(#"weekday in ["sat", "sun"]"#, timeZone: RulesFixture.moscow)
        // Monday 2026-11-23 → Saturday 2026-11-28 00:00 Moscow = 2026-11-27T21:00Z.
        #expect(weekend.nextChange(for: r, after: Timestamp.parse("2026-11-23T12:00:00Z")!) == Timestamp.parse("2026-11-27T21:00:00Z"))
        #expect(weekend.nextChange(for: r, after: Timestamp.parse("2026-11-27T21:00:00Z")!) == Timestamp.parse("2026-11-29T21:00:00Z"))
    }

    @Test func hourBoundariesFollowDaylightSavingTime() throws {
        let r = RulesFixture.request()
        let rule = try rule("hour == 3", timeZone: TimeZone(identifier: "Europe/Berlin")!)
        // 2026-03-29: clocks jump from 02:00 (+01:00) to 03:00 (+02:00) at 01:00Z, so 03:00 local starts at 01:00Z.
        #expect(rule.nextChange(for: r, after: Timestamp.parse("2026-03-28T23:30:00Z")!) == Timestamp.parse("2026-03-29T01:00:00Z"))
        #expect(rule.matches(r, now: Timestamp.parse("2026-03-29T01:00:00Z")!))
    }

    @Test func theRuleSetReportsTheEarliestChangeOfAnyRule() throws {
        let result = RulesFixture.compile(
            "rule \"a\" { when remaining <= 1h notify ops }\nrule \"b\" { when remaining <= 3h notify ops }")
        let set = try #require(result.ruleSet)
        #expect(set.nextChange(for: RulesFixture.request(), after: deadline.addingTimeInterval(-86400)) == deadline.addingTimeInterval(-3 * 3600))
        #expect(set.matching(RulesFixture.request(), now: deadline.addingTimeInterval(-7200)).map(\.name) == ["b"])
        #expect(set["a"]?.name == "a")
        #expect(set.sinkNames == ["ops"])
    }

    // MARK: Templates

    @Test func messagesRenderFieldsDurationsAndLocalTimes() throws {
        let rule = try #require(
            RulesFixture.rule(
                "remaining <= 2h", timeZone: RulesFixture.moscow,
                extra: "  severity critical\n  message \"[{{severity}}] {{rule}}: {{marketplace}}/{{source}} {{order}} in {{remaining}} at {{deadline}} (created {{created}}, {{age}} ago; {{reason}} #{{reason_id}}; {{raw.reason.id}} {{raw.missing}}) {{weekday}} {{hour}}h\"\n"
            ))
        let r = RulesFixture.request(createdAt: deadline.addingTimeInterval(-86400 - 300), raw: ["reason": ["id": 352]])
        let now = deadline.addingTimeInterval(-3900)
        #expect(
            rule.renderMessage(request: r, now: now)
                == "[critical] r: ozon/ozon-main 0123-4567-1 in 1h 05m at 2026-11-23 23:00 +03:00 (created 2026-11-22 22:55 +03:00, 23h 00m ago; Wrong size #5; 352 ) Monday 21h")
    }

    @Test func theDefaultMessageNamesTheOrderTheTimeLeftAndTheReason() throws {
        let rule = try #require(RulesFixture.rule("remaining <= 2h"))
        #expect(rule.renderMessage(request: RulesFixture.request(), now: deadline.addingTimeInterval(-125))
            == "ozon ozon-main 0123-4567-1: cancellation auto-approves in 2m 05s (Wrong size)")
        #expect(rule.renderMessage(request: RulesFixture.request(), now: deadline.addingTimeInterval(90))
            == "ozon ozon-main 0123-4567-1: cancellation auto-approves in -1m 30s (Wrong size)")
    }

    @Test func timesInUTCSayUTC() throws {
        let template = try MessageTemplate.compile("{{deadline}}").get()
        #expect(template.render(request: RulesFixture.request(), now: deadline) == "2026-11-23 20:00 UTC")
        #expect(template.render(request: RulesFixture.request(), now: deadline, timeZone: TimeZone(identifier: "America/New_York")!)
            == "2026-11-23 15:00 -05:00")
    }

    @Test func aTemplateCompiledOnItsOwnReportsEveryProblem() {
        guard case .failure(let errors) = MessageTemplate.compile("{{ordr}} {{}} {{raw}} {{remaining") else {
            Issue.record("expected errors")
            return
        }
        #expect(errors.problems.map(\.message) == [
            "unknown field 'ordr' in template; did you mean 'order'?",
            "empty '{{}}' in template; name a field, such as {{remaining}}",
            "'{{raw}}' needs a path after 'raw.', such as {{raw.status}}",
            "unterminated '{{' in template; close it with '}}'",
        ])
        #expect(errors.problems.map(\.offset) == [2, 9, 16, 22])
        let (template, diagnostics) = MessageTemplate.compile("Order {{ordr}}", path: "cancelwatch.yaml", line: 12, column: 15)
        #expect(template == nil)
        #expect(diagnostics.map(\.description) == ["cancelwatch.yaml:12:23: error: unknown field 'ordr' in template; did you mean 'order'?"])
    }

    @Test func aTemplateWithoutPlaceholdersOrWithSingleBracesIsText() throws {
        let template = try MessageTemplate.compile("{ not a field } {{order}}}").get()
        #expect(template.render(request: RulesFixture.request(), now: deadline) == "{ not a field } 0123-4567-1}")
    }

    // MARK: Quiet windows

    @Test func theQuietWindowEndsAtItsLocalEndEvenAcrossMidnight() throws {
        let rule = try #require(RulesFixture.rule("remaining <= 1h", timeZone: RulesFixture.moscow, extra: "quiet 22:00-08:00\n"))
        let lateEvening = Timestamp.parse("2026-11-23T20:30:10Z")!  // 23:30:10 Moscow
        #expect(rule.isQuiet(at: lateEvening))
        #expect(rule.quietEnd(containing: lateEvening) == Timestamp.parse("2026-11-24T05:00:00Z"))
        let earlyMorning = Timestamp.parse("2026-11-24T04:59:59Z")!  // 07:59:59 Moscow
        #expect(rule.quietEnd(containing: earlyMorning) == Timestamp.parse("2026-11-24T05:00:00Z"))
        let noon = Timestamp.parse("2026-11-24T09:00:00Z")!
        #expect(!rule.isQuiet(at: noon))
        #expect(rule.quietEnd(containing: noon) == nil)
    }

    // MARK: Repetition (speed is the benchmark's business: cancelwatch-bench --only rules)

    @Test func aCompiledRuleGivesTheSameAnswerEveryTimeItIsAsked() throws {
        let result = RulesFixture.compile(
            """
            rule "a" { when state == "pending" and remaining <= 3h and remaining > 30m notify ops }
            rule "b" { when marketplace == "ozon" and initiator in ["CLIENT", "OZON"] and remaining <= 24h notify ops }
            """)
        let rules = try #require(result.ruleSet?.rules)
        let r = RulesFixture.request()
        var hits = 0
        for offset in stride(from: -7200.0, through: 7200, by: 60) {
            let now = deadline.addingTimeInterval(-3600 + offset)
            let first = rules.filter { $0.matches(r, now: now) }.map(\.name)
            for _ in 0..<20 { #expect(rules.filter { $0.matches(r, now: now) }.map(\.name) == first) }
            hits += first.count
        }
        // "b" holds at all 241 instants; "a" at the 150 where 30m < remaining <= 3h.
        #expect(hits == 391)
    }
}

extension RulesEvaluatorTests {
    @Test func extremeInstantsNeitherTrapNorHang() throws {
        let rule = try #require(
            RulesFixture.rule("hour >= 9 and weekday <= 5 and remaining <= 1h", timeZone: RulesFixture.moscow, extra: "message \"{{deadline}} {{hour}}\"\n"))
        for instant in [Date.distantFuture, Date.distantPast, Date(timeIntervalSince1970: 1e15), Date(timeIntervalSince1970: -1e15)] {
            let r = RulesFixture.request(createdAt: instant, deadline: instant)
            _ = rule.matches(r, now: instant)
            _ = rule.nextChange(for: r, after: instant)
            _ = rule.renderMessage(request: r, now: instant)
        }
    }
}

extension RulesEvaluatorTests {
    /// `matches` runs the flattened program; the condition tree stays the reference. Random
    /// conditions over every kind of test, nested, on requests and instants around them.
    @Test func theFlattenedProgramAnswersAsTheConditionTree() throws {
        let leaves = [
            #"state == "pending""#, #"state != "approved""#, #"state in ["rejected", "approved"]"#, #"state matches "^p""#,
            #"state < "q""#, #"marketplace == "ozon""#, #"marketplace != "ozon""#, #"marketplace contains "hong""#,
            #"initiator in ["CLIENT", "OZON"]"#, #"initiator == "SELLER""#, #"reason contains "size""#, #"reason matches "(?i)^wrong""#,
            "reason_id == 5", "reason_id > 3", #"order >= "0123""#, #"source == "ozon-main""#, #"raw_state == "ON_APPROVAL""#,
            "remaining <= 3h", "remaining > 30m", "remaining < 0s", "age >= 2d", "age < 1h",
            #"deadline < "2026-11-23T21:00:00Z""#, #"created >= "2026-11-21T00:00:00Z""#, "hour >= 9", "hour < 18", "weekday <= 5",
            "raw.flag", #"raw.a.b == "x""#, "raw.n > 2", #"raw.list contains 3"#, "true", "false",
        ]
        var random = SeededGenerator(seed: 7)
        func condition(_ depth: Int) -> String {
            if depth == 0 || Int.random(in: 0..<3, using: &random) == 0 { return leaves.randomElement(using: &random)! }
            switch Int.random(in: 0..<3, using: &random) {
            case 0: return "not (\(condition(depth - 1)))"
            case 1: return "(\(condition(depth - 1)) and \(condition(depth - 1)))"
            default: return "(\(condition(depth - 1)) or \(condition(depth - 1)) or \(condition(depth - 1)))"
            }
        }
        let requests = [
            RulesFixture.request(),
            RulesFixture.request(marketplace: .xiaohongshu, state: .approved, initiator: "", reason: "Wrong size", reasonID: "abc",
                createdAt: nil, raw: ["flag": true, "a": ["b": "x"], "n": 3, "list": [1, 3]]),
            RulesFixture.request(state: .rejected, initiator: "OZON", reason: "colour", reasonID: "4", raw: ["flag": false, "n": "2.5"]),
        ]
        let instants = stride(from: -3.0 * 86400, through: 86400, by: 5471).map { deadline.addingTimeInterval($0) }
        var held = 0
        var evaluated = 0
        for _ in 0..<300 {
            let text = condition(3)
            let rule = try #require(RulesFixture.rule(text, timeZone: RulesFixture.moscow), "\(text) does not compile")
            for request in requests {
                for now in instants {
                    let expected = rule.condition.evaluate(request, now: now, clock: rule.clock)
                    #expect(rule.matches(request, now: now) == expected, "\(text) at \(now)")
                    if expected { held += 1 }
                    evaluated += 1
                }
            }
        }
        // Both answers come up (the test is not trivially one of them).
        #expect(held > evaluated / 10 && held < evaluated * 9 / 10)
    }
}
