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
    static let top = ["state", "rules", "timezone", "listen", "auth", "sources", "sinks", "health", "lease_ttl", "actions"]
    static let sourceCommon = ["name", "kind", "base_url", "poll_interval", "timeout"]
    static let ozon = ["client_id", "api_key"]
    static let red = ["app_key", "app_secret", "logistics", "max_audit_time_unit", "page_size"]
    static let sinkCommon = ["name", "kind"]
    static let stdout = ["format", "group"]
    static let webhook = [
        "url", "secret", "timeout", "headers", "format", "chat_id", "ca_file", "insecure", "retry", "actions", "group", "batch",
    ]
    static let telegramActions = ["allow", "refuse_reasons"]
    static let email = [
        "url", "tls", "username", "password", "from", "to", "cc", "subject", "timeout", "ca_file", "insecure", "retry", "group",
    ]
    static let group = ["wait", "max", "critical"]
    static let health = ["notify", "down_after", "silent_after"]
    static let retry = ["max_attempts", "initial_delay", "max_delay"]
    static let actions = ["mode", "max_per_hour"]
}

/// Turns YAML text into a ``CancelWatchConfig``, collecting every problem on the way.
/// Values are read after `${VAR}` expansion, secrets are remembered so that no message
/// or quoted line shows them, and no value may hold a control character.
final class ConfigReader: YAMLReader {
    let environment: [String: String]
    let baseDirectory: String
    /// Secret texts seen (as written and as expanded), masked in quoted lines and messages.
    private(set) var secretTexts: Set<String> = []
    /// Where secret values start (line, column), masked whole when their line is quoted.
    private var secretMarks: [Int: [Int]] = [:]

    init(text: String, path: String, environment: [String: String]) {
        self.environment = environment
        var directory = (path as NSString).deletingLastPathComponent
        if directory.isEmpty { directory = "." }
        if !directory.hasPrefix("/") {
            directory = FileManager.default.currentDirectoryPath + "/" + directory
        }
        self.baseDirectory = URL(fileURLWithPath: directory).standardizedFileURL.path
        super.init(text: text, path: path)
    }

    // MARK: Diagnostics

    /// A downgrade or other risk that does not stop the config from loading.
    func warn(_ message: String, at mark: Mark?) {
        report(message, at: mark, severity: .warning)
    }

    /// The warnings in file order, finished like ``finishedDiagnostics()``.
    func finishedWarnings() -> [ConfigDiagnostic] { finished(.warning) }

    /// The errors in file order, secrets masked, each with its line of the file.
    func finishedDiagnostics() -> [ConfigDiagnostic] { finished(.error) }

    private func finished(_ severity: ConfigDiagnostic.Severity) -> [ConfigDiagnostic] {
        let scrubbable = secretTexts.filter { $0.count >= 4 && !ConfigLineMasking.isOnlyEnvironmentReferences($0) }
            .sorted { $0.count > $1.count }
        var result: [ConfigDiagnostic] = []
        for found in sortedDiagnostics() where found.severity == severity {
            var diagnostic = ConfigDiagnostic(
                path: path, line: found.line, column: found.column, message: found.message, severity: severity)
            for secret in scrubbable {
                diagnostic.message = diagnostic.message.replacingOccurrences(of: secret, with: Secret.placeholder)
            }
            diagnostic.quoteLine(of: lines, knownSecrets: secretTexts, secretColumns: secretMarks[diagnostic.line] ?? [])
            if !result.contains(diagnostic) { result.append(diagnostic) }
        }
        return result
    }

    // MARK: The whole file

    func read() -> CancelWatchConfig? {
        guard let root = compose(ifEmpty: "the config file is empty: it needs at least 'sources:' (see the sample config in the README)"),
            let top = mapping(root, name: "the top level", expected: "a mapping of settings (state:, sources:, sinks:, …)")
        else { return nil }
        checkKeys(top, allowed: ConfigKeys.top)

        var config = CancelWatchConfig(path: path)
        if case .scalar(let written)? = top.value("state"), PostgresLocation.isURL(written.string) {
            config.stateDatabase = stateDatabase(top, written: written)
            config.state = config.stateDatabase?.description ?? ""
        } else {
            config.state = resolvePath(string(top, "state", required: false) ?? CancelWatchConfig.defaultStatePath)
        }
        if let rules = scalars(top, "rules", expected: "a rule file or directory, or a list of them") {
            config.rules = rules.map { resolvePath($0.text) }
        } else {
            config.rules = CancelWatchConfig.defaultRulesPaths.map(resolvePath)
        }
        if let zone = timeZone(top, "timezone") { config.timezone = zone }
        config.leaseTTL = duration(top, "lease_ttl", range: CancelWatchConfig.leaseTTLRange) ?? CancelWatchConfig.defaultLeaseTTL
        if let listen = scalar(top, "listen", expected: "an address such as 127.0.0.1:9464") {
            switch ListenAddress.parse(listen.text) {
            case .success(let address):
                config.listen = address
                if let warning = address.publicWarning { warn(warning, at: listen.mark) }
            case .failure(let error):
                report("invalid listen address \(listen.shown): \(error.message)", at: listen.mark)
            }
        }
        if let authNode = top.value("auth"), !isNull(authNode),
            let auth = mapping(authNode, name: "auth", expected: "a mapping with the status page's token: {token: \"${STATUS_TOKEN}\"}")
        {
            checkKeys(auth, allowed: ["token"])
            if let token = secret(auth, "token", required: true) {
                if let problem = StatusAuth.problem(with: token.value) {
                    report("'token' \(auth.inName) is not taken: \(problem)", at: auth.value("token")?.mark)
                } else {
                    config.auth = StatusAuth(token: token)
                    if config.listen == nil {
                        warn("'auth' is set but 'listen' is not: no status page is served", at: authNode.mark)
                    }
                }
            }
        } else if let address = config.listen, !address.isLoopback, let listen = top.value("listen") {
            report(
                "listen \(address) serves the status page to other machines: it needs a token, "
                    + "auth: {token: \"${STATUS_TOKEN}\"} (at least \(StatusAuth.minimumLength) random characters, e.g. "
                    + "`openssl rand -hex 32`); or listen on 127.0.0.1:\(address.port)",
                at: listen.mark)
        }

        if let sourcesNode = top.value("sources"), !isNull(sourcesNode) {
            if let items = items(top, "sources", expected: "a list of sources") {
                if items.isEmpty { report("'sources' is empty: add at least one marketplace account", at: sourcesNode.mark) }
                config.sources = readSources(items)
            }
        } else {
            report(
                "missing required key 'sources' at the top level: list the marketplace accounts to poll",
                at: top.value("sources")?.mark ?? top.mark)
        }
        if let sinksNode = top.value("sinks"), !isNull(sinksNode),
            let items = items(top, "sinks", expected: "a list of sinks")
        {
            config.sinks = readSinks(items)
        }
        if let healthNode = top.value("health"), !isNull(healthNode),
            let health = mapping(healthNode, name: "health", expected: "a mapping (notify:, down_after:)")
        {
            config.health = readHealth(health, sinkNames: config.sinks.map(\.name))
        }
        if let actionsNode = top.value("actions"), !isNull(actionsNode),
            let actions = mapping(actionsNode, name: "actions", expected: "a mapping (mode:, max_per_hour:)")
        {
            config.actions = readActions(actions)
        }
        return config
    }

    // MARK: Actions

    private func readActions(_ m: YAMLMapping) -> ActionsConfig {
        checkKeys(m, allowed: ConfigKeys.actions)
        var actions = ActionsConfig()
        if let mode = choice(m, "mode", ActionMode.self, aliases: ["dry_run": .dryRun, "dryrun": .dryRun]) { actions.mode = mode }
        actions.maxPerHour = integer(m, "max_per_hour", range: ActionsConfig.maxPerHourRange) ?? ActionsConfig.defaultMaxPerHour
        return actions
    }

    // MARK: Sources

    private func readSources(_ items: [Node]) -> [SourceConfig] {
        var sources: [SourceConfig] = []
        var seen: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            guard let m = mapping(item, name: "source #\(index + 1)", expected: "a mapping (name:, kind:, …)") else {
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
            if let value = scalar(view, "base_url", expected: "an http or https URL", secret: false, url: true) {
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

    private func readOzon(_ m: YAMLMapping) -> OzonCredentials? {
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

    private func readRed(_ m: YAMLMapping) -> RedCredentials? {
        let appKey = string(m, "app_key", required: true)
        let appSecret = secret(m, "app_secret", required: true)
        var logistics = RedCredentials.defaultLogistics
        if let values = scalars(m, "logistics", expected: "a list of logistics modes (red_auto, red_box)") {
            var chosen: [String] = []
            for value in values {
                guard
                    let mode = oneOf(value, key: "logistics", in: m, allowed: RedCredentials.knownLogistics, what: "logistics mode")
                else { continue }
                if chosen.contains(mode) {
                    report("logistics mode '\(mode)' is listed twice \(m.inName)", at: value.mark)
                } else {
                    chosen.append(mode)
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
            guard let m = mapping(item, name: "sink #\(index + 1)", expected: "a mapping (name:, kind:, …)") else {
                continue
            }
            var view = m
            let name = itemName(view, kind: "sink", seen: &seen)
            if let name { view.name = "sink '\(name)'" }

            let kindName = choice(view, "kind", among: SinkConfig.Kind.names, required: true)
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
                kind = .stdout(StdoutSinkConfig(format: format, group: readGroup(view)))
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

    private func readWebhook(_ m: YAMLMapping) -> WebhookSinkConfig? {
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
        let actions = readTelegramActions(m, format: format, url: url)
        let group = readGroup(m, format: format)
        if actions != nil, let chatID, Int64(chatID.trimmingCharacters(in: .whitespaces)).map({ $0 != 0 }) != true {
            report(
                "'chat_id' \(m.inName) must be the chat's numeric id (like -1001234567890) when the sink has 'actions': "
                    + "presses are matched to their chat by it", at: m.value("chat_id")?.mark ?? m.mark)
        }
        if actions != nil, let group, let node = m.value("group") {
            warn(
                "'group' \(m.inName) with 'actions': a grouped message carries no Approve/Refuse buttons"
                    + (group.critical == .hold ? ", and with critical: hold no alert of this sink will" : "; critical alerts, sent alone, do"),
                at: node.mark)
        }
        guard let url else { return nil }
        return WebhookSinkConfig(
            url: url, secret: signingSecret, timeout: timeout, headers: headers, format: format, chatID: chatID,
            caFile: caFile, insecure: insecure, retry: retry, actions: actions, group: group)
    }

    /// `group:` (with `format: generic` only beside `batch: true`, which alone means the defaults).
    private func readGroup(_ m: YAMLMapping, format: WebhookSinkConfig.Format) -> GroupPolicy? {
        let group = readGroup(m)
        guard let batchNode = m.value("batch") else {
            if format == .generic, let node = m.value("group"), !isNull(node) {
                report(
                    "'group' \(m.inName) needs batch: true with format: generic: its receiver then gets the grouped events "
                        + "in one POST ({\"version\": \"1\", \"events\": [...]})", at: node.mark)
            }
            return format == .generic ? nil : group
        }
        guard format == .generic else {
            report(
                "'batch' \(m.inName) is only used with format: generic (this sink's format is \(format.rawValue)): "
                    + "a chat format sends a group as one message already; set 'group' alone", at: batchNode.mark)
            return group
        }
        guard boolean(m, "batch") == true else {
            if let node = m.value("group"), !isNull(node) {
                report("'group' \(m.inName) needs batch: true with format: generic", at: node.mark)
            }
            return nil
        }
        return group ?? GroupPolicy()
    }

    /// `group: {wait:, max:, critical:}`.
    private func readGroup(_ m: YAMLMapping) -> GroupPolicy? {
        guard let node = m.value("group"), !isNull(node),
            let g = mapping(node, name: "group of \(m.name)", expected: "a mapping (wait:, max:, critical:)")
        else { return nil }
        checkKeys(g, allowed: ConfigKeys.group)
        var policy = GroupPolicy()
        policy.wait = duration(g, "wait", range: GroupPolicy.waitRange) ?? policy.wait
        policy.max = integer(g, "max", range: GroupPolicy.maxRange) ?? policy.max
        policy.critical = choice(g, "critical", GroupPolicy.Critical.self) ?? policy.critical
        return policy
    }

    /// `actions: {allow: [user ids], refuse_reasons: [...]}`, only with `format: telegram`.
    private func readTelegramActions(_ m: YAMLMapping, format: WebhookSinkConfig.Format, url: Secret?) -> TelegramActionsConfig? {
        guard let node = m.value("actions"), !isNull(node) else { return nil }
        guard format == .telegram else {
            report(
                "'actions' \(m.inName) needs format: telegram: only Telegram has buttons to answer from "
                    + "(this sink's format is \(format.rawValue))", at: node.mark)
            return nil
        }
        guard let a = mapping(node, name: "actions of \(m.name)", expected: "a mapping (allow:, refuse_reasons:)") else { return nil }
        checkKeys(a, allowed: ConfigKeys.telegramActions)
        if let url, TelegramBotURL(sendMessageURL: url.value) == nil {
            report(
                "'actions' \(m.inName) read button presses from the bot, so 'url' must be its sendMessage call: "
                    + "https://api.telegram.org/bot<token>/sendMessage", at: node.mark)
        }
        var allow: [Int64] = []
        let range = TelegramActionsConfig.userIDRange
        if let values = scalars(a, "allow", expected: "a list of Telegram user ids") {
            for value in values {
                let text = value.text.trimmingCharacters(in: .whitespaces)
                guard let id = Int64(text), range.contains(id) else {
                    report(
                        "'allow' \(a.inName) must hold Telegram user ids (whole numbers from \(range.lowerBound) to "
                            + "\(range.upperBound)), not \(value.shown)", at: value)
                    continue
                }
                if allow.contains(id) {
                    report("user id \(id) is listed twice in 'allow' \(a.inName)", at: value)
                } else {
                    allow.append(id)
                }
            }
            if values.isEmpty {
                report("'allow' \(a.inName) is empty: list the Telegram user ids who may answer", at: a.value("allow")?.mark)
            } else if values.count > TelegramActionsConfig.maxUsers {
                report("'allow' \(a.inName) lists \(values.count) users; at most \(TelegramActionsConfig.maxUsers)", at: a.value("allow")?.mark)
            }
        } else {
            report("missing required key 'allow' \(a.inName): the Telegram user ids who may answer", at: a.mark)
        }
        var reasons: [String] = []
        let length = TelegramActionsConfig.refuseReasonLength
        if let values = scalars(a, "refuse_reasons", expected: "a list of reasons") {
            for value in values {
                let reason = value.text.trimmingCharacters(in: .whitespaces)
                guard length.contains(reason.count) else {
                    report(
                        "each of 'refuse_reasons' \(a.inName) is \(length.lowerBound) to \(length.upperBound) characters; "
                            + "\(value.shown) is \(reason.count)", at: value)
                    continue
                }
                if reasons.contains(reason) {
                    report("reason \(value.shown) is listed twice in 'refuse_reasons' \(a.inName)", at: value)
                } else {
                    reasons.append(reason)
                }
            }
            if values.count > TelegramActionsConfig.maxRefuseReasons {
                report(
                    "'refuse_reasons' \(a.inName) lists \(values.count) reasons; at most \(TelegramActionsConfig.maxRefuseReasons)",
                    at: a.value("refuse_reasons")?.mark)
            }
        }
        guard !allow.isEmpty, allow.count <= TelegramActionsConfig.maxUsers, reasons.count <= TelegramActionsConfig.maxRefuseReasons
        else { return nil }
        return TelegramActionsConfig(allow: allow, refuseReasons: reasons)
    }

    private func readHeaders(_ m: YAMLMapping) -> [String: String] {
        guard let node = m.value("headers"), !isNull(node) else { return [:] }
        guard let headers = mapping(node, name: "headers of \(m.name)", expected: "a mapping of header names to values")
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

    private func readEmail(_ m: YAMLMapping) -> EmailSinkConfig? {
        var url: URL?
        var scheme = "smtp"
        if let value = scalar(m, "url", expected: "an smtp:// or smtps:// URL", secret: false, url: true) {
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
        if let values = scalars(m, "to", expected: "an address or a list of addresses") {
            to = addresses(values, key: "to", in: m)
            if values.isEmpty { report("'to' \(m.inName) needs at least one address", at: m.value("to")?.mark) }
        } else {
            missing("to", in: m)
        }
        let cc = scalars(m, "cc", expected: "an address or a list of addresses").map { addresses($0, key: "cc", in: m) } ?? []
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
        let group = readGroup(m)
        guard let url, let from, !to.isEmpty else { return nil }
        return EmailSinkConfig(
            url: url, tls: tls, username: username, password: password, from: from, to: to, cc: cc, subject: subject,
            timeout: timeout, caFile: caFile, insecure: insecure, retry: retry, group: group)
    }

    private func addresses(_ values: [YAMLScalar], key: String, in m: YAMLMapping) -> [String] {
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

    /// Control characters never get here: ``expand(_:key:in:secret:url:)`` refuses them.
    private func isPlausibleAddress(_ text: String) -> Bool {
        text.contains("@") && !text.hasPrefix("@") && !text.hasSuffix("@")
    }

    /// `insecure:`, with a warning when it is true.
    private func insecureFlag(_ m: YAMLMapping) -> Bool {
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

    private func readRetry(_ m: YAMLMapping) -> RetryPolicy {
        guard let node = m.value("retry"), !isNull(node),
            let r = mapping(node, name: "retry of \(m.name)", expected: "a mapping (max_attempts:, initial_delay:, max_delay:)")
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

    private func caFile(_ m: YAMLMapping) -> String? {
        guard let value = scalar(m, "ca_file", expected: "the path of a PEM file") else { return nil }
        let resolved = resolvePath(value.text)
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory) || isDirectory.boolValue {
            report("'ca_file' \(m.inName): no file at '\(resolved)'", at: value.mark)
        }
        return resolved
    }

    // MARK: Health

    private func readHealth(_ m: YAMLMapping, sinkNames: [String]) -> HealthConfig {
        checkKeys(m, allowed: ConfigKeys.health)
        var health = HealthConfig()
        if let names = scalars(m, "notify", expected: "a list of sink names") {
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
    private func itemName(_ m: YAMLMapping, kind: String, seen: inout [String: Int]) -> String? {
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

    // MARK: Values

    override func value(_ scalar: Node.Scalar, key: String, in m: YAMLMapping) -> YAMLScalar? {
        expand(scalar, key: key, in: m, secret: false, url: false)
    }

    /// The scalar at `key` as ``value(_:key:in:)`` reads it, remembered as secret when it is
    /// one; `url` marks a URL whose user info and password must never be shown.
    func scalar(_ m: YAMLMapping, _ key: String, expected: String, secret: Bool, url: Bool = false) -> YAMLScalar? {
        scalarNode(m, key, expected: expected).flatMap { expand($0, key: key, in: m, secret: secret, url: url) }
    }

    /// Expands `${VAR}`s, registers what is secret, and refuses control characters: every
    /// value may reach a request line, a header or an SMTP command, where a CR or LF would
    /// start a line of its own.
    private func expand(_ s: Node.Scalar, key: String, in m: YAMLMapping, secret: Bool, url: Bool) -> YAMLScalar? {
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
        for problem in expansion.problems {
            switch problem {
            case .missing(let name, _):
                let position = Self.locate("${" + name, from: s.mark, lines: lines)
                report(
                    "environment variable '\(name)' is not set (used by '\(key)' \(m.inName)); "
                        + "set it, or write ${\(name):-default}", line: position.line, column: position.column)
            case .malformed:
                let position = Self.locate("${", from: s.mark, lines: lines)
                report(
                    "malformed variable reference in '\(key)' \(m.inName): write ${NAME}, or $${ for a literal ${",
                    line: position.line, column: position.column)
            }
        }
        if !expansion.problems.isEmpty { return nil }
        let origin = expansion.variables.map { "${\($0)}" }.joined(separator: ", ")
        if let control = ControlScalars.first(in: expansion.text) {
            report(
                "'\(key)' \(m.inName) holds a control character, \(ControlScalars.name(control))"
                    + (origin.isEmpty ? "" : " (from \(origin))")
                    + ": config values must be one line of text without control characters", at: s.mark)
            return nil
        }
        let shown: String
        if secret {
            shown = "(the value is secret and not shown)"
        } else if url, case let redacted = Secret.redactedURL(expansion.text), redacted != expansion.text {
            shown = "'\(redacted)'"
        } else if !origin.isEmpty {
            shown = "'\(s.string)' (as expanded from the environment)"
        } else {
            shown = YAMLScalar.quoted(expansion.text)
        }
        return YAMLScalar(text: expansion.text, mark: s.mark, shown: shown, length: s.string.unicodeScalars.count)
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

    /// `state: postgres://…`, its password (only from a variable) remembered as secret.
    private func stateDatabase(_ top: YAMLMapping, written: Node.Scalar) -> PostgresLocation? {
        guard let value = scalar(top, "state", expected: "a file or postgres://USER@HOST:PORT/DATABASE", secret: false, url: true)
        else { return nil }
        switch PostgresLocation.parse(written: written.string, environment: environment) {
        case .success(let location):
            if let password = location.password?.value, !password.isEmpty { secretTexts.insert(password) }
            return location
        case .failure(let error):
            report("invalid 'state' \(value.shown): \(error.message)", at: value.mark)
            return nil
        }
    }

    func string(_ m: YAMLMapping, _ key: String, required: Bool) -> String? {
        guard let value = scalar(m, key, expected: "text") else {
            if required, m.value(key).map(isNull) ?? true { missing(key, in: m) }
            return nil
        }
        return value.text
    }

    func secret(_ m: YAMLMapping, _ key: String, required: Bool) -> Secret? {
        guard let value = scalar(m, key, expected: "text (best written as \"${VARIABLE}\")", secret: true) else {
            if required, m.value(key).map(isNull) ?? true { missing(key, in: m) }
            return nil
        }
        if value.text.isEmpty {
            let variables = scalarNode(m, key, expected: "").map { ConfigEnvironment.expand($0.string, environment: environment).variables } ?? []
            let source = variables.isEmpty ? "" : " (\(variables.map { "${\($0)}" }.joined(separator: ", ")) is empty)"
            report("'\(key)' \(m.inName) is empty\(source)", at: value.mark)
            return nil
        }
        return Secret(value.text)
    }

    private func httpURL(_ value: YAMLScalar, key: String, in m: YAMLMapping) -> URL? {
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
    private func portIsInRange(_ components: URLComponents, key: String, in m: YAMLMapping, value: YAMLScalar)
        -> Bool
    {
        guard let range = components.rangeOfPort, let text = components.string else { return true }
        let written = text[range]
        if let port = Int(written), Self.urlPortRange.contains(port) { return true }
        let position = Self.locate(":" + written, from: value.mark, lines: lines)
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
