import Foundation
import Testing

/// `deploy/cancelwatch.service` as systemd would use it: its ExecStart command line (with
/// a test config), ExecReload's signal, KillSignal and TimeoutStopSec, against the real
/// binary and the simulator.
@Suite struct ServiceUnitTests {
    struct Unit {
        var fields: [String: String] = [:]

        init(_ text: String) {
            for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.hasPrefix("[") {
                guard let equals = line.firstIndex(of: "=") else { continue }
                fields[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
        }
    }

    @Test func theUnitsCommandLineRunsReloadsOnItsSignalAndStopsWithinItsTimeout() async throws {
        let unit = Unit(try String(contentsOf: packageRoot().appendingPathComponent("deploy/cancelwatch.service"), encoding: .utf8))
        var arguments = try #require(unit.fields["ExecStart"]).split(separator: " ").map(String.init)
        #expect(arguments.first?.hasSuffix("/cancelwatch") == true)
        arguments.removeFirst()
        let configIndex = try #require(arguments.firstIndex(of: "--config")) + 1
        #expect(arguments[configIndex] == "/etc/cancelwatch/cancelwatch.yaml")

        let setup = try WatchSetup(ozon: 1, red: 1)
        defer { setup.shutdown() }
        arguments[configIndex] = setup.configPath
        let run = try RunningCommand(arguments, directory: setup.directory)
        defer { if run.process.isRunning { kill(run.process.processIdentifier, SIGKILL) } }
        try await eventually("the service says it is watching\n\(run.stderr)") { run.stderr.contains("watching") }

        #expect(unit.fields["ExecReload"] == "/bin/kill -HUP $MAINPID")
        kill(run.process.processIdentifier, SIGHUP)
        try await eventually("the service reloads on SIGHUP\n\(run.stderr)") { run.stderr.contains("\"reloaded\"") }

        #expect(unit.fields["KillSignal"] == "SIGTERM")
        let timeout = try #require(unit.fields["TimeoutStopSec"].flatMap { TimeInterval($0) })
        #expect(try await run.stop(signal: SIGTERM, timeout: timeout) == 0, "\(run.stderr)")

        // --log-format json: every line of the journal is one JSON object.
        let lines = run.stderr.split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) is [String: Any], "not JSON: \(line)")
        }
        #expect(unit.fields["StateDirectory"] == "cancelwatch")
        #expect(unit.fields["WorkingDirectory"] == "/var/lib/cancelwatch")
    }
}
