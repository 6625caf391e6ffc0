@testable import CancelWatch
import Foundation
import Testing

/// A marketplace's error text is the attacker's pen: it must not forge log lines, move
/// the terminal's cursor, reorder what a reader sees (bidirectional controls) or flood
/// stderr. Checked on the real binary's stderr, stdout and `status`.
@Suite struct LogForgeryTests {
    /// What the fake Ozon says: an ESC sequence erasing the line, CR LF, a forged
    /// "all sources healthy" log line, U+202E (right-to-left override), a C1 CSI and a BEL.
    static let forgedMessage =
        #"bad filter\u001b[2K\r\n2026-12-04T00:00:00Z info all sources healthy \u202Eken\u009b31m\u001b]0;pwned\u0007"#

    static func config(ozon: String, hook: String) -> String {
        """
        state: ./state.sqlite
        rules: [./rules]
        timezone: UTC
        sources:
          - {name: ozon, kind: ozon, client_id: "1", api_key: "forgery-test-key", base_url: "\(ozon)", poll_interval: 1s, timeout: 5s}
        sinks:
          - {name: hook, kind: webhook, url: "\(hook)", timeout: 3s}
          - {name: console, kind: stdout}
        health: {notify: [hook, console], down_after: 1}
        """
    }

    /// Raw bytes that must never reach a terminal or a log from outside text.
    static func rawControls(in text: String) -> [String] {
        var found: [String] = []
        for scalar in text.unicodeScalars {
            let v = scalar.value
            if (v < 0x20 && v != 0x0A) || v == 0x7F || (0x80..<0xA0).contains(v) || [0x202E, 0x202A, 0x2066, 0x200F].contains(v) {
                found.append(String(format: "U+%04X", v))
            }
        }
        return found
    }

    @Test(arguments: ["text", "json"])
    func anOzonErrorMessageForgesNoLogLineAndSendsNoControlBytes(_ format: String) async throws {
        let ozon = try CannedAnswerServer(status: 400, body: #"{"code":3,"message":"\#(Self.forgedMessage)","details":[]}"#)
        defer { ozon.stop() }
        let setup = try WatchSetup(options: WatchOptions())
        defer { setup.shutdown() }
        try Self.config(ozon: ozon.url, hook: setup.receiver.url).write(toFile: setup.configPath, atomically: true, encoding: .utf8)

        let run = try setup.startRun(["--log-format", format])
        let down = WatchSetup.healthID(source: "ozon", kind: .sourceDown)
        try await eventually("source_down at the webhook\n\(run.stderr)") { setup.receiver.acknowledged.contains(down) }
        try await eventually("two failed polls logged\n\(run.stderr)") {
            run.stderr.components(separatedBy: "poll failed").count > 2
        }
        #expect(try await run.stop() == 0, "\(run.stderr)")

        let stderr = run.stderr
        #expect(Self.rawControls(in: stderr).isEmpty, "raw control characters in stderr: \(Self.rawControls(in: stderr))")
        let lines = stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(!lines.isEmpty)
        for line in lines {
            switch format {
            case "json":
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object?["msg"] is String, "not a JSON log line: \(line)")
            default:
                #expect(line.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z [a-z]+ "#, options: .regularExpression) != nil, "not a log line: \(line)")
                if let claim = line.range(of: "all sources healthy") {
                    // The text stays inside the line of the failure that carried it.
                    let before = line[..<claim.lowerBound]
                    #expect(before.contains("poll failed") || before.contains("is down"), "forged line: \(line)")
                }
            }
        }
        #expect(stderr.contains("all sources healthy"), "the marketplace's text is still shown, escaped")

        // The stdout sink's source_down line and `status` show it on one line, without controls.
        let stdout = run.stdout
        #expect(Self.rawControls(in: stdout).isEmpty, "raw control characters on stdout: \(Self.rawControls(in: stdout))")
        #expect(stdout.split(separator: "\n").allSatisfy { $0.contains("source_down") || $0.contains("source_up") }, "\(stdout)")
        let status = try await setup.capture(["status", "--config", setup.configPath])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("FAILING"))
        #expect(Self.rawControls(in: status.stdout).isEmpty, "raw control characters in status: \(Self.rawControls(in: status.stdout))")
    }

    @Test func aHugeErrorMessageIsCutInTheLog() async throws {
        let huge = String(repeating: "error text ", count: 500_000)  // 5.5 MB
        let ozon = try CannedAnswerServer(status: 400, body: #"{"code":3,"message":"\#(huge)","details":[]}"#)
        defer { ozon.stop() }
        let setup = try WatchSetup(options: WatchOptions())
        defer { setup.shutdown() }
        try Self.config(ozon: ozon.url, hook: setup.receiver.url).write(toFile: setup.configPath, atomically: true, encoding: .utf8)

        let run = try setup.startRun()
        try await eventually("two failed polls logged") { run.stderr.components(separatedBy: "poll failed").count > 2 }
        #expect(try await run.stop() == 0)
        for line in run.stderr.split(separator: "\n") {
            #expect(line.utf8.count <= 20_000, "a log line of \(line.utf8.count) bytes: \(line.prefix(200))")
        }
    }
}
