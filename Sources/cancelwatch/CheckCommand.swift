import ArgumentParser
import CancelWatch
import Foundation

/// `cancelwatch check [--config F] [RULE_FILE...]`: reports every mistake in every rule
/// file at once, compiler-style, on stderr; exits 1 on any error, 0 (with a one-line
/// summary on stdout) otherwise. Warnings alone do not fail.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check rule files and report every error with its line and column.",
        discussion: """
            With RULE_FILE arguments, checks those files (a directory stands for the *.rules files in it); \
            otherwise checks the config's `rules:` paths. When a config is found (--config, or ./cancelwatch.yaml \
            if it exists), `notify` names are checked against its sinks and its timezone applies; without one, \
            sink names are not checked and the timezone is UTC. Environment variables the config uses but that are \
            not set are warnings here (the rules are still checked); `run` and `once` fail on them. So are the \
            config's downgrades (insecure: true, tls: none, http:// to another host), which `run` logs too. \
            Every rule with an `act` clause is a warning naming its answer and the config's actions mode \
            (dry-run, the default, sends nothing).
            """)

    @Option(name: .long, help: "The configuration file (default: ./cancelwatch.yaml when it exists).")
    var config: String?

    @Argument(help: "Rule files or directories of *.rules files.")
    var ruleFiles: [String] = []

    func run() async throws {
        let configPath = config ?? (FileManager.default.fileExists(atPath: CancelWatchConfig.defaultPath) ? CancelWatchConfig.defaultPath : nil)
        var loaded: CancelWatchConfig?
        var configWarnings = 0
        if let configPath {
            do {
                // Unset ${VAR}s are warnings here: the rules can be checked without the secrets.
                let (config, missing) = try CancelWatchConfig.loadAllowingMissingVariables(path: configPath)
                loaded = config
                let warnings = (missing + config.warnings).sorted { ($0.line, $0.column) < ($1.line, $1.column) }
                configWarnings = warnings.count
                for diagnostic in warnings { await CommandOutput.printError(diagnostic.rendered) }
            } catch {
                await CommandOutput.printError("\(error)")
                throw ExitCode(1)
            }
        }
        var paths = ruleFiles
        if paths.isEmpty {
            paths = loaded?.rules ?? CancelWatchConfig.defaultRulesPaths
        }
        let loader = RuleLoader(
            knownSinks: loaded.map { Set($0.sinks.map(\.name)) },
            timeZone: loaded?.timezone ?? TimeZone(identifier: "UTC")!)
        let result = loader.load(paths: paths)
        if !result.diagnostics.isEmpty {
            await CommandOutput.printError(result.renderDiagnostics())
        }
        let actionWarnings = result.ruleSet?.actionWarnings(loaded?.actions ?? ActionsConfig()) ?? []
        if !actionWarnings.isEmpty {
            await CommandOutput.printError(RuleDiagnosticRenderer(sources: result.sources).render(actionWarnings))
        }
        let errors = result.errors.count
        let warnings = result.warnings.count + configWarnings + actionWarnings.count
        let files = result.sources.count
        if errors > 0 {
            // A path that could not be read has errors and no source: it counts among the files.
            let failing = Set(result.errors.map(\.path))
            let named = failing.union(result.sources.map(\.path)).count
            await CommandOutput.printError(
                "check failed: \(Self.count(errors, "error"))" + (warnings > 0 ? ", \(Self.count(warnings, "warning"))" : "")
                    + "; errors in \(failing.count) of \(Self.count(named, "rule file"))\n")
            throw ExitCode(1)
        }
        let rules = result.ruleSet?.rules.count ?? 0
        let digests = result.ruleSet?.digests.count ?? 0
        let blocks = Self.count(rules, "rule") + (digests > 0 ? ", \(Self.count(digests, "digest"))" : "")
        try await CommandOutput.print("ok: \(blocks) in \(Self.count(files, "file"))" + (warnings > 0 ? " (\(Self.count(warnings, "warning")))" : ""))
    }

    private static func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }
}
