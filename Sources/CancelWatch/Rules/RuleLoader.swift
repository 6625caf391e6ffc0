import Foundation

/// What loading rules produced: the compiled set (nil when any error was found), every
/// diagnostic of every file, and the sources to render them with.
public struct RuleLoadResult: Sendable {
    /// Nil when there is at least one error.
    public let ruleSet: RuleSet?
    /// Errors and warnings, file by file in load order, by position within each file.
    public let diagnostics: [RuleDiagnostic]
    /// The files read, in load order.
    public let sources: [RuleSource]

    public var errors: [RuleDiagnostic] { diagnostics.filter(\.isError) }
    public var warnings: [RuleDiagnostic] { diagnostics.filter { !$0.isError } }
    public var hasErrors: Bool { diagnostics.contains(where: \.isError) }

    /// Every diagnostic as a compiler prints it, each with its source line and caret.
    public func renderDiagnostics() -> String {
        RuleDiagnosticRenderer(sources: sources).render(diagnostics)
    }
}

/// Reads, checks and compiles rule files.
///
/// Rule files end in `.rules`. A path may name a file (any name) or a directory, which
/// contributes every `*.rules` file directly inside it, sorted by name.
public struct RuleLoader: Sendable {
    /// The extension rule files have in directories: `.rules`.
    public static let fileExtension = "rules"

    /// Sink names `notify` may use; nil skips the check (no config at hand).
    public var knownSinks: Set<String>?
    /// The zone of `hour`, `weekday`, `quiet` and times in messages.
    public var timeZone: TimeZone

    public init(knownSinks: Set<String>?, timeZone: TimeZone = TimeZone(identifier: "UTC")!) {
        self.knownSinks = knownSinks
        self.timeZone = timeZone
    }

    /// Loads every file named by `paths` (files, or directories of `*.rules` files).
    public func load(paths: [String]) -> RuleLoadResult {
        var sources: [RuleSource] = []
        var problems: [RuleDiagnostic] = []
        var seen = Set<String>()
        func read(_ path: String) {
            let key = URL(fileURLWithPath: path).standardizedFileURL.path
            guard seen.insert(key).inserted else { return }
            guard let data = FileManager.default.contents(atPath: path) else {
                problems.append(RuleDiagnostic(severity: .error, path: path, line: 0, column: 0, message: "cannot read rule file"))
                return
            }
            sources.append(RuleSource(path: path, text: String(decoding: data, as: UTF8.self)))
        }
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                problems.append(RuleDiagnostic(severity: .error, path: path, line: 0, column: 0, message: "no such rule file or directory"))
                continue
            }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                let ruleFiles = names.filter { $0.hasSuffix("." + Self.fileExtension) && !$0.hasPrefix(".") }.sorted()
                if ruleFiles.isEmpty {
                    problems.append(
                        RuleDiagnostic(severity: .warning, path: path, line: 0, column: 0, message: "directory has no *.\(Self.fileExtension) files"))
                }
                for name in ruleFiles {
                    read(path.hasSuffix("/") ? path + name : path + "/" + name)
                }
            } else {
                read(path)
            }
        }
        let result = compile(sources)
        return RuleLoadResult(
            ruleSet: problems.contains(where: \.isError) ? nil : result.ruleSet, diagnostics: problems + result.diagnostics,
            sources: result.sources)
    }

    /// Checks and compiles rule texts already in memory (tests, `cancelwatch test`).
    public func compile(_ sources: [RuleSource]) -> RuleLoadResult {
        var checker = RuleChecker(knownSinks: knownSinks, clock: RuleClock(timeZone: timeZone))
        var rules: [CompiledRule] = []
        var digests: [CompiledDigest] = []
        var diagnostics: [RuleDiagnostic] = []
        for source in sources {
            let (file, parseDiagnostics) = RuleParser.parse(source)
            let before = checker.diagnostics.count
            let checked = checker.check(file)
            rules += checked.rules
            digests += checked.digests
            let checkDiagnostics = checker.diagnostics[before...]
            diagnostics += (parseDiagnostics + checkDiagnostics).enumerated().sorted {
                ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset)
            }.map(\.element)
        }
        let ok = !diagnostics.contains(where: \.isError)
        return RuleLoadResult(
            ruleSet: ok ? RuleSet(rules: rules, digests: digests, files: sources.map(\.path), timeZone: timeZone) : nil, diagnostics: diagnostics,
            sources: sources)
    }

    /// Compiles one rule text; `path` names it in diagnostics.
    public func compile(_ text: String, path: String = "<rules>") -> RuleLoadResult {
        compile([RuleSource(path: path, text: text)])
    }
}
