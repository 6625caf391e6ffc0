import Foundation
@testable import CancelWatch

/// Shared helpers for the rule-language tests.
enum RulesFixture {
    static let sinks: Set<String> = ["console", "ops", "owner-mail"]
    static let moscow = TimeZone(identifier: "Europe/Moscow")!
    static let utc = TimeZone(identifier: "UTC")!
    /// 2026-11-23T20:00:00Z, a Monday (23:00 Monday in Moscow).
    static let deadline = Timestamp.parse("2026-11-23T20:00:00Z")!

    static func compile(_ text: String, path: String = "test.rules", sinks: Set<String>? = sinks, timeZone: TimeZone = utc) -> RuleLoadResult {
        RuleLoader(knownSinks: sinks, timeZone: timeZone).compile(text, path: path)
    }

    /// One rule with the condition `when`, notifying `ops`.
    static func rule(_ when: String, timeZone: TimeZone = utc, extra: String = "") -> CompiledRule? {
        let result = compile("rule \"r\" {\n  when \(when)\n  notify ops\n\(extra)}\n", timeZone: timeZone)
        return result.ruleSet?.rules.first
    }

    /// The diagnostics for a rule whose `when` is `condition` (on line 2, the condition at column 8).
    static func diagnostics(when condition: String) -> [RuleDiagnostic] {
        compile("rule \"r\" {\n  when \(condition)\n  notify ops\n}\n").diagnostics
    }

    static func request(
        marketplace: Marketplace = .ozon, state: RequestState = .pending, initiator: String = "CLIENT",
        reason: String = "Wrong size", reasonID: String = "5", createdAt: Date? = deadline.addingTimeInterval(-2 * 86400),
        deadline: Date = deadline, raw: JSONValue = [:]
    ) -> CancellationRequest {
        CancellationRequest(
            marketplace: marketplace, source: "ozon-main", id: "c-1", order: "0123-4567-1", state: state, rawState: "ON_APPROVAL",
            initiator: initiator, reason: reason, reasonID: reasonID, logistics: "", createdAt: createdAt, deadline: deadline,
            raw: raw)
    }

    /// The package root, for the shipped `rules/`.
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
}
