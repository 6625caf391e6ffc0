import Foundation
import Yams

extension CancelWatchConfig {
    /// Reads and checks the config file at `path`. Every problem comes back at once in the
    /// ``ConfigError``; a missing file is an error that says how to get started.
    public static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigError) -> CancelWatchConfig {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigError(
                path: path,
                message: "no config file at '\(path)'. Try `cancelwatch demo` to see cancelwatch work with no setup, "
                    + "or write one from the sample in the README (real accounts: sources, sinks, rules) and pass it with --config")
        }
        guard !isDirectory.boolValue else {
            throw ConfigError(path: path, message: "'\(path)' is a directory, not a config file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(path: path, message: "cannot read '\(path)' (check its permissions)")
        }
        guard var text = String(data: data, encoding: .utf8) else {
            throw ConfigError(path: path, message: "'\(path)' is not UTF-8 text")
        }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        return try parse(yaml: text, path: path, environment: environment)
    }

    /// Checks config text as if it were read from `path` (relative paths in it resolve
    /// against the directory of `path`).
    public static func parse(yaml: String, path: String, environment: [String: String]) throws(ConfigError)
        -> CancelWatchConfig
    {
        let reader = ConfigReader(text: yaml, path: path, environment: environment)
        var config = reader.read()
        let diagnostics = reader.finishedDiagnostics()
        config?.warnings = reader.finishedWarnings()
        if let config, diagnostics.isEmpty { return config }
        throw ConfigError(
            diagnostics: diagnostics.isEmpty
                ? [ConfigDiagnostic(path: path, line: 0, column: 0, message: "the config could not be read")] : diagnostics)
    }
}

/// The keys each part of the config accepts.
enum ConfigKeys {
    static let top = ["state", "rules", "timezone", "listen", "sources", "sinks", "health"]
    static let sourceCommon = ["name", "kind", "base_url", "poll_interval", "timeout"]
    static let ozon = ["client_id", "api_key"]
    static let red = ["app_key", "app_secret", "logistics", "max_audit_time_unit", "page_size"]
    static let sinkCommon = ["name", "kind"]
    static let stdout = ["format"]
    static let webhook = ["url", "secret", "timeout", "headers", "format", "chat_id", "ca_file", "insecure", "retry"]
    static let email = [
        "url", "tls", "username", "password", "from", "to", "cc", "subject", "timeout", "ca_file", "insecure", "retry",
    ]
    static let health = ["notify", "down_after", "silent_after"]
    static let retry = ["max_attempts", "initial_delay", "max_delay"]
}

/// A scalar value after `${VAR}` expansion.
struct ConfigScalar {
    /// The expanded text.
    var text: String
    /// The text as written in the file.
    var raw: String
    var mark: Mark?
    /// Variables the value came from; such values are not echoed in messages.
    var variables: [String]
    var isSecret: Bool
    /// A URL: shown as its scheme, host and port only when it has more (user info, a path, a query).
    var isURL = false

    /// How a message may show the value: quoted, or only where it came from, or not at all.
    var shown: String {
        if isSecret { return "(the value is secret and not shown)" }
        if isURL, case let redacted = Secret.redactedURL(text), redacted != text { return "'\(redacted)'" }
        if !variables.isEmpty { return "'\(raw)' (as expanded from the environment)" }
        let short = text.count > 60 ? String(text.prefix(57)) + "..." : text
        return "'\(short)'"
    }
}

/// A mapping of the file with its keys read, and what to call it in messages.
struct ConfigMappingView {
    var mark: Mark?
    var entries: [(key: String, keyMark: Mark?, value: Node)]
    /// `source 'ozon-main'`, `sink #2`, `health`, `the top level`.
    var name: String
    /// `in source 'ozon-main'`, `at the top level`.
    var inName: String { name == "the top level" ? "at the top level" : "in \(name)" }

    func value(_ key: String) -> Node? { entries.first { $0.key == key }?.value }
    func has(_ key: String) -> Bool { value(key) != nil }
}

/// Turns YAML text into a ``CancelWatchConfig``, collecting every problem on the way.
final class ConfigReader {
    let text: String
    let path: String
    let environment: [String: String]
    let baseDirectory: String
    private(set) var diagnostics: [ConfigDiagnostic] = []
    private(set) var warnings: [ConfigDiagnostic] = []
    /// Secret texts seen (as written and as expanded), masked in quoted lines and messages.
    private(set) var secretTexts: Set<String> = []
    /// Where secret values start (line, column), masked whole when their line is quoted.
    private var secretMarks: [Int: [Int]] = [:]
    private lazy var lines: [String] = text.split(separator: "\n", omittingEmptySubsequences: false).map {
        $0.hasSuffix("\r") ? String($0.dropLast()) : String($0)
    }

    init(text: String, path: String, environment: [String: String]) {
        self.text = text
        self.path = path
        self.environment = environment
        var directory = (path as NSString).deletingLastPathComponent
        if directory.isEmpty { directory = "." }
        if !directory.hasPrefix("/") {
            directory = FileManager.default.currentDirectoryPath + "/" + directory
        }
        self.baseDirectory = URL(fileURLWithPath: directory).standardizedFileURL.path
    }

    // MARK: Diagnostics

    func report(_ message: String, line: Int, column: Int) {
        diagnostics.append(ConfigDiagnostic(path: path, line: line, column: column, message: message))
    }

    func report(_ message: String, at mark: Mark?) {
        report(message, line: mark?.line ?? 0, column: mark?.column ?? 0)
    }

    /// A downgrade or other risk that does not stop the config from loading.
    func warn(_ message: String, at mark: Mark?) {
        warnings.append(
            ConfigDiagnostic(
                path: path, line: mark?.line ?? 0, column: mark?.column ?? 0, message: message, severity: .warning))
    }

    /// The warnings in file order, finished like ``finishedDiagnostics()``.
    func finishedWarnings() -> [ConfigDiagnostic] { finished(warnings) }

    /// The diagnostics in file order, secrets masked, each with its line of the file.
    func finishedDiagnostics() -> [ConfigDiagnostic] { finished(diagnostics) }

    private func finished(_ diagnostics: [ConfigDiagnostic]) -> [ConfigDiagnostic] {
        let scrubbable = secretTexts.filter { $0.count >= 4 && !ConfigLineMasking.isOnlyEnvironmentReferences($0) }
            .sorted { $0.count > $1.count }
        var result: [ConfigDiagnostic] = []
        for var diagnostic in diagnostics {
            for secret in scrubbable {
                diagnostic.message = diagnostic.message.replacingOccurrences(of: secret, with: Secret.placeholder)
            }
            if diagnostic.line >= 1, diagnostic.line <= lines.count {
                let masked = ConfigLineMasking.mask(
                    lines: lines, index: diagnostic.line - 1, column: max(1, diagnostic.column), knownSecrets: secretTexts,
                    secretColumns: secretMarks[diagnostic.line] ?? [])
                diagnostic.sourceLine = masked.line
                diagnostic.caretColumn = masked.column
            }
            if !result.contains(diagnostic) { result.append(diagnostic) }
        }
        return result.enumerated().sorted {
            ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset)
        }.map(\.element)
    }

    // MARK: The whole file

    func read() -> CancelWatchConfig? {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            reportSyntax(error)
            return nil
        } catch {
            report("the file is not valid YAML", line: 0, column: 0)
            return nil
        }
        guard let root, !isNull(root) else {
            report("the config file is empty: it needs at least 'sources:' (see the sample config in the README)", line: 0, column: 0)
            return nil
        }
        guard let top = mappingView(root, name: "the top level", expected: "a mapping of settings (state:, sources:, sinks:, …)")
        else { return nil }
        checkKeys(top, allowed: ConfigKeys.top)

        var config = CancelWatchConfig(path: path)
        config.state = resolvePath(string(top, "state", required: false) ?? CancelWatchConfig.defaultStatePath)
        if let rules = stringList(top, "rules", expected: "a rule file or directory, or a list of them") {
            config.rules = rules.map { resolvePath($0.text) }
        } else {
            config.rules = CancelWatchConfig.defaultRulesPaths.map(resolvePath)
        }
        if let zone = scalar(top, "timezone", expected: "an IANA time zone name such as Europe/Moscow") {
            if let timeZone = TimeZone(identifier: zone.text) {
                config.timezone = timeZone
            } else {
                let hint = NameSuggester.closest(to: zone.text, among: TimeZone.knownTimeZoneIdentifiers)
                    .map { "; did you mean '\($0)'?" } ?? " (write an IANA name such as Europe/Moscow, Asia/Shanghai or UTC)"
                report("unknown timezone \(zone.shown)\(hint)", at: zone.mark)
            }
        }
        if let listen = scalar(top, "listen", expected: "an address such as 127.0.0.1:9464") {
            switch ListenAddress.parse(listen.text) {
            case .success(let address):
                config.listen = address
                if let warning = address.publicWarning { warn(warning, at: listen.mark) }
            case .failure(let error):
                report("invalid listen address \(listen.shown): \(error.message)", at: listen.mark)
            }
        }

        if let sourcesNode = top.value("sources"), !isNull(sourcesNode) {
            if let items = sequence(sourcesNode, key: "sources", in: top, expected: "a list of sources") {
                if items.isEmpty { report("'sources' is empty: add at least one marketplace account", at: sourcesNode.mark) }
                config.sources = readSources(items)
            }
        } else {
            report(
                "missing required key 'sources' at the top level: list the marketplace accounts to poll",
                at: top.value("sources")?.mark ?? top.mark)
        }
        if let sinksNode = top.value("sinks"), !isNull(sinksNode),
            let items = sequence(sinksNode, key: "sinks", in: top, expected: "a list of sinks")
        {
            config.sinks = readSinks(items)
        }
        if let healthNode = top.value("health"), !isNull(healthNode),
            let health = mappingView(healthNode, name: "health", expected: "a mapping (notify:, down_after:)")
        {
            config.health = readHealth(health, sinkNames: config.sinks.map(\.name))
        }
        return config
    }

    private func reportSyntax(_ error: YamlError) {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = "YAML syntax error: \(problem)"
            if let context {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            report(message, at: mark)
        case .reader(let problem, let offset, _, _):
            var line = 0
            var column = 0
            if let offset {
                let prefix = text.prefix(offset)
                line = prefix.filter { $0 == "\n" }.count + 1
                column = (prefix.split(separator: "\n", omittingEmptySubsequences: false).last?.unicodeScalars.count ?? 0) + 1
            }
            report("the file cannot be read as YAML: \(problem)", line: line, column: column)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            report("duplicate key \(keys) in the same mapping: each key may appear once", at: context.mark)
        default:
            report("the file is not valid YAML", line: 0, column: 0)
        }
    }

    // MARK: Sources

    private func readSources(_ items: [Node]) -> [SourceConfig] {
        var sources: [SourceConfig] = []
        var seen: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            guard let m = mappingView(item, name: "source #\(index + 1)", expected: "a mapping (name:, kind:, …)") else {
                continue
            }
            var view = m
            let name = itemName(view, kind: "source", seen: &seen)
            if let name { view.name = "source '\(name)'" }

            let kind = choice(
                view, "kind", SourceConfig.Kind.self, aliases: ["xiaohongshu": .red], required: true)
            switch kind {
            case .ozon: checkKeys(view, allowed: ConfigKeys.sourceCommon + ConfigKeys.ozon, elsewhere: ["red sources": ConfigKeys.red])
            case .red: checkKeys(view, allowed: ConfigKeys.sourceCommon + ConfigKeys.red, elsewhere: ["ozon sources": ConfigKeys.ozon])
            case nil: checkKeys(view, allowed: ConfigKeys.sourceCommon + ConfigKeys.ozon + ConfigKeys.red)
            }

            var baseURL: URL?
            if let value = scalar(view, "base_url", expected: "an http or https URL", url: true) {
                baseURL = httpURL(value, key: "base_url", in: view)
                if let url = baseURL, url.query != nil || url.fragment != nil {
                    report("'base_url' \(view.inName) must not have a query or fragment", at: value.mark)
                }
                if let url = baseURL, url.user != nil || url.password != nil {
                    report("'base_url' \(view.inName) must not hold a user name or password", at: value.mark)
                }
                if let url = baseURL, Self.isCleartextToAnotherHost(url) {
                    warn(
                        "'base_url' \(view.inName) is http:// to \(url.host ?? "a host") (not this machine): the account's "
                            + "credentials and every answer travel unencrypted; use https://", at: value.mark)
                }
            }
            let pollInterval =
                duration(view, "poll_interval", range: SourceConfig.pollIntervalRange) ?? SourceConfig.defaultPollInterval
            let timeout = duration(view, "timeout", range: SourceConfig.timeoutRange) ?? SourceConfig.defaultTimeout

            let credentials: SourceCredentials?
            switch kind {
            case .ozon: credentials = readOzon(view).map(SourceCredentials.ozon)
            case .red: credentials = readRed(view).map(SourceCredentials.red)
            case nil: credentials = nil
            }
            if let name, let credentials {
                sources.append(
                    SourceConfig(
                        name: name, baseURL: baseURL, pollInterval: pollInterval, timeout: timeout,
                        credentials: credentials))
            }
        }
        return sources
    }

    private func readOzon(_ m: ConfigMappingView) -> OzonCredentials? {
        var clientID: String?
        if let value = scalar(m, "client_id", expected: "the numeric Client-Id") {
            let digits = value.text.trimmingCharacters(in: .whitespaces)
            if !digits.isEmpty, digits.allSatisfy({ ("0"..."9").contains($0) }) {
                clientID = digits
            } else {
                report("'client_id' \(m.inName) must be Ozon's numeric Client-Id, not \(value.shown)", at: value.mark)
            }
        } else {
            missing("client_id", in: m)
        }
        let apiKey = secret(m, "api_key", required: true)
        guard let clientID, let apiKey else { return nil }
        return OzonCredentials(clientID: clientID, apiKey: apiKey)
    }

    private func readRed(_ m: ConfigMappingView) -> RedCredentials? {
        let appKey = string(m, "app_key", required: true)
        let appSecret = secret(m, "app_secret", required: true)
        var logistics = RedCredentials.defaultLogistics
        if let values = stringList(m, "logistics", expected: "a list of logistics modes (red_auto, red_box)") {
            var chosen: [String] = []
            for value in values {
                if !RedCredentials.knownLogistics.contains(value.text) {
                    let hint = NameSuggester.closest(to: value.text, among: RedCredentials.knownLogistics)
                        .map { " (did you mean '\($0)'?)" } ?? ""
                    report(
                        "invalid logistics mode \(value.shown) \(m.inName); expected one of: red_auto, red_box\(hint)",
                        at: value.mark)
                } else if chosen.contains(value.text) {
                    report("logistics mode '\(value.text)' is listed twice \(m.inName)", at: value.mark)
                } else {
                    chosen.append(value.text)
                }
            }
            if values.isEmpty { report("'logistics' \(m.inName) is empty; leave it out for [red_auto]", at: m.value("logistics")?.mark) }
            if !chosen.isEmpty { logistics = chosen }
        }
        let unit = choice(m, "max_audit_time_unit", MaxAuditTimeUnit.self, aliases: ["ms": .milliseconds, "s": .seconds])
        let pageSize = integer(m, "page_size", range: RedCredentials.pageSizeRange) ?? RedCredentials.defaultPageSize
        guard let appKey, let appSecret else { return nil }
        return RedCredentials(
            appKey: appKey, appSecret: appSecret, logistics: logistics, maxAuditTimeUnit: unit ?? .milliseconds,
            pageSize: pageSize)
    }

    // MARK: Sinks

    private func readSinks(_ items: [Node]) -> [SinkConfig] {
        var sinks: [SinkConfig] = []
        var seen: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            guard let m = mappingView(item, name: "sink #\(index + 1)", expected: "a mapping (name:, kind:, …)") else {
                continue
            }
            var view = m
            let name = itemName(view, kind: "sink", seen: &seen)
            if let name { view.name = "sink '\(name)'" }

            let kindValue = scalar(view, "kind", expected: "one of: stdout, webhook, email")
            var kindName: String?
            if let kindValue {
                if SinkConfig.Kind.names.contains(kindValue.text) {
                    kindName = kindValue.text
                } else {
                    badChoice(kindValue, key: "kind", in: view, allowed: SinkConfig.Kind.names)
                }
            } else {
                missing("kind", in: view)
            }
            var kind: SinkConfig.Kind?
            let others: (String) -> [String: [String]] = { mine in
                var result: [String: [String]] = [:]
                for (k, keys) in [("stdout sinks", ConfigKeys.stdout), ("webhook sinks", ConfigKeys.webhook), ("email sinks", ConfigKeys.email)]
                where !k.hasPrefix(mine) { result[k] = keys }
                return result
            }
            switch kindName {
            case "stdout":
                checkKeys(view, allowed: ConfigKeys.sinkCommon + ConfigKeys.stdout, elsewhere: others("stdout"))
                let format = choice(view, "format", StdoutSinkConfig.Format.self) ?? .text
                kind = .stdout(StdoutSinkConfig(format: format))
            case "webhook":
                checkKeys(view, allowed: ConfigKeys.sinkCommon + ConfigKeys.webhook, elsewhere: others("webhook"))
                kind = readWebhook(view).map(SinkConfig.Kind.webhook)
            case "email":
                checkKeys(view, allowed: ConfigKeys.sinkCommon + ConfigKeys.email, elsewhere: others("email"))
                kind = readEmail(view).map(SinkConfig.Kind.email)
            default:
                checkKeys(view, allowed: Array(Set(ConfigKeys.sinkCommon + ConfigKeys.stdout + ConfigKeys.webhook + ConfigKeys.email)).sorted())
            }
            if let name, let kind { sinks.append(SinkConfig(name: name, kind: kind)) }
        }
        return sinks
    }

    private func readWebhook(_ m: ConfigMappingView) -> WebhookSinkConfig? {
        var url: Secret?
        if let value = scalar(m, "url", expected: "an http or https URL", secret: true, url: true) {
            if let parsed = httpURL(value, key: "url", in: m) {
                url = Secret.url(value.text)
                if Self.isCleartextToAnotherHost(parsed) {
                    warn(
                        "'url' \(m.inName) is http:// to \(parsed.host ?? "a host") (not this machine): the alerts, and any "
                            + "token in the URL or the headers, travel unencrypted; use https://", at: value.mark)
                }
            }
        } else {
            missing("url", in: m)
        }
        let signingSecret = secret(m, "secret", required: false)
        let timeout = duration(m, "timeout", range: WebhookSinkConfig.timeoutRange) ?? WebhookSinkConfig.defaultTimeout
        let headers = readHeaders(m)
        let format = choice(m, "format", WebhookSinkConfig.Format.self) ?? .generic
        let chatID = string(m, "chat_id", required: false)
        if format == .telegram, chatID == nil, !m.has("chat_id") {
            report(
                "\(m.name) has format: telegram but no 'chat_id': Telegram needs the chat to post to "
                    + "(url: https://api.telegram.org/bot<token>/sendMessage, chat_id: <chat id>)",
                at: m.value("format")?.mark ?? m.mark)
        } else if format != .telegram, let chatNode = m.value("chat_id") {
            report("'chat_id' \(m.inName) is only used with format: telegram (this sink's format is \(format.rawValue))", at: chatNode.mark)
        }
        let caFile = caFile(m)
        let insecure = insecureFlag(m)
        let retry = readRetry(m)
        guard let url else { return nil }
        return WebhookSinkConfig(
            url: url, secret: signingSecret, timeout: timeout, headers: headers, format: format, chatID: chatID,
            caFile: caFile, insecure: insecure, retry: retry)
    }

    private func readHeaders(_ m: ConfigMappingView) -> [String: String] {
        guard let node = m.value("headers"), !isNull(node) else { return [:] }
        guard let headers = mappingView(node, name: "headers of \(m.name)", expected: "a mapping of header names to values")
        else { return [:] }
        var result: [String: String] = [:]
        for entry in headers.entries {
            let allowed = CharacterSet(charactersIn: "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
            if entry.key.isEmpty || entry.key.unicodeScalars.contains(where: { !allowed.contains($0) }) {
                report("'\(entry.key)' in headers of \(m.name) is not a valid HTTP header name", at: entry.keyMark)
                continue
            }
            guard let value = scalar(headers, entry.key, expected: "a header value", secret: true) else {
                if isNull(entry.value) { report("header '\(entry.key)' of \(m.name) needs a value", at: entry.keyMark) }
                continue
            }
            result[entry.key] = value.text
        }
        return result
    }

    private func readEmail(_ m: ConfigMappingView) -> EmailSinkConfig? {
        var url: URL?
        var scheme = "smtp"
        if let value = scalar(m, "url", expected: "an smtp:// or smtps:// URL", url: true) {
            if var components = URLComponents(string: value.text), let s = components.scheme?.lowercased(),
                s == "smtp" || s == "smtps", let host = components.host, !host.isEmpty
            {
                if components.user != nil || components.password != nil {
                    report(
                        "'url' \(m.inName) must not hold a user name or password: put them in 'username' and 'password'",
                        at: value.mark)
                } else if portIsInRange(components, key: "url", in: m, value: value) {
                    scheme = s
                    components.scheme = s
                    if components.port == nil { components.port = s == "smtps" ? 465 : 587 }
                    url = components.url
                }
            } else {
                report(
                    "'url' \(m.inName) must be smtp://host:587 (STARTTLS) or smtps://host:465 (implicit TLS), not \(value.shown)",
                    at: value.mark)
            }
        } else {
            missing("url", in: m)
        }
        var tls: EmailSinkConfig.TLSMode = scheme == "smtps" ? .implicit : .starttls
        if let tlsNode = m.value("tls"), let explicit = choice(m, "tls", EmailSinkConfig.TLSMode.self), url != nil {
            switch (scheme, explicit) {
            case ("smtps", .starttls):
                report("tls: starttls \(m.inName) needs an smtp:// URL (smtps:// is TLS from the start)", at: tlsNode.mark)
            case ("smtps", .unencrypted):
                report("tls: none \(m.inName) needs an smtp:// URL (smtps:// is always encrypted)", at: tlsNode.mark)
            case ("smtp", .implicit):
                report("tls: implicit \(m.inName) needs an smtps:// URL (usually port 465)", at: tlsNode.mark)
            default:
                tls = explicit
            }
        }
        let username = string(m, "username", required: false)
        let password = secret(m, "password", required: false)
        if password != nil, username == nil, let node = m.value("password") {
            report("'password' \(m.inName) is set but 'username' is not", at: node.mark)
        }
        if url != nil, tls == .unencrypted {
            let mark = m.value("tls")?.mark ?? m.mark
            if password != nil {
                warn(
                    "tls: none \(m.inName) sends the SMTP password in clear (AUTH PLAIN) and every message unencrypted; "
                        + "use smtps:// or STARTTLS", at: mark)
            } else {
                warn("tls: none \(m.inName) sends every message unencrypted; use smtps:// or STARTTLS", at: mark)
            }
        }
        var from: String?
        if let value = scalar(m, "from", expected: "an address such as cancelwatch <watch@example.com>") {
            if isPlausibleAddress(value.text) {
                from = value.text
            } else {
                report("'from' \(m.inName) must be an email address, not \(value.shown)", at: value.mark)
            }
        } else {
            missing("from", in: m)
        }
        var to: [String] = []
        if let values = stringList(m, "to", expected: "an address or a list of addresses") {
            to = addresses(values, key: "to", in: m)
            if values.isEmpty { report("'to' \(m.inName) needs at least one address", at: m.value("to")?.mark) }
        } else {
            missing("to", in: m)
        }
        let cc = stringList(m, "cc", expected: "an address or a list of addresses").map { addresses($0, key: "cc", in: m) } ?? []
        var subject = EmailSinkConfig.defaultSubject
        if let value = scalar(m, "subject", expected: "a subject template") {
            if case .failure(let errors) = MessageTemplate.compile(value.text) {
                for problem in errors.problems { report("'subject' \(m.inName): \(problem.message)", at: value.mark) }
            } else {
                subject = value.text
            }
        }
        let timeout = duration(m, "timeout", range: EmailSinkConfig.timeoutRange) ?? EmailSinkConfig.defaultTimeout
        let caFile = caFile(m)
        let insecure = insecureFlag(m)
        let retry = readRetry(m)
        guard let url, let from, !to.isEmpty else { return nil }
        return EmailSinkConfig(
            url: url, tls: tls, username: username, password: password, from: from, to: to, cc: cc, subject: subject,
            timeout: timeout, caFile: caFile, insecure: insecure, retry: retry)
    }

    private func addresses(_ values: [ConfigScalar], key: String, in m: ConfigMappingView) -> [String] {
        var result: [String] = []
        for value in values {
            if isPlausibleAddress(value.text) {
                result.append(value.text)
            } else {
                report("'\(key)' \(m.inName) must hold email addresses; \(value.shown) is not one", at: value.mark)
            }
        }
        return result
    }

    /// Control characters never get here: ``expand(_:node:key:in:secret:url:)`` refuses them.
    private func isPlausibleAddress(_ text: String) -> Bool {
        text.contains("@") && !text.hasPrefix("@") && !text.hasSuffix("@")
    }

    /// `insecure:`, with a warning when it is true.
    private func insecureFlag(_ m: ConfigMappingView) -> Bool {
        guard let insecure = boolean(m, "insecure") else { return false }
        if insecure {
            warn(
                "insecure: true \(m.inName) turns off TLS certificate verification: anyone on the network path can pose "
                    + "as the server and read what is sent; use ca_file: for a private CA instead", at: m.value("insecure")?.mark)
        }
        return insecure
    }

    /// True for `http://` to a host other than this machine (loopback names and addresses).
    static func isCleartextToAnotherHost(_ url: URL) -> Bool {
        guard url.scheme?.lowercased() == "http", var host = url.host?.lowercased() else { return false }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "localhost" || host.hasSuffix(".localhost") || host == "::1" { return false }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4, parts[0] == "127", parts.allSatisfy({ UInt8($0) != nil }) { return false }
        return true
    }

    private func readRetry(_ m: ConfigMappingView) -> RetryPolicy {
        guard let node = m.value("retry"), !isNull(node),
            let r = mappingView(node, name: "retry of \(m.name)", expected: "a mapping (max_attempts:, initial_delay:, max_delay:)")
        else { return .standard }
        checkKeys(r, allowed: ConfigKeys.retry)
        var policy = RetryPolicy.standard
        if let attempts = integer(r, "max_attempts", range: RetryPolicy.maxAttemptsRange) { policy.maxAttempts = attempts == 0 ? nil : attempts }
        policy.initialDelay = duration(r, "initial_delay", range: RetryPolicy.delayRange) ?? policy.initialDelay
        policy.maxDelay = duration(r, "max_delay", range: RetryPolicy.delayRange) ?? policy.maxDelay
        if policy.maxDelay < policy.initialDelay {
            report("'max_delay' \(r.inName) is shorter than 'initial_delay'", at: r.value("max_delay")?.mark)
        }
        return policy
    }

    private func caFile(_ m: ConfigMappingView) -> String? {
        guard let value = scalar(m, "ca_file", expected: "the path of a PEM file") else { return nil }
        let resolved = resolvePath(value.text)
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory) || isDirectory.boolValue {
            report("'ca_file' \(m.inName): no file at '\(resolved)'", at: value.mark)
        }
        return resolved
    }

    // MARK: Health

    private func readHealth(_ m: ConfigMappingView, sinkNames: [String]) -> HealthConfig {
        checkKeys(m, allowed: ConfigKeys.health)
        var health = HealthConfig()
        if let names = stringList(m, "notify", expected: "a list of sink names") {
            for value in names {
                if sinkNames.contains(value.text) {
                    if !health.notify.contains(value.text) { health.notify.append(value.text) }
                } else if declaredSinkNames.contains(value.text) {
                    continue  // the sink has errors of its own
                } else {
                    let hint = NameSuggester.closest(to: value.text, among: sinkNames).map { "; did you mean '\($0)'?" } ?? ""
                    let known = sinkNames.isEmpty ? " (no sinks are configured)" : " (sinks: \(sinkNames.joined(separator: ", ")))"
                    report("unknown sink \(value.shown) in health.notify\(hint)\(hint.isEmpty ? known : "")", at: value.mark)
                }
            }
        }
        health.downAfter = integer(m, "down_after", range: HealthConfig.downAfterRange) ?? HealthConfig.defaultDownAfter
        health.silentAfter = duration(m, "silent_after", range: HealthConfig.silentAfterRange)
        return health
    }

    /// Every sink name written in the file, valid or not.
    private var declaredSinkNames: Set<String> = []

    // MARK: Items

    /// Reads `name:` of a source or sink: required, well formed, unique among its kind.
    private func itemName(_ m: ConfigMappingView, kind: String, seen: inout [String: Int]) -> String? {
        guard let value = scalar(m, "name", expected: "a name such as ozon-main") else {
            missing("name", in: m)
            return nil
        }
        let name = value.text
        if kind == "sink" { declaredSinkNames.insert(name) }
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard let first = name.unicodeScalars.first, CharacterSet.alphanumerics.contains(first),
            name.unicodeScalars.allSatisfy({ allowed.contains($0) })
        else {
            report(
                "invalid \(kind) name \(value.shown): use letters, digits, '-', '_' and '.', starting with a letter or digit",
                at: value.mark)
            return nil
        }
        if let line = seen[name] {
            report("duplicate \(kind) name '\(name)' (first used on line \(line)): \(kind) names must be unique", at: value.mark)
            return nil
        }
        seen[name] = value.mark?.line ?? 0
        return name
    }

    // MARK: Typed values

    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let s) = node, s.style == .plain || s.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    private func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar:
            if isNull(node) { return "empty" }
            if node.bool != nil { return "true/false" }
            if node.int != nil || node.float != nil { return "a number" }
            return "text"
        }
    }

    private func typeError(_ key: String, in m: ConfigMappingView, expected: String, got node: Node) {
        report("'\(key)' \(m.inName) must be \(expected), not \(describe(node))", at: node.mark)
    }

    private func missing(_ key: String, in m: ConfigMappingView) {
        report("missing required key '\(key)' \(m.inName)", at: m.mark)
    }

    func mappingView(_ node: Node, name: String, expected: String) -> ConfigMappingView? {
        guard case .mapping(let mapping) = node else {
            report("\(name) must be \(expected), not \(describe(node))", at: node.mark)
            return nil
        }
        var entries: [(key: String, keyMark: Mark?, value: Node)] = []
        for (key, value) in mapping {
            guard case .scalar(let k) = key else {
                report("keys in \(name) must be plain names, not \(describe(key))", at: key.mark)
                continue
            }
            entries.append((k.string, key.mark, value))
        }
        return ConfigMappingView(mark: node.mark, entries: entries, name: name)
    }

    private func sequence(_ node: Node, key: String, in m: ConfigMappingView, expected: String) -> [Node]? {
        guard case .sequence(let items) = node else {
            typeError(key, in: m, expected: expected, got: node)
            return nil
        }
        return Array(items)
    }

    /// Reports keys not in `allowed`, with the closest known key, or the kind of item they belong to.
    private func checkKeys(_ m: ConfigMappingView, allowed: [String], elsewhere: [String: [String]] = [:]) {
        for entry in m.entries where !allowed.contains(entry.key) {
            if let owner = elsewhere.sorted(by: { $0.key < $1.key }).first(where: { $0.value.contains(entry.key) })?.key {
                report("'\(entry.key)' is not a setting of \(m.name): it belongs to \(owner)", at: entry.keyMark)
            } else if let suggestion = NameSuggester.closest(to: entry.key, among: allowed) {
                report("unknown key '\(entry.key)' \(m.inName); did you mean '\(suggestion)'?", at: entry.keyMark)
            } else {
                report("unknown key '\(entry.key)' \(m.inName) (known keys: \(allowed.joined(separator: ", ")))", at: entry.keyMark)
            }
        }
    }

    /// The scalar at `key` after `${VAR}` expansion; nil when absent, empty or wrong (reported).
    /// `url` marks a URL whose user info must never be shown (``ConfigScalar/isURL``).
    func scalar(_ m: ConfigMappingView, _ key: String, expected: String, secret: Bool = false, url: Bool = false)
        -> ConfigScalar?
    {
        guard let node = m.value(key), !isNull(node) else { return nil }
        guard case .scalar(let s) = node else {
            typeError(key, in: m, expected: expected, got: node)
            return nil
        }
        return expand(s, node: node, key: key, in: m, secret: secret, url: url)
    }

    /// Expands `${VAR}`s, registers what is secret, and refuses control characters: every
    /// value may reach a request line, a header or an SMTP command, where a CR or LF would
    /// start a line of its own.
    private func expand(
        _ s: Node.Scalar, node: Node, key: String, in m: ConfigMappingView, secret: Bool, url: Bool = false
    ) -> ConfigScalar? {
        let expansion = ConfigEnvironment.expand(s.string, environment: environment)
        if secret {
            secretTexts.insert(s.string)
            secretTexts.insert(expansion.text)
            if let mark = s.mark { secretMarks[mark.line, default: []].append(mark.column) }
        }
        if url {
            registerCredentials(ofURL: s.string)
            registerCredentials(ofURL: expansion.text)
        }
        var failed = false
        for problem in expansion.problems {
            failed = true
            switch problem {
            case .missing(let name, _):
                let position = locate("${" + name, from: s.mark)
                report(
                    "environment variable '\(name)' is not set (used by '\(key)' \(m.inName)); "
                        + "set it, or write ${\(name):-default}", line: position.line, column: position.column)
            case .malformed:
                let position = locate("${", from: s.mark)
                report(
                    "malformed variable reference in '\(key)' \(m.inName): write ${NAME}, or $${ for a literal ${",
                    line: position.line, column: position.column)
            }
        }
        if failed { return nil }
        if let control = ControlScalars.first(in: expansion.text) {
            let origin = expansion.variables.isEmpty ? "" : " (from \(expansion.variables.map { "${\($0)}" }.joined(separator: ", ")))"
            report(
                "'\(key)' \(m.inName) holds a control character, \(ControlScalars.name(control))\(origin): config values "
                    + "must be one line of text without control characters", at: s.mark)
            return nil
        }
        return ConfigScalar(
            text: expansion.text, raw: s.string, mark: s.mark, variables: expansion.variables, isSecret: secret, isURL: url)
    }

    /// A URL's password is secret wherever it appears; a URL that does not parse is secret
    /// whole when it may hold one. (Messages show URLs by ``Secret/redactedURL(_:)``.)
    private func registerCredentials(ofURL text: String) {
        guard let components = URLComponents(string: text.trimmingCharacters(in: .whitespaces)) else {
            if text.contains("@") { secretTexts.insert(text) }
            return
        }
        for part in [components.password, components.percentEncodedPassword] {
            if let part, !part.isEmpty { secretTexts.insert(part) }
        }
    }

    /// Where `needle` is written in the file, at or after `mark` (the value's own position if not found).
    private func locate(_ needle: String, from mark: Mark?) -> (line: Int, column: Int) {
        guard let mark else { return (0, 0) }
        for lineIndex in (mark.line - 1)..<min(lines.count, mark.line + 20) where lineIndex >= 0 {
            let scalars = Array(lines[lineIndex].unicodeScalars)
            let needleScalars = Array(needle.unicodeScalars)
            let start = lineIndex == mark.line - 1 ? max(0, mark.column - 1) : 0
            var i = start
            while i + needleScalars.count <= scalars.count {
                if Array(scalars[i..<i + needleScalars.count]) == needleScalars,
                    i == 0 || scalars[i - 1] != "$"
                {
                    return (lineIndex + 1, i + 1)
                }
                i += 1
            }
        }
        return (mark.line, mark.column)
    }

    func string(_ m: ConfigMappingView, _ key: String, required: Bool) -> String? {
        guard let value = scalar(m, key, expected: "text") else {
            if required, m.value(key).map(isNull) ?? true { missing(key, in: m) }
            return nil
        }
        return value.text
    }

    func secret(_ m: ConfigMappingView, _ key: String, required: Bool) -> Secret? {
        guard let value = scalar(m, key, expected: "text (best written as \"${VARIABLE}\")", secret: true) else {
            if required, m.value(key).map(isNull) ?? true { missing(key, in: m) }
            return nil
        }
        if value.text.isEmpty {
            let source = value.variables.isEmpty ? "" : " (\(value.variables.map { "${\($0)}" }.joined(separator: ", ")) is empty)"
            report("'\(key)' \(m.inName) is empty\(source)", at: value.mark)
            return nil
        }
        return Secret(value.text)
    }

    /// A list of scalars; a single scalar counts as a list of one.
    func stringList(_ m: ConfigMappingView, _ key: String, expected: String) -> [ConfigScalar]? {
        guard let node = m.value(key), !isNull(node) else { return nil }
        switch node {
        case .scalar(let s):
            return expand(s, node: node, key: key, in: m, secret: false).map { [$0] } ?? []
        case .sequence(let items):
            var result: [ConfigScalar] = []
            for item in items {
                guard case .scalar(let s) = item, !isNull(item) else {
                    report("items of '\(key)' \(m.inName) must be text, not \(describe(item))", at: item.mark)
                    continue
                }
                if let value = expand(s, node: item, key: key, in: m, secret: false) { result.append(value) }
            }
            return result
        default:
            typeError(key, in: m, expected: expected, got: node)
            return nil
        }
    }

    /// A duration within `range` (its bounds are documented in the README).
    func duration(_ m: ConfigMappingView, _ key: String, range: ClosedRange<TimeInterval>) -> TimeInterval? {
        guard let value = scalar(m, key, expected: "a duration such as 60s or 1h30m") else { return nil }
        let text = value.text.trimmingCharacters(in: .whitespaces)
        let outOfRange = "'\(key)' \(m.inName) must be from \(Self.spellBound(range.lowerBound)) to \(Self.spellBound(range.upperBound)), not \(value.shown)"
        if !text.isEmpty, text.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) || $0 == "." }), Double(text) != nil {
            report("'\(key)' \(m.inName) needs a unit: write \(text)s for seconds (units: ms, s, m, h, d, w)", at: value.mark)
            return nil
        }
        guard let seconds = DurationText.parse(text) else {
            if DurationText.isTooLong(text) {
                report(outOfRange, at: value.mark)
            } else {
                report(
                    "invalid duration \(value.shown) for '\(key)' \(m.inName): write a number and a unit (ms, s, m, h, d, w), e.g. 60s or 1h30m",
                    at: value.mark)
            }
            return nil
        }
        guard range.contains(seconds) else {
            report(outOfRange, at: value.mark)
            return nil
        }
        return seconds
    }

    /// `1ms`, `1s`, `10m`, `1d`: a bound as a config writes it.
    static func spellBound(_ seconds: TimeInterval) -> String {
        seconds < 1 ? "\(Int((seconds * 1000).rounded()))ms" : DurationText.spell(seconds)
    }

    func integer(_ m: ConfigMappingView, _ key: String, range: ClosedRange<Int>) -> Int? {
        guard let value = scalar(m, key, expected: "a whole number") else { return nil }
        let text = value.text.trimmingCharacters(in: .whitespaces)
        let bounds = "from \(range.lowerBound) to \(range.upperBound)"
        guard let number = Int(text) else {
            let digits = text.hasPrefix("-") || text.hasPrefix("+") ? text.dropFirst() : Substring(text)
            if !digits.isEmpty, digits.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) }) {
                report("'\(key)' \(m.inName) must be \(bounds), not \(value.shown)", at: value.mark)
            } else {
                report("'\(key)' \(m.inName) must be a whole number, not \(value.shown)", at: value.mark)
            }
            return nil
        }
        guard range.contains(number) else {
            report("'\(key)' \(m.inName) must be \(bounds), not \(number)", at: value.mark)
            return nil
        }
        return number
    }

    func boolean(_ m: ConfigMappingView, _ key: String) -> Bool? {
        guard let value = scalar(m, key, expected: "true or false") else { return nil }
        switch value.text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            report("'\(key)' \(m.inName) must be true or false, not \(value.shown)", at: value.mark)
            return nil
        }
    }

    func choice<Choice: RawRepresentable & CaseIterable>(
        _ m: ConfigMappingView, _ key: String, _ type: Choice.Type, aliases: [String: Choice] = [:], required: Bool = false
    ) -> Choice? where Choice.RawValue == String {
        let allowed = Choice.allCases.map(\.rawValue)
        guard let value = scalar(m, key, expected: "one of: \(allowed.joined(separator: ", "))") else {
            if required, m.value(key).map(isNull) ?? true { missing(key, in: m) }
            return nil
        }
        let text = value.text.trimmingCharacters(in: .whitespaces)
        if let found = Choice(rawValue: text) ?? Choice(rawValue: text.lowercased()) ?? aliases[text.lowercased()] {
            return found
        }
        badChoice(value, key: key, in: m, allowed: allowed)
        return nil
    }

    private func badChoice(_ value: ConfigScalar, key: String, in m: ConfigMappingView, allowed: [String]) {
        let hint = NameSuggester.closest(to: value.text, among: allowed).map { " (did you mean '\($0)'?)" } ?? ""
        report(
            "invalid \(key) \(value.shown) \(m.inName); expected one of: \(allowed.joined(separator: ", "))\(hint)",
            at: value.mark)
    }

    private func httpURL(_ value: ConfigScalar, key: String, in m: ConfigMappingView) -> URL? {
        if let components = URLComponents(string: value.text.trimmingCharacters(in: .whitespaces)),
            let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = components.host, !host.isEmpty, var url = components.url
        {
            guard portIsInRange(components, key: key, in: m, value: value) else { return nil }
            if key == "base_url" {
                var text = url.absoluteString
                while text.hasSuffix("/") { text.removeLast() }
                url = URL(string: text) ?? url
            }
            return url
        }
        report("'\(key)' \(m.inName) must be an http:// or https:// URL, not \(value.shown)", at: value.mark)
        return nil
    }

    /// The ports a URL may name.
    static let urlPortRange = 1...65535

    /// True when the URL names no port or one in ``urlPortRange``; otherwise reported at the port.
    private func portIsInRange(_ components: URLComponents, key: String, in m: ConfigMappingView, value: ConfigScalar)
        -> Bool
    {
        guard let range = components.rangeOfPort, let text = components.string else { return true }
        let written = text[range]
        if let port = Int(written), Self.urlPortRange.contains(port) { return true }
        let position = locate(":" + written, from: value.mark)
        report(
            "'\(key)' \(m.inName) has port \(written.prefix(24)): a port is from \(Self.urlPortRange.lowerBound) to "
                + "\(Self.urlPortRange.upperBound)", line: position.line, column: position.column)
        return false
    }

    /// `path` resolved against the config file's directory (`~/` against HOME).
    func resolvePath(_ path: String) -> String {
        var path = path
        if path == "~" || path.hasPrefix("~/"), let home = environment["HOME"] {
            path = home + path.dropFirst()
        }
        if !path.hasPrefix("/") { path = baseDirectory + "/" + path }
        return URL(fileURLWithPath: path).standardizedFileURL.path
    }
}
