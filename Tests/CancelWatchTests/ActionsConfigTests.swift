import Foundation
import Testing

@testable import CancelWatch

/// `actions: {mode: dry-run | live, max_per_hour: N}`: what acting rules may do.
@Suite struct ActionsConfigTests {
    let source = "sources:\n  - {name: shop, kind: ozon, client_id: 1, api_key: k}\n"

    func load(_ yaml: String) throws(ConfigError) -> CancelWatchConfig {
        try CancelWatchConfig.parse(yaml: yaml, path: "/etc/cw/cancelwatch.yaml", environment: [:])
    }

    func messages(_ yaml: String) -> [String] {
        do {
            _ = try load(yaml)
            return []
        } catch {
            return error.diagnostics.map { "\($0.line):\($0.column): \($0.message)" }
        }
    }

    @Test func withoutActionsRulesActInDryRunAtMostTwentyAnHour() throws {
        let actions = try load(source).actions
        #expect(actions == ActionsConfig(mode: .dryRun, maxPerHour: 20))
        #expect(try load(source + "actions: {}\n").actions == actions)
        #expect(try load(source + "actions:\n").actions == actions)
    }

    @Test func liveModeAndTheHourlyLimitAreRead() throws {
        #expect(try load(source + "actions: {mode: live, max_per_hour: 5}\n").actions == ActionsConfig(mode: .live, maxPerHour: 5))
        #expect(try load(source + "actions:\n  mode: dry-run\n").actions == ActionsConfig(mode: .dryRun, maxPerHour: 20))
        #expect(try load(source + "actions: {mode: live}\n").actions.maxPerHour == 20)
    }

    @Test func anUnknownModeIsAnErrorNamingTheFieldAndTheModes() {
        #expect(
            messages(source + "actions: {mode: on}\n") == [
                "3:17: invalid mode 'on' in actions; expected one of: dry-run, live"
            ])
        #expect(messages(source + "actions: {mode: liv}\n").first?.hasSuffix("(did you mean 'live'?)") == true)
    }

    @Test func anHourlyLimitOutOfRangeIsAnErrorNamingTheField() {
        #expect(messages(source + "actions: {max_per_hour: 0}\n") == ["3:25: 'max_per_hour' in actions must be from 1 to 10000, not 0"])
        #expect(messages(source + "actions: {max_per_hour: 10001}\n").first?.contains("'max_per_hour' in actions") == true)
    }

    @Test func anUnknownKeyOrAWrongShapeIsAnError() {
        #expect(messages(source + "actions: {mode: live, max_per_day: 3}\n").first?.contains("unknown key 'max_per_day'") == true)
        #expect(messages(source + "actions: live\n").first?.contains("actions must be a mapping (mode:, max_per_hour:)") == true)
    }
}
