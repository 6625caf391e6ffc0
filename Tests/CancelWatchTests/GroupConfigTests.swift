import CancelWatch
import Foundation
import Testing

/// `group:` of a sink and `batch:` of a generic webhook: where they are allowed, their
/// defaults and bounds, and the mistakes `check` names with the sink, the field and the place.
@Suite struct GroupConfigTests {
    static let source = """
        sources:
          - {name: shop, kind: ozon, client_id: 1, api_key: k}
        sinks:

        """

    func load(_ sinks: String) throws(ConfigError) -> CancelWatchConfig {
        try CancelWatchConfig.parse(yaml: Self.source + sinks, path: "/etc/cw/cancelwatch.yaml", environment: [:])
    }

    /// The diagnostics for `sinks`, which must not load.
    func errors(_ sinks: String) -> [ConfigDiagnostic] {
        do {
            _ = try load(sinks)
            Issue.record("the config loaded:\n\(sinks)")
            return []
        } catch {
            return error.diagnostics
        }
    }

    @Test func chatAndEmailSinksTakeAGroupWithItsDefaultsAndAGenericWebhookTakesOneWithBatch() throws {
        let config = try load(
            """
              - {name: tg, kind: webhook, format: telegram, url: "https://api.telegram.org/bot1:A/sendMessage", chat_id: "-1", group: {}}
              - {name: slack, kind: webhook, format: slack, url: "https://hooks.slack.com/x", group: {wait: 2m, max: 10, critical: hold}}
              - {name: mail, kind: email, url: "smtp://mail.example.com", from: a@example.com, to: [b@example.com], group: {max: 500}}
              - {name: hook, kind: webhook, url: "https://example.com/h", batch: true}
              - {name: tuned, kind: webhook, url: "https://example.com/h", batch: true, group: {wait: 1s, max: 1}}
              - {name: plain, kind: webhook, url: "https://example.com/h"}
              - {name: off, kind: webhook, url: "https://example.com/h", batch: false}
              - {name: console, kind: stdout}
            """)
        #expect(config.sinks.map(\.group) == [
            GroupPolicy(), GroupPolicy(wait: 120, max: 10, critical: .hold), GroupPolicy(max: 500), GroupPolicy(),
            GroupPolicy(wait: 1, max: 1), nil, nil, nil,
        ])
        #expect(GroupPolicy() == GroupPolicy(wait: 30, max: 50, critical: .send))
    }

    @Test func aGroupOnAGenericWebhookNeedsBatch() {
        let found = errors(
            """
              - {name: hook, kind: webhook, url: "https://example.com/h", group: {wait: 10s}}
              - {name: off, kind: webhook, url: "https://example.com/h", batch: false, group: {max: 5}}
            """)
        #expect(found.map(\.message).count == 2)
        #expect(found.first?.message.hasPrefix("'group' in sink 'hook' needs batch: true with format: generic") == true)
        #expect(found.first?.line == 4 && found.first?.column == 70, "\(found)")
        #expect(found.last?.message == "'group' in sink 'off' needs batch: true with format: generic")
    }

    @Test func batchOnAChatFormatIsAnErrorNamingTheSinkAndFieldAndStdoutTakesAGroup() throws {
        let found = errors(
            """
              - {name: tg, kind: webhook, format: telegram, url: "https://api.telegram.org/bot1:A/sendMessage", chat_id: "-1", batch: true}
              - name: console
                kind: stdout
                group: {wait: 30s, max: 0}
            """)
        #expect(found.count == 2)
        #expect(found[0].message.hasPrefix("'batch' in sink 'tg' is only used with format: generic (this sink's format is telegram)"))
        #expect(found[1].message.contains("'max' in sink 'console'") || found[1].message.contains("'max'"), "\(found[1].message)")
        #expect(found[1].line == 7, "\(found)")
        let console = try load("  - {name: console, kind: stdout, group: {wait: 5s, max: 20}}").sinks.first { $0.name == "console" }
        #expect(console?.group?.wait == 5)
        #expect(console?.group?.max == 20)
        #expect(errors("  - {name: mail, kind: email, url: \"smtp://m.example.com\", from: a@example.com, to: [b@example.com], batch: true}")
            .contains { $0.message.contains("'batch' is not a setting of sink 'mail'") })
    }

    @Test func waitMaxAndCriticalAreBoundedAndCheckedByName() {
        let found = errors(
            """
              - {name: a, kind: webhook, format: slack, url: "https://hooks.slack.com/x", group: {wait: 0s}}
              - {name: b, kind: webhook, format: slack, url: "https://hooks.slack.com/x", group: {wait: 2h}}
              - {name: c, kind: webhook, format: slack, url: "https://hooks.slack.com/x", group: {max: 0}}
              - {name: d, kind: webhook, format: slack, url: "https://hooks.slack.com/x", group: {max: 501}}
              - {name: e, kind: webhook, format: slack, url: "https://hooks.slack.com/x", group: {critical: later}}
              - {name: f, kind: webhook, format: slack, url: "https://hooks.slack.com/x", group: {wiat: 5s}}
              - {name: g, kind: webhook, format: slack, url: "https://hooks.slack.com/x", group: 30s}
            """).map(\.message)
        #expect(found.count == 7, "\(found)")
        for (index, part) in ["'wait' in group of sink 'a'", "'wait' in group of sink 'b'", "'max' in group of sink 'c'",
            "'max' in group of sink 'd'", "invalid critical 'later' in group of sink 'e'; expected one of: send, hold", "did you mean 'wait'?", "group of sink 'g' must be a mapping"]
            .enumerated()
        {
            #expect(found.indices.contains(index) && found[index].contains(part), "\(part): \(found.indices.contains(index) ? found[index] : "")")
        }
    }

    @Test func aTelegramSinkWithActionsAndAGroupIsWarnedThatGroupsCarryNoButtons() throws {
        let config = try load(
            """
              - {name: tg, kind: webhook, format: telegram, url: "https://api.telegram.org/bot1:A/sendMessage", chat_id: "-100123",
                 actions: {allow: [42]}, group: {wait: 30s, critical: hold}}
            """)
        #expect(config.warnings.map(\.message) == [
            "'group' in sink 'tg' with 'actions': a grouped message carries no Approve/Refuse buttons, and with critical: hold no alert of this sink will"
        ])
        #expect(config.warnings.first?.line == 5)
    }
}
