import CancelWatch
import Foundation
import Testing

/// `actions:` of a telegram sink: who may answer from its buttons, and the reasons offered.
@Suite struct TelegramActionsConfigTests {
    static let header = """
        sources:
          - {name: shop, kind: ozon, client_id: 1, api_key: k}
        sinks:
          - name: tg
            kind: webhook
            format: telegram
            url: "https://api.telegram.org/bot123:ABC/sendMessage"
            chat_id: "-100200300"

        """

    func load(_ yaml: String, environment: [String: String] = [:]) throws(ConfigError) -> CancelWatchConfig {
        try CancelWatchConfig.parse(yaml: yaml, path: "/etc/cw/cancelwatch.yaml", environment: environment)
    }

    /// The messages for `yaml`, which must not load.
    func errors(_ yaml: String) -> [String] {
        do {
            _ = try load(yaml)
            Issue.record("the config loaded:\n\(yaml)")
            return []
        } catch {
            return error.diagnostics.map(\.message)
        }
    }

    func actions(_ config: CancelWatchConfig) -> TelegramActionsConfig? {
        guard case .webhook(let webhook)? = config.sinks.first?.kind else { return nil }
        return webhook.actions
    }

    @Test func allowedUsersAndRefuseReasonsLoad() throws {
        let config = try load(
            Self.header + """
                    actions:
                      allow: [123456789, "${BOSS_TELEGRAM_ID}"]
                      refuse_reasons: ["Already shipped", "  Made to order  "]
                """, environment: ["BOSS_TELEGRAM_ID": "987654321"])
        #expect(actions(config) == TelegramActionsConfig(allow: [123_456_789, 987_654_321], refuseReasons: ["Already shipped", "Made to order"]))
    }

    /// Presses are matched to their sink by the chat's id: a channel's @name would leave every press unanswered.
    @Test func aSinkWithActionsNeedsTheChatsNumericID() {
        for chat in ["@mychannel", "0", "-100 200"] {
            let yaml = Self.header.replacingOccurrences(of: "chat_id: \"-100200300\"", with: "chat_id: \"\(chat)\"")
                + "    actions: {allow: [42]}\n"
            #expect(errors(yaml).contains { $0.contains("'chat_id' in sink 'tg' must be the chat's numeric id") }, "\(chat): \(errors(yaml))")
        }
        let withoutActions = Self.header.replacingOccurrences(of: "chat_id: \"-100200300\"", with: "chat_id: \"@mychannel\"")
        #expect(throws: Never.self) { try load(withoutActions) }
    }

    @Test func aSinkWithoutActionsHasNone() throws {
        #expect(actions(try load(Self.header)) == nil)
    }

    @Test func actionsOnAnotherFormatSayOnlyTelegramHasButtons() {
        let found = errors(
            """
            sources:
              - {name: shop, kind: ozon, client_id: 1, api_key: k}
            sinks:
              - {name: s, kind: webhook, format: slack, url: "https://hooks.slack.com/x", actions: {allow: [1]}}
              - {name: g, kind: webhook, url: "https://example.com/hook", actions: {allow: [1]}}
            """)
        #expect(
            found == [
                "'actions' in sink 's' needs format: telegram: only Telegram has buttons to answer from (this sink's format is slack)",
                "'actions' in sink 'g' needs format: telegram: only Telegram has buttons to answer from (this sink's format is generic)",
            ])
    }

    @Test func actionsAreNotAnEmailOrStdoutSetting() {
        let found = errors(
            """
            sources:
              - {name: shop, kind: ozon, client_id: 1, api_key: k}
            sinks:
              - {name: out, kind: stdout, actions: {allow: [1]}}
            """)
        #expect(found == ["'actions' is not a setting of sink 'out': it belongs to webhook sinks"])
    }

    @Test func unknownKeysInActionsAreErrorsWithTheClosestKey() {
        let found = errors(Self.header + "    actions: {alow: [1], allow: [2]}")
        #expect(found == ["unknown key 'alow' in actions of sink 'tg'; did you mean 'allow'?"])
    }

    @Test func allowIsRequiredAndNotEmpty() {
        #expect(
            errors(Self.header + "    actions: {refuse_reasons: [x]}")
                == ["missing required key 'allow' in actions of sink 'tg': the Telegram user ids who may answer"])
        #expect(
            errors(Self.header + "    actions: {allow: []}")
                == ["'allow' in actions of sink 'tg' is empty: list the Telegram user ids who may answer"])
        #expect(errors(Self.header + "    actions: yes") == ["actions of sink 'tg' must be a mapping (allow:, refuse_reasons:), not true/false"])
    }

    @Test func userIDsAreWholeNumbersWithinTelegramsRangeAndListedOnce() {
        let found = errors(Self.header + "    actions: {allow: [0, -100200300, alice, 9007199254740992, 1.5, 12, 12]}")
        let bounds = "(whole numbers from 1 to 9007199254740991)"
        #expect(
            found == [
                "'allow' in actions of sink 'tg' must hold Telegram user ids \(bounds), not '0'",
                "'allow' in actions of sink 'tg' must hold Telegram user ids \(bounds), not '-100200300'",
                "'allow' in actions of sink 'tg' must hold Telegram user ids \(bounds), not 'alice'",
                "'allow' in actions of sink 'tg' must hold Telegram user ids \(bounds), not '9007199254740992'",
                "'allow' in actions of sink 'tg' must hold Telegram user ids \(bounds), not '1.5'",
                "user id 12 is listed twice in 'allow' in actions of sink 'tg'",
            ])
    }

    @Test func atMost100UsersMayBeAllowed() {
        let ids = (1...101).map(String.init).joined(separator: ", ")
        #expect(errors(Self.header + "    actions: {allow: [\(ids)]}") == ["'allow' in actions of sink 'tg' lists 101 users; at most 100"])
    }

    @Test func refuseReasonsAreOneTo100CharactersAtMostEightAndEachOnce() {
        let long = String(repeating: "я", count: 101)
        let found = errors(Self.header + "    actions: {allow: [1], refuse_reasons: [\"\", \"\(long)\", ok, ok]}")
        #expect(found.count == 3)
        #expect(found[0] == "each of 'refuse_reasons' in actions of sink 'tg' is 1 to 100 characters; '' is 0")
        #expect(found[1].hasPrefix("each of 'refuse_reasons' in actions of sink 'tg' is 1 to 100 characters; 'яяя"))
        #expect(found[1].hasSuffix(" is 101"))
        #expect(found[2] == "reason 'ok' is listed twice in 'refuse_reasons' in actions of sink 'tg'")

        let nine = (1...9).map { "reason \($0)" }.joined(separator: ", ")
        #expect(
            errors(Self.header + "    actions: {allow: [1], refuse_reasons: [\(nine)]}")
                == ["'refuse_reasons' in actions of sink 'tg' lists 9 reasons; at most 8"])
    }

    @Test func actionsNeedTheBotsOwnSendMessageURL() {
        let found = errors(
            """
            sources:
              - {name: shop, kind: ozon, client_id: 1, api_key: k}
            sinks:
              - {name: tg, kind: webhook, format: telegram, chat_id: 5, url: "https://relay.example.com/telegram", actions: {allow: [1]}}
            """)
        #expect(
            found == [
                "'actions' in sink 'tg' read button presses from the bot, so 'url' must be its sendMessage call: "
                    + "https://api.telegram.org/bot<token>/sendMessage"
            ])
    }

    @Test func theErrorPointsAtTheBadValue() throws {
        do {
            _ = try load(Self.header + "    actions:\n      allow: [1, x]")
            Issue.record("the config loaded")
        } catch {
            let diagnostic = try #require(error.diagnostics.first)
            #expect((diagnostic.line, diagnostic.column) == (10, 18))
        }
    }
}
