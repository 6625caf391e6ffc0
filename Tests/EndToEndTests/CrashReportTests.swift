import Foundation
import Testing

/// A crash of the service prints where it crashed, never memory contents: Swift's
/// backtracer shows 16 bytes at each register by default, and a register may point at
/// a request's text or a credential. The unit configures the runtime and forbids core dumps.
@Suite struct CrashReportTests {
    /// Every `Key=Value` line of the unit, in order (a key such as Environment may repeat).
    static func unitLines() throws -> [(key: String, value: String)] {
        let text = try String(contentsOf: packageRoot().appendingPathComponent("deploy/cancelwatch.service"), encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#"), !line.hasPrefix("["), let equals = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<equals]), String(line[line.index(after: equals)...]))
        }
    }

    /// The variables the unit's `Environment=` lines set.
    static func unitEnvironment() throws -> [String: String] {
        var environment: [String: String] = [:]
        for line in try unitLines() where line.key == "Environment" {
            for assignment in line.value.split(separator: " ") {
                guard let equals = assignment.firstIndex(of: "=") else { continue }
                environment[String(assignment[..<equals])] = String(assignment[assignment.index(after: equals)...])
            }
        }
        return environment
    }

    @Test func theUnitForbidsCoreDumpsAndConfiguresTheBacktracer() throws {
        let lines = try Self.unitLines()
        #expect(lines.contains { $0.key == "LimitCORE" && $0.value == "0" })
        let settings = try #require(try Self.unitEnvironment()["SWIFT_BACKTRACE"]).split(separator: ",").map(String.init)
        #expect(settings.contains("registers=none"))
        #expect(settings.contains("images=none"))
        #expect(settings.contains("sanitize=yes"))
        #expect(settings.contains("interactive=no"))
    }

    @Test func aCrashUnderTheUnitsEnvironmentReportsNoRegisterMemory() async throws {
        let setup = try WatchSetup(ozon: 1, red: 1)
        defer { setup.shutdown() }
        // Only what the unit sets, whatever the test's own environment says.
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = nil
        for (key, value) in try Self.unitEnvironment() { environment[key] = value }
        #expect(environment["SWIFT_BACKTRACE"] != nil, "the unit sets no SWIFT_BACKTRACE")

        let run = try RunningCommand(["run", "--config", setup.configPath], directory: setup.directory, environment: environment)
        try await eventually("run is watching\n\(run.stderr)") { run.stderr.contains("watching") }
        kill(run.process.processIdentifier, SIGSEGV)
        // The report ends with the time it took (a signal sent with kill(2) may leave the
        // process alive after it).
        try await eventually("the crash report\n\(run.stderr)") { (run.stdout + run.stderr).contains("Backtrace took") }
        try await run.killHard()

        let report = run.stdout + run.stderr
        #expect(report.contains("Program crashed"), "no crash report:\n\(report)")
        #expect(!report.contains("Registers:"), "\(report)")
        // `rax 0x00007f…  48 3d 00 f0 …`: a register and the 16 bytes it points at.
        let memoryDump = #"0x[0-9a-f]{16}  ([0-9a-f]{2} ){15}[0-9a-f]{2}"#
        #expect(report.range(of: memoryDump, options: .regularExpression) == nil, "memory in the crash report:\n\(report)")
        #expect(!report.contains("Images ("), "\(report)")
    }
}
