import Foundation
import Yams

extension CancelWatchConfig {
    /// Reads the config at `path` the way `cancelwatch check` needs it: every `${VAR}` that
    /// is not set in `environment` reads as a harmless placeholder of the right shape (a URL
    /// for `url`, digits for `client_id`, an address for `from`/`to`, …) and comes back as a
    /// warning instead of an error, so the rules can still be checked against the sinks and
    /// the timezone. Every other problem is still a ``ConfigError``.
    ///
    /// Never use the result to connect to anything: `run` and `once` load with
    /// ``load(path:environment:)``, where a missing variable is an error.
    public static func loadAllowingMissingVariables(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigError) -> (config: CancelWatchConfig, missingVariables: [ConfigDiagnostic]) {
        guard let data = FileManager.default.contents(atPath: path), var text = String(data: data, encoding: .utf8) else {
            return (try load(path: path, environment: environment), [])
        }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        let found = ConfigPlaceholders.missing(in: text, path: path, environment: environment)
        guard !found.uses.isEmpty else { return (try load(path: path, environment: environment), []) }
        var augmented = environment
        for (name, value) in found.placeholders { augmented[name] = value }
        let config = try load(path: path, environment: augmented)
        return (config, found.uses)
    }
}

/// Finds the `${VAR}` references of a config file whose variables are not set, and picks
/// for each a placeholder the config reader accepts where it is used.
enum ConfigPlaceholders {
    /// Placeholders by the key a value is written under.
    static func placeholder(forKey key: String, wholeValue: Bool, sinkKind: String?) -> String {
        guard wholeValue else { return "placeholder" }
        switch key {
        case "url", "base_url": return sinkKind == "email" ? "smtp://placeholder.invalid" : "https://placeholder.invalid"
        case "client_id": return "0"
        case "from", "to", "cc": return "placeholder@example.invalid"
        case "timezone": return "UTC"
        case "listen": return "127.0.0.1:9464"
        case "poll_interval", "timeout", "initial_delay", "max_delay", "silent_after": return "60s"
        case "down_after", "max_attempts": return "1"
        // The status page's token: one the reader takes (long enough, no spaces).
        case "token": return "placeholder-" + String(repeating: "0", count: StatusAuth.minimumLength)
        default: return "placeholder"
        }
    }

    /// Every use of an unset variable (a diagnostic at the `${`) and a placeholder per variable.
    static func missing(in text: String, path: String, environment: [String: String]) -> (
        uses: [ConfigDiagnostic], placeholders: [String: String]
    ) {
        guard let root = try? Yams.compose(yaml: text) else { return ([], [:]) }
        let lines = YAMLReader.lines(of: text)
        var uses: [ConfigDiagnostic] = []
        var placeholders: [String: String] = [:]

        func visit(_ scalar: Node.Scalar, key: String, sinkKind: String?) {
            let expansion = ConfigEnvironment.expand(scalar.string, environment: environment)
            for problem in expansion.problems {
                guard case .missing(let name, _) = problem else { continue }
                let whole = scalar.string.trimmingCharacters(in: .whitespaces) == "${\(name)}"
                if placeholders[name] == nil {
                    placeholders[name] = placeholder(forKey: key, wholeValue: whole, sinkKind: sinkKind)
                }
                let (line, column) = YAMLReader.locate("${" + name, from: scalar.mark, lines: lines)
                var diagnostic = ConfigDiagnostic(
                    path: path, line: line, column: column,
                    message: "environment variable '\(name)' is not set (used by '\(key)'); checked with a placeholder, "
                        + "but `run` and `once` need it", severity: .warning)
                diagnostic.quoteLine(of: lines, knownSecrets: [])
                if !uses.contains(diagnostic) { uses.append(diagnostic) }
            }
        }

        func walk(_ node: Node, key: String, sinkKind: String?) {
            switch node {
            case .scalar(let scalar):
                visit(scalar, key: key, sinkKind: sinkKind)
            case .sequence(let sequence):
                for item in sequence { walk(item, key: key, sinkKind: sinkKind) }
            case .mapping(let mapping):
                var kind: String?
                for (k, v) in mapping {
                    if case .scalar(let ks) = k, ks.string == "kind", case .scalar(let vs) = v { kind = vs.string }
                }
                for (k, v) in mapping {
                    guard case .scalar(let ks) = k else { continue }
                    walk(v, key: ks.string, sinkKind: kind ?? sinkKind)
                }
            case .alias:
                break
            }
        }
        walk(root, key: "", sinkKind: nil)
        return (uses, placeholders)
    }
}
