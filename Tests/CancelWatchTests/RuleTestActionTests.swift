import Foundation
import Testing

@testable import CancelWatch

/// `cancelwatch test` covers acting rules: `expect` names `event: action` with its
/// `outcome`, and the runner produces the actions as the engine does.
@Suite struct RuleTestActionTests {
    let directory: URL
    let runner = RuleTestRunner()

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-ruletest-act-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try """
            rule "refuse-late" {
              when     remaining <= 1h and initiator == "CLIENT"
              notify   ops
              repeat   every 20m
              act      refuse "already handed to the courier"
            }
            """.write(to: directory.appendingPathComponent("act.rules"), atomically: true, encoding: .utf8)
    }

    func run(_ expect: String, end: String = "") async throws -> RuleTestFileResult {
        let path = directory.appendingPathComponent("act.test.yaml").path
        try """
            rules: act.rules
            tests:
              - name: the rule refuses once, when it first fires
                start: 2025-11-24 10:00
                \(end)
                requests:
                  - {id: "1", initiator: CLIENT, remaining: 2h}
                  - {id: "2", initiator: SELLER, remaining: 2h}
                changes:
                  - {at: +1h30m, request: "1", resolve: rejected}
                expect:
            \(expect)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return await runner.run(path: path)
    }

    @Test func anActionIsExpectedWithItsOutcomeBesideItsFiring() async throws {
        let result = try await run(
            """
                  - {at: +1h, event: firing, rule: refuse-late, request: "1"}
                  - {at: +1h, event: action, rule: refuse-late, request: "1", outcome: rejected, message: "would refuse"}
                  - {at: +1h20m, event: repeat, rule: refuse-late, request: "1"}
                  - {at: +1h30m, event: resolved, rule: refuse-late, request: "1", outcome: rejected}
            """)
        #expect(result.passed, "\(result.renderedDiagnostics)\(result.cases.map { $0.report() }.joined())")
        #expect(result.eventsChecked == 4)
    }

    @Test func anActionLeftOutOrWithTheWrongOutcomeFailsTheTest() async throws {
        let missing = try await run(
            """
                  - {at: +1h, event: firing, rule: refuse-late, request: "1"}
                  - {at: +1h20m, event: repeat, rule: refuse-late, request: "1"}
                  - {at: +1h30m, event: resolved, rule: refuse-late, request: "1", outcome: rejected}
            """)
        let unexpected = try #require(missing.cases.first?.unexpected)
        #expect(unexpected.map(\.kind) == [.action])
        #expect(missing.cases.first?.report().contains("action (rejected)") == true)

        let wrong = try await run(
            """
                  - {at: +1h, event: firing, rule: refuse-late, request: "1"}
                  - {at: +1h, event: action, rule: refuse-late, request: "1", outcome: approved}
            """, end: "end: +1h")
        #expect(wrong.cases.first?.missing.map(\.kind) == [.action])
        #expect(wrong.cases.first?.unexpected.map(\.outcome) == [.rejected])
    }

    @Test func anActionCannotBeExpectedToVanish() async throws {
        let result = try await run(
            """
                  - {at: +1h, event: action, rule: refuse-late, request: "1", outcome: vanished}
            """)
        #expect(result.hasErrors)
        #expect(
            result.diagnostics.map(\.message).contains("an action's outcome is approved or rejected: what the answer asks for"),
            "\(result.diagnostics)")
    }

    @Test func anOutcomeStillGoesOnlyWithResolvedOrAction() async throws {
        let result = try await run(
            """
                  - {at: +1h, event: firing, rule: refuse-late, request: "1", outcome: rejected}
            """)
        #expect(result.diagnostics.map(\.message).contains("'outcome' only goes with event: resolved or action"))
    }
}
