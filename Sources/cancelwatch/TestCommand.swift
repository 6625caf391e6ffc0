import ArgumentParser
import CancelWatch
import Foundation

/// `cancelwatch test TEST_FILE...`: runs rule tests on a virtual clock (the format is in
/// rules/README.md, "Testing rules"). Failures print expected against actual on stderr and
/// exit 1; success prints a one-line summary.
struct TestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run rule tests on a virtual clock and compare the alerts with the ones expected.",
        discussion: """
            Each TEST_FILE (YAML) names rule files, a time zone, requests with their deadlines, later changes \
            (resolved, vanished, a new deadline) and the events expected at which times. The rules run in the real \
            scheduler on a virtual clock, so days of alerts take milliseconds. A directory stands for the \
            *.test.yaml files in it. See rules/README.md, "Testing rules".
            """)

    @Argument(help: "Test files, or directories of *.test.yaml files.")
    var testFiles: [String]

    func validate() throws {
        if testFiles.isEmpty { throw ValidationError("name at least one test file, e.g. cancelwatch test rules/tests/*") }
    }

    func run() async throws {
        let runner = RuleTestRunner()
        var files = 0
        var cases = 0
        var failedCases = 0
        var brokenFiles = 0
        var events = 0
        for path in Self.expand(testFiles) {
            files += 1
            let result = await runner.run(path: path)
            if !result.renderedDiagnostics.isEmpty { await CommandOutput.printError(result.renderedDiagnostics) }
            if result.hasErrors {
                brokenFiles += 1
                let errors = result.diagnostics.filter(\.isError).count
                await CommandOutput.printError("\(path): not run: \(Self.count(errors, "error"))\n")
                continue
            }
            cases += result.cases.count
            events += result.eventsChecked
            for testCase in result.cases where !testCase.passed {
                failedCases += 1
                await CommandOutput.printError(testCase.report())
            }
        }
        if failedCases > 0 || brokenFiles > 0 {
            var parts: [String] = []
            if failedCases > 0 { parts.append("\(failedCases) of \(Self.count(cases, "test")) failed") }
            if brokenFiles > 0 { parts.append("\(Self.count(brokenFiles, "file")) could not run") }
            await CommandOutput.printError("test failed: \(parts.joined(separator: ", ")) in \(Self.count(files, "file"))\n")
            throw ExitCode(1)
        }
        try await CommandOutput.print("ok: \(Self.count(cases, "test")) in \(Self.count(files, "file")), \(Self.count(events, "expected event")) checked")
    }

    /// Files as given; a directory stands for its `*.test.yaml` files, sorted.
    static func expand(_ paths: [String]) -> [String] {
        var result: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
                    .filter { $0.hasSuffix(".test.yaml") || $0.hasSuffix(".test.yml") }.sorted()
                result += names.map { path.hasSuffix("/") ? path + $0 : path + "/" + $0 }
                if names.isEmpty { result.append(path) }  // reported as not a test file
            } else {
                result.append(path)
            }
        }
        return result
    }

    private static func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }
}

