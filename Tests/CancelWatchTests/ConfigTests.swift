import Foundation
import Testing
@testable import CancelWatch

/// Parses `yaml` as if read from /etc/cancelwatch/cancelwatch.yaml.
private func load(_ yaml: String, environment: [String: String] = [:]) throws(ConfigError) -> CancelWatchConfig {
    try CancelWatchConfig.parse(yaml: yaml, path: "/etc/cancelwatch/cancelwatch.yaml", environment: environment)
}

/// The diagnostics for `yaml`, which must not load.
private func diagnostics(_ yaml: String, environment: [String: String] = [:]) -> [ConfigDiagnostic] {
    do {
        _ = try load(yaml, environment: environment)
        Issue.record("expected the config to be rejected")
        return []
    } catch {
        return error.diagnostics
    }
}

private let minimalSource = """
    sources:
      - {name: shop, kind: ozon, client_id: 1, api_key: k}
    """

private let designEnvironment = [
    "OZON_CLIENT_ID": "123456", "OZON_API_KEY": "ozon-key-0001", "RED_APP_KEY": "red-app-key",
    "RED_APP_SECRET": "red-secret-0002", "WEBHOOK_SECRET": "hook-secret-0003", "SMTP_USER": "watch@example.com",
    "SMTP_PASSWORD": "smtp-pass-0004",
]

@Suite struct ConfigTests {
    // MARK: Examples that must load

    @Test func theDesignExampleLoadsWithItsVariablesSet() throws {
        let yaml = """
            state: ./cancelwatch.sqlite
            rules: [./rules]
            timezone: Europe/Moscow
            listen: 127.0.0.1:9464        # optional: /metrics (Prometheus), /healthz
            sources:
              - {name: ozon-main, kind: ozon, client_id: "${OZON_CLIENT_ID}",
                 api_key: "${OZON_API_KEY}", poll_interval: 60s}
              - {name: red-shop, kind: red, app_key: "${RED_APP_KEY}",
                 app_secret: "${RED_APP_SECRET}", logistics: [red_auto, red_box],
                 max_audit_time_unit: milliseconds}
            sinks:
              - {name: console, kind: stdout}
              - {name: ops, kind: webhook, url: "https://hooks.example.com/cw",
                 secret: "${WEBHOOK_SECRET}"}
              - {name: owner-mail, kind: email, url: "smtp://smtp.example.com:587",
                 username: "${SMTP_USER}", password: "${SMTP_PASSWORD}",
                 from: "cancelwatch <watch@example.com>", to: [owner@example.com]}
            health: {notify: [ops]}
            """
        let config = try load(yaml, environment: designEnvironment)
        #expect(config.path == "/etc/cancelwatch/cancelwatch.yaml")
        #expect(config.state == "/etc/cancelwatch/cancelwatch.sqlite")
        #expect(config.rules == ["/etc/cancelwatch/rules"])
        #expect(config.timezone.identifier == "Europe/Moscow")
        #expect(config.listen == ListenAddress(host: "127.0.0.1", port: 9464))
        #expect(config.sources.map(\.name) == ["ozon-main", "red-shop"])
        #expect(config.sources.map(\.marketplace) == [.ozon, .xiaohongshu])
        #expect(config.sources[0].ozon == OzonCredentials(clientID: "123456", apiKey: Secret("ozon-key-0001")))
        let red = try #require(config.sources[1].red)
        #expect(red.appKey == "red-app-key")
        #expect(red.appSecret.value == "red-secret-0002")
        #expect(red.logistics == ["red_auto", "red_box"])
        #expect(red.maxAuditTimeUnit == .milliseconds)
        #expect(config.sinkNames == ["console", "ops", "owner-mail"])
        guard case .webhook(let hook) = config.sinks[1].kind, case .email(let mail) = config.sinks[2].kind else {
            Issue.record("wrong sink kinds: \(config.sinks.map(\.kind.name))")
            return
        }
        #expect(hook.url.value == "https://hooks.example.com/cw")
        #expect(hook.secret?.value == "hook-secret-0003")
        #expect(mail.username == "watch@example.com")
        #expect(mail.password?.value == "smtp-pass-0004")
        #expect(mail.to == ["owner@example.com"])
        #expect(mail.tls == .starttls)
        #expect(config.health.notify == ["ops"])
    }

    @Test func theSampleConfigLoadsWithItsVariablesSetAndItsDescriptionHidesEverySecret() throws {
        var environment: [String: String] = [:]
        for (index, name) in CancelWatchConfig.sampleEnvironmentVariables.enumerated() {
            environment[name] = "S3CRET\(index)-\(name.lowercased())"
        }
        environment["OZON_CLIENT_ID"] = "987654"
        environment["TELEGRAM_CHAT_ID"] = "-100200300"
        let config = try load(CancelWatchConfig.sample, environment: environment)
        #expect(config.sources.count == 2)
        #expect(config.sinkNames == ["console", "ops", "team-chat", "owner-mail"])
        #expect(config.health.notify == ["ops", "team-chat"])
        guard case .webhook(let telegram) = config.sink(named: "team-chat")?.kind else {
            Issue.record("team-chat is not a webhook")
            return
        }
        #expect(telegram.format == .telegram)
        #expect(telegram.chatID == "-100200300")
        #expect(telegram.url.value.contains(environment["TELEGRAM_BOT_TOKEN"]!))

        for name in ["OZON_API_KEY", "RED_APP_SECRET", "WEBHOOK_SECRET", "TELEGRAM_BOT_TOKEN", "SMTP_PASSWORD"] {
            #expect(!String(describing: config).contains(environment[name]!), "description shows \(name)")
            var dumped = ""
            dump(config, to: &dumped)
            #expect(!dumped.contains(environment[name]!), "dump shows \(name)")
        }
    }

    // MARK: Defaults

    @Test func everyTopLevelSettingHasADefault() throws {
        let config = try load(minimalSource)
        #expect(config.state == "/etc/cancelwatch/cancelwatch.sqlite")
        #expect(config.rules == ["/etc/cancelwatch/rules"])
        #expect(config.timezone.identifier == "UTC" || config.timezone.secondsFromGMT() == 0)
        #expect(config.listen == nil)
        #expect(config.sinks.isEmpty)
        #expect(config.health == HealthConfig(notify: [], downAfter: 3))
    }

    @Test func sourcesDefaultToTheProductionHostsAMinutePollAndRedAutoLogistics() throws {
        let config = try load(
            """
            sources:
              - {name: o, kind: ozon, client_id: 42, api_key: k}
              - {name: r, kind: red, app_key: a, app_secret: s}
            """)
        let ozon = config.sources[0]
        #expect(ozon.kind == .ozon)
        #expect(ozon.baseURL.absoluteString == "https://api-seller.ozon.ru")
        #expect(ozon.pollInterval == 60)
        #expect(ozon.timeout == 30)
        #expect(ozon.ozon?.clientID == "42")
        let red = config.sources[1]
        #expect(red.kind == .red)
        #expect(red.baseURL.absoluteString == "https://ark.xiaohongshu.com")
        #expect(red.red == RedCredentials(appKey: "a", appSecret: "s", logistics: ["red_auto"], maxAuditTimeUnit: .milliseconds, pageSize: 50))
    }

    @Test func sinksHaveDefaultsForFormatTimeoutRetryTLSAndSubject() throws {
        let config = try load(
            minimalSource + """

            sinks:
              - {name: out, kind: stdout}
              - {name: hook, kind: webhook, url: "https://example.com/hook"}
              - {name: mail, kind: email, url: "smtp://mail.example.com", from: a@example.com, to: b@example.com}
            """)
        #expect(config.sinks[0].kind == .stdout(StdoutSinkConfig(format: .text)))
        guard case .webhook(let hook) = config.sinks[1].kind, case .email(let mail) = config.sinks[2].kind else {
            Issue.record("wrong kinds")
            return
        }
        #expect(hook.format == .generic)
        #expect(hook.timeout == 10)
        #expect(hook.secret == nil)
        #expect(hook.headers.isEmpty)
        #expect(hook.insecure == false)
        #expect(hook.caFile == nil)
        #expect(hook.retry == RetryPolicy(maxAttempts: nil, initialDelay: 1, maxDelay: 300))
        #expect(mail.tls == .starttls)
        #expect(mail.port == 587)
        #expect(mail.url.absoluteString == "smtp://mail.example.com:587")
        #expect(mail.to == ["b@example.com"])
        #expect(mail.cc.isEmpty)
        #expect(mail.subject == "[cancelwatch] {{severity}}: {{rule}} {{order}}")
        #expect(mail.timeout == 30)
        #expect(mail.insecure == false)
    }

    @Test func aListenAddressOtherMachinesCanReachNeedsTheStatusPagesToken() throws {
        let open = diagnostics("listen: 0.0.0.0:9464\n" + minimalSource)
        #expect(open.count == 1)
        #expect(open.first?.line == 1)
        #expect(open.first?.message.contains("auth: {token:") == true, "\(open)")
        #expect(diagnostics("listen: 192.168.1.5:9464\n" + minimalSource).count == 1)
        // A loopback address stays open without one.
        #expect(try load("listen: 127.0.0.1:9464\n" + minimalSource).auth == nil)
        let short = diagnostics("listen: 0.0.0.0:9464\nauth: {token: \"${T}\"}\n" + minimalSource, environment: ["T": "short"])
        #expect(short.count == 1 && short.first?.line == 2 && short.first?.message.contains("at least 16") == true, "\(short)")
        #expect(!short.description.contains("short\""), "the token itself is never shown")
        let unset = diagnostics("listen: 0.0.0.0:9464\nauth: {token: \"${T}\"}\n" + minimalSource)
        #expect(unset.contains { $0.message.contains("T") }, "\(unset)")
        let unknown = diagnostics("listen: 0.0.0.0:9464\nauth: {token: \"0123456789abcdef\", user: x}\n" + minimalSource)
        #expect(unknown.contains { $0.message.contains("user") }, "\(unknown)")
        let fine = try load("listen: 0.0.0.0:9464\nauth: {token: \"${T}\"}\n" + minimalSource, environment: ["T": "0123456789abcdef0123"])
        #expect(fine.auth == StatusAuth(token: "0123456789abcdef0123"))
        let unused = try load("auth: {token: \"${T}\"}\n" + minimalSource, environment: ["T": "0123456789abcdef0123"])
        #expect(unused.warnings.contains { $0.message.contains("'listen' is not") })
    }

    @Test func settingsOverrideTheDefaults() throws {
        let config = try load(
            """
            timezone: Asia/Shanghai
            listen: 0.0.0.0:9100
            auth: {token: "${STATUS_TOKEN}"}
            sources:
              - name: r
                kind: xiaohongshu
                app_key: a
                app_secret: s
                base_url: http://127.0.0.1:8080/
                poll_interval: 1m30s
                timeout: 500ms
                logistics: red_box
                max_audit_time_unit: seconds
                page_size: 100
            sinks:
              - name: hook
                kind: webhook
                url: https://example.com/x
                format: feishu
                timeout: 3s
                headers: {X-Team: ZZheaderZZ}
                insecure: true
                retry: {max_attempts: 5, initial_delay: 2s, max_delay: 1m}
            health: {notify: hook, down_after: 5}
            """, environment: ["STATUS_TOKEN": "status-token-0123456789"])
        #expect(config.timezone.identifier == "Asia/Shanghai")
        #expect(config.listen == ListenAddress(host: "0.0.0.0", port: 9100))
        #expect(config.auth?.token.value == "status-token-0123456789")
        let source = config.sources[0]
        #expect(source.kind == .red)
        #expect(source.marketplace == .xiaohongshu)
        #expect(source.baseURL.absoluteString == "http://127.0.0.1:8080")
        #expect(source.pollInterval == 90)
        #expect(source.timeout == 0.5)
        #expect(source.red?.logistics == ["red_box"])
        #expect(source.red?.maxAuditTimeUnit == .seconds)
        #expect(source.red?.pageSize == 100)
        #expect(!String(describing: config).contains("ZZheaderZZ"), "header values print as secrets")
        guard case .webhook(let hook) = config.sinks[0].kind else { return }
        #expect(hook.format == .feishu)
        #expect(hook.timeout == 3)
        #expect(hook.headers == ["X-Team": "ZZheaderZZ"])
        #expect(hook.insecure)
        #expect(hook.retry == RetryPolicy(maxAttempts: 5, initialDelay: 2, maxDelay: 60))
        #expect(config.health == HealthConfig(notify: ["hook"], downAfter: 5))
    }

    // MARK: Environment variables

    @Test func variablesExpandInsideValuesWithFallbacksAndEscapes() throws {
        let config = try load(
            """
            state: ${STATE_DIR}/cw.sqlite   # ${NOT_EXPANDED_IN_COMMENTS}
            rules: ["${RULES:-./my-rules}", "./literal-$${HOME}"]
            sources:
              - {name: "${SHOP}-1", kind: ozon, client_id: "${ID}", api_key: "${KEY}"}
            """,
            environment: ["STATE_DIR": "/var/lib/cw", "SHOP": "ozon", "ID": "77", "KEY": "k"])
        #expect(config.state == "/var/lib/cw/cw.sqlite")
        #expect(config.rules == ["/etc/cancelwatch/my-rules", "/etc/cancelwatch/literal-${HOME}"])
        #expect(config.sources[0].name == "ozon-1")
        #expect(config.sources[0].ozon?.clientID == "77")
    }

    @Test func aMissingVariableIsAnErrorNamingItTheFileLineAndColumn() {
        let found = diagnostics(
            """
            sources:
              - name: ozon-main
                kind: ozon
                client_id: "${OZON_CLIENT_ID}"
                api_key: "${OZON_API_KEY}"
            """, environment: ["OZON_CLIENT_ID": "1"])
        #expect(found.count == 1)
        let d = found[0]
        #expect(d.line == 5)
        #expect(d.column == 15)
        #expect(d.message.contains("OZON_API_KEY"))
        #expect(d.message.contains("source 'ozon-main'"))
        #expect(d.headline.hasPrefix("/etc/cancelwatch/cancelwatch.yaml:5:15: error: environment variable 'OZON_API_KEY' is not set"))
        #expect(d.rendered.hasSuffix("""

                    api_key: "${OZON_API_KEY}"
                              ^
            """))
    }

    // MARK: Errors

    @Test func anUnknownKeyIsReportedAtItsPositionWithTheClosestKnownKey() {
        let found = diagnostics(
            """
            sources:
              - name: ozon-main
                kind: ozon
                client_id: 1
                api_key: k
                pol_interval: 60s
            """)
        #expect(found.map(\.headline) == [
            "/etc/cancelwatch/cancelwatch.yaml:6:5: error: unknown key 'pol_interval' in source 'ozon-main'; did you mean 'poll_interval'?"
        ])
    }

    @Test func aKeyOfTheOtherSourceKindSaysWhereItBelongs() {
        let found = diagnostics(
            """
            sources:
              - {name: o, kind: ozon, client_id: 1, api_key: k, app_secret: x}
            """)
        #expect(found.count == 1)
        #expect(found.first?.message == "'app_secret' is not a setting of source 'o': it belongs to red sources")
        #expect(found.first?.column == 53)
    }

    @Test func unknownTopLevelKeysAreErrorsToo() {
        let found = diagnostics("sinkz: []\n" + minimalSource)
        #expect(found.map(\.message) == ["unknown key 'sinkz' at the top level; did you mean 'sinks'?"])
        #expect(found.first?.line == 1 && found.first?.column == 1)
    }

    @Test func aBadDurationSaysHowToWriteOne() {
        let found = diagnostics(
            """
            sources:
              - {name: o, kind: ozon, client_id: 1, api_key: k, poll_interval: 5 minutes}
              - {name: p, kind: ozon, client_id: 1, api_key: k, poll_interval: 60}
              - {name: q, kind: ozon, client_id: 1, api_key: k, poll_interval: 500ms}
            """)
        #expect(found.count == 3)
        #expect(found[0].message.contains("invalid duration '5 minutes' for 'poll_interval' in source 'o'"))
        #expect(found[0].message.contains("60s or 1h30m"))
        #expect((found[0].line, found[0].column) == (2, 68))
        #expect(found[1].message.contains("needs a unit: write 60s"))
        #expect(found[2].message.contains("must be from 1s to 1d, not '500ms'"))
    }

    @Test func aBadEnumValueListsTheAllowedValues() {
        let found = diagnostics(
            """
            sources:
              - {name: o, kind: ozonn, client_id: 1, api_key: k}
              - {name: r, kind: red, app_key: a, app_secret: s, logistics: [red_auto, red_bus], max_audit_time_unit: minutes}
            sinks:
              - {name: s, kind: stdout, format: xml}
              - {name: h, kind: webhook, url: "https://x.example", format: teams}
              - {name: m, kind: mail}
            """)
        let messages = found.map(\.message)
        #expect(messages.contains("invalid kind 'ozonn' in source 'o'; expected one of: ozon, red (did you mean 'ozon'?)"))
        #expect(messages.contains { $0.contains("invalid logistics mode 'red_bus'") && $0.contains("red_auto, red_box") && $0.contains("did you mean 'red_box'?") })
        #expect(messages.contains("invalid max_audit_time_unit 'minutes' in source 'r'; expected one of: milliseconds, seconds"))
        #expect(messages.contains("invalid format 'xml' in sink 's'; expected one of: text, json"))
        #expect(messages.contains("invalid format 'teams' in sink 'h'; expected one of: generic, slack, telegram, feishu, dingtalk, wecom"))
        #expect(messages.contains("invalid kind 'mail' in sink 'm'; expected one of: stdout, webhook, email (did you mean 'email'?)"))
    }

    @Test func aValueOfTheWrongTypeNamesTheExpectedType() {
        let found = diagnostics(
            """
            sources:
              - {name: r, kind: red, app_key: a, app_secret: s, page_size: many, timeout: [1s]}
            sinks:
              - {name: h, kind: webhook, url: "https://x.example", insecure: maybe, headers: [a, b]}
            health: [ops]
            """)
        let messages = found.map(\.message)
        #expect(messages.contains("'page_size' in source 'r' must be a whole number, not 'many'"))
        #expect(messages.contains("'timeout' in source 'r' must be a duration such as 60s or 1h30m, not a list"))
        #expect(messages.contains("'insecure' in sink 'h' must be true or false, not 'maybe'"))
        #expect(messages.contains("headers of sink 'h' must be a mapping of header names to values, not a list"))
        #expect(messages.contains("health must be a mapping (notify:, down_after:), not a list"))
        #expect(found.count == 5)
    }

    @Test func sourcesMustBeAListAndOutOfRangeNumbersAreErrors() {
        let found = diagnostics(
            """
            sources: {name: o}
            """)
        #expect(found.map(\.message) == ["'sources' at the top level must be a list of sources, not a mapping"])
        let range = diagnostics(
            """
            sources:
              - {name: r, kind: red, app_key: a, app_secret: s, page_size: 500}
            """)
        #expect(range.map(\.message) == ["'page_size' in source 'r' must be from 1 to 100, not 500"])
    }

    @Test func missingRequiredKeysNameTheKeyAndTheItem() {
        let found = diagnostics(
            """
            sources:
              - {name: o, kind: ozon, client_id: 1}
              - {kind: red, app_key: a, app_secret: s}
            sinks:
              - {name: m, kind: email, url: "smtp://x.example"}
            """)
        let messages = found.map(\.message)
        #expect(messages.contains("missing required key 'api_key' in source 'o'"))
        #expect(messages.contains("missing required key 'name' in source #2"))
        #expect(messages.contains("missing required key 'from' in sink 'm'"))
        #expect(messages.contains("missing required key 'to' in sink 'm'"))
        #expect(diagnostics("state: x.sqlite").map(\.message).contains { $0.hasPrefix("missing required key 'sources' at the top level") })
    }

    @Test func namesMustBeUniqueAmongSourcesAndAmongSinks() throws {
        let found = diagnostics(
            """
            sources:
              - {name: shop, kind: ozon, client_id: 1, api_key: k}
              - {name: shop, kind: red, app_key: a, app_secret: s}
            sinks:
              - {name: ops, kind: stdout}
              - {name: ops, kind: stdout}
            """)
        #expect(found.map(\.headline) == [
            "/etc/cancelwatch/cancelwatch.yaml:3:12: error: duplicate source name 'shop' (first used on line 2): source names must be unique",
            "/etc/cancelwatch/cancelwatch.yaml:6:12: error: duplicate sink name 'ops' (first used on line 5): sink names must be unique",
        ])
        // A source and a sink may share a name.
        let config = try load(minimalSource + "\nsinks: [{name: shop, kind: stdout}]")
        #expect(config.sinkNames == ["shop"])
    }

    @Test func aTelegramWebhookNeedsAChatID() {
        let found = diagnostics(
            minimalSource + """

            sinks:
              - name: tg
                kind: webhook
                format: telegram
                url: "https://api.telegram.org/bot123:ABC/sendMessage"
              - {name: slack, kind: webhook, format: slack, url: "https://hooks.slack.com/x", chat_id: 5}
            """)
        #expect(found.count == 2)
        #expect(found[0].message.hasPrefix("sink 'tg' has format: telegram but no 'chat_id'"))
        #expect((found[0].line, found[0].column) == (6, 13))
        #expect(found[1].message == "'chat_id' in sink 'slack' is only used with format: telegram (this sink's format is slack)")
    }

    @Test func emailTLSFollowsTheSchemeAndIsOffOnlyWhenWrittenOut() throws {
        let config = try load(
            minimalSource + """

            sinks:
              - {name: a, kind: email, url: "smtp://mx.example:2525", from: x@example.com, to: y@example.com}
              - {name: b, kind: email, url: "smtps://mx.example", from: x@example.com, to: y@example.com}
              - {name: c, kind: email, url: "smtp://localhost:1025", tls: none, from: x@example.com, to: [y@example.com, z@example.com], cc: w@example.com}
            """)
        let mails = config.sinks.compactMap { sink -> EmailSinkConfig? in
            if case .email(let mail) = sink.kind { mail } else { nil }
        }
        #expect(mails.map(\.tls) == [.starttls, .implicit, .unencrypted])
        #expect(mails.map(\.port) == [2525, 465, 1025])
        #expect(mails[1].url.absoluteString == "smtps://mx.example:465")
        #expect(mails[2].to == ["y@example.com", "z@example.com"])
        #expect(mails[2].cc == ["w@example.com"])

        let found = diagnostics(
            minimalSource + """

            sinks:
              - {name: a, kind: email, url: "smtps://mx.example", tls: none, from: x@example.com, to: y@example.com}
              - {name: b, kind: email, url: "smtp://mx.example", tls: implicit, from: x@example.com, to: y@example.com}
              - {name: c, kind: email, url: "http://mx.example", from: x@example.com, to: y@example.com}
              - {name: d, kind: email, url: "smtp://u:pw@mx.example", from: x@example.com, to: nobody}
            """)
        let messages = found.map(\.message)
        #expect(messages.contains("tls: none in sink 'a' needs an smtp:// URL (smtps:// is always encrypted)"))
        #expect(messages.contains("tls: implicit in sink 'b' needs an smtps:// URL (usually port 465)"))
        #expect(messages.contains { $0.hasPrefix("'url' in sink 'c' must be smtp://host:587 (STARTTLS) or smtps://host:465") })
        #expect(messages.contains { $0.hasPrefix("'url' in sink 'd' must not hold a user name or password") })
        #expect(messages.contains("'to' in sink 'd' must hold email addresses; 'nobody' is not one"))
        #expect(!found.contains { $0.rendered.contains("pw@") })
    }

    @Test func healthNotifyMustNameConfiguredSinks() {
        let found = diagnostics(
            minimalSource + """

            sinks: [{name: ops, kind: stdout}, {name: owner-mail, kind: stdout}]
            health:
              notify: [opz, pager]
              down_after: 0
            """)
        #expect(found.map(\.message) == [
            "unknown sink 'opz' in health.notify; did you mean 'ops'?",
            "unknown sink 'pager' in health.notify (sinks: ops, owner-mail)",
            "'down_after' in health must be from 1 to 1000000, not 0",
        ])
        #expect((found[0].line, found[0].column) == (5, 12))
    }

    @Test func secretsNeverAppearInErrorsOrDescriptions() throws {
        let secrets = [
            "OZON_API_KEY": "ZZozonKeyZZ", "RED_APP_SECRET": "ZZredSecretZZ", "HOOK_SECRET": "ZZhookSecretZZ",
            "SMTP_PASSWORD": "ZZsmtpPassZZ", "TG_TOKEN": "ZZtgTokenZZ", "AUTH": "ZZbearerZZ",
        ]
        let literalSecrets = ["QQliteralKeyQQ", "QQliteralPassQQ", "QQliteralHookQQ", "QQheaderQQ"]
        let yaml = """
            sources:
              - {name: o, kind: ozon, client_id: "${OZON_API_KEY}", api_key: "${OZON_API_KEY}", bogus: 1}
              - {name: p, kind: ozon, client_id: 1, api_key: QQliteralKeyQQ, pol_interval: 1s}
              - {name: r, kind: red, app_key: a, app_secret: "${RED_APP_SECRET}", page_size: 0, oops: 1}
              - {name: r2, kind: red, app_key: a, app_secret: [QQliteralKeyQQ]}
            sinks:
              - {name: h, kind: webhook, url: "ftp://x/${TG_TOKEN}", secret: "${HOOK_SECRET}", headers: {Authorization: "Bearer ${AUTH}", X-Key: QQheaderQQ}, timeout: x}
              - {name: t, kind: webhook, format: telegram, url: "https://api.telegram.org/botQQliteralHookQQ/sendMessage", oops: 1}
              - {name: m, kind: email, url: "smtp://mx.example", password: QQliteralPassQQ, from: x@example.com, to: y@example.com, tls: bad}
              - {name: n, kind: email, url: "smtp://mx.example", username: u, password: "${SMTP_PASSWORD}", from: x@example.com, to: y@example.com, tlz: 1}
            health: {notify: [nope]}
            """
        let found = diagnostics(yaml, environment: secrets)
        #expect(found.count >= 10)
        let error = ConfigError(diagnostics: found)
        let texts = found.flatMap { [$0.rendered, $0.headline, $0.message, String(describing: $0), String(reflecting: $0)] }
            + [error.description, error.headlines, String(reflecting: error)]
        for text in texts {
            for secret in Array(secrets.values) + literalSecrets {
                #expect(!text.contains(secret), "\(secret) leaked in: \(text)")
            }
        }
        // The lines quoted under the errors still point at the right place.
        #expect(error.description.contains("api_key: <redacted>, pol_interval: 1s}"))

        // Syntax errors, before anything is known about the file, mask secret-looking values too.
        let broken = diagnostics("sources:\n  - {name: p, kind: ozon, api_key: QQliteralKeyQQ, client_id: 1\n")
        #expect(broken.count == 1)
        #expect(!ConfigError(diagnostics: broken).description.contains("QQliteralKeyQQ"))

        let secret = Secret("ZZplainZZ")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "Secret(<redacted>)")
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("ZZplainZZ"))
        #expect(secret.value == "ZZplainZZ")
        #expect("\(Secret.url("https://api.telegram.org/botZZ:tok/sendMessage"))" == "https://api.telegram.org/<redacted>")
    }

    @Test func relativePathsResolveAgainstTheConfigFilesDirectory() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("etc"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "pem".write(to: directory.appendingPathComponent("ca.pem"), atomically: true, encoding: .utf8)
        let file = directory.appendingPathComponent("etc/cancelwatch.yaml")
        try """
            state: data/state.sqlite
            rules: [rules, ../shared-rules/urgent.rules, /opt/rules]
            sources: [{name: o, kind: ozon, client_id: 1, api_key: k}]
            sinks: [{name: h, kind: webhook, url: "https://x.example", ca_file: ../ca.pem}]
            """.write(to: file, atomically: true, encoding: .utf8)
        let config = try CancelWatchConfig.load(path: file.path, environment: [:])
        let base = directory.standardizedFileURL.path
        #expect(config.path == file.path)
        #expect(config.state == base + "/etc/data/state.sqlite")
        #expect(config.rules == [base + "/etc/rules", base + "/shared-rules/urgent.rules", "/opt/rules"])
        guard case .webhook(let hook) = config.sinks[0].kind else { return }
        #expect(hook.caFile == base + "/ca.pem")
    }

    @Test func aMissingConfigFileNamesThePathAndSuggestsTheDemo() {
        #expect {
            _ = try CancelWatchConfig.load(path: "/nonexistent/cancelwatch.yaml", environment: [:])
        } throws: { error in
            let text = String(describing: error)
            return text.hasPrefix("/nonexistent/cancelwatch.yaml: error: no config file at '/nonexistent/cancelwatch.yaml'")
                && text.contains("cancelwatch demo")
        }
    }

    @Test func aYAMLSyntaxErrorIsReportedAtItsPosition() {
        let found = diagnostics(
            """
            sources:
              - name: o
                kind: ozon
               api_key: k
            """)
        #expect(found.count == 1)
        #expect(found[0].message.hasPrefix("YAML syntax error:"))
        #expect((found[0].line, found[0].column) == (4, 4))
        #expect(found[0].headline.hasPrefix("/etc/cancelwatch/cancelwatch.yaml:4:4: error: YAML syntax error"))

        let duplicate = diagnostics("sources: []\nstate: a\nstate: b\n")
        #expect(duplicate.map(\.message) == ["duplicate key 'state' in the same mapping: each key may appear once"])
    }

    @Test func severalErrorsAreReportedAtOnceInFileOrder() throws {
        let yaml = """
            timezone: Europe/Moskow
            listen: localhost
            sources:
              - {name: o, kind: ozon, client_id: abc, api_key: k, poll_interval: soon}
              - {name: r, kind: red, app_key: a, app_secret: s, logistic: [red_box]}
            sinks:
              - {name: h, kind: webhook, url: "not a url"}
            health: {notify: [h2]}
            """
        let found = diagnostics(yaml)
        #expect(found.map(\.line) == [1, 2, 4, 4, 5, 7, 8])
        #expect(found[0].message == "unknown timezone 'Europe/Moskow'; did you mean 'Europe/Moscow'?")
        #expect(found[1].message.hasPrefix("invalid listen address 'localhost'"))
        #expect(found[2].message == "'client_id' in source 'o' must be Ozon's numeric Client-Id, not 'abc'")
        #expect(found[4].message == "unknown key 'logistic' in source 'r'; did you mean 'logistics'?")
        #expect(found[5].message == "'url' in sink 'h' must be an http:// or https:// URL, not (the value is secret and not shown)")
        let description = ConfigError(diagnostics: found).description
        #expect(description.hasSuffix("7 errors in /etc/cancelwatch/cancelwatch.yaml"))
        #expect(description.contains("""
            /etc/cancelwatch/cancelwatch.yaml:1:11: error: unknown timezone 'Europe/Moskow'; did you mean 'Europe/Moscow'?
                timezone: Europe/Moskow
                          ^
            """))
    }

    @Test func listenAddressesParseHostAndPort() {
        #expect(ListenAddress(parsing: "127.0.0.1:9464") == ListenAddress(host: "127.0.0.1", port: 9464))
        #expect(ListenAddress(parsing: "[::1]:80") == ListenAddress(host: "::1", port: 80))
        #expect(ListenAddress(parsing: ":9464") == nil)
        #expect(ListenAddress(parsing: "0.0.0.0:9464") == ListenAddress(host: "0.0.0.0", port: 9464))
        #expect(ListenAddress(parsing: "9464") == ListenAddress(host: "127.0.0.1", port: 9464))
        #expect(ListenAddress(parsing: "host:99999") == nil)
        #expect(ListenAddress(parsing: "host:") == nil)
        #expect(ListenAddress(host: "::1", port: 80).description == "[::1]:80")
    }

    @Test func closestNameSuggestionsCatchTyposButNotUnrelatedWords() {
        #expect(NameSuggester.closest(to: "pol_interval", among: ConfigKeys.sourceCommon) == "poll_interval")
        #expect(NameSuggester.closest(to: "tiemout", among: ConfigKeys.sourceCommon) == "timeout")
        #expect(NameSuggester.closest(to: "colour", among: ConfigKeys.sourceCommon) == nil)
    }

    @Test func arbitraryBytesNeverCrashTheLoader() async {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["sources:", "\n", "  - ", "{", "}", "[", "]", ":", ",", "name", "kind: ozon", "${", "X}", "\"", "'", "#",
                      "api_key: k", "\t", "&a", "*a", "!!int", "|", ">", "- ", "60s", "ü", "飞书"]
        for round in 0..<300 {
            // A long loop on the cooperative pool: let other tests' timers run.
            if round % 64 == 0 { await Task.yield() }
            let text = (0..<Int.random(in: 0...30, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            _ = try? load(text, environment: ["X": "1"])
        }
    }
}
