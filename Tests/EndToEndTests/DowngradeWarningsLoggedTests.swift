import CancelWatch
import Foundation
import Testing

/// Downgrades are said out loud by the real binary: `check` prints each as a warning at
/// its line and column (and still passes); `run` logs each at start and again after each
/// reload. On deb1852 neither said anything.
@Suite struct DowngradeWarningsLoggedTests {
    static let extraSinks = """
          - {name: mail, kind: email, url: "smtp://127.0.0.1:1", tls: none, username: ops, password: "pw-secret-7788",
             from: a@example.com, to: b@example.com}
          - {name: open, kind: webhook, url: "http://hooks.example.com/services/T0/B0/tok-5566", insecure: true}
        """

    @Test func checkPrintsEveryDowngradeAtItsLineAndRunLogsThemAtStartAndAfterEachReload() async throws {
        var options = WatchOptions()
        options.extraSinks = Self.extraSinks
        let setup = try WatchSetup(ozon: 1, red: 0, options: options)
        defer { setup.shutdown() }
        let lines = try String(contentsOfFile: setup.configPath, encoding: .utf8).components(separatedBy: "\n")
        let mailLine = try #require(lines.firstIndex { $0.contains("tls: none") }) + 1
        let openLine = try #require(lines.firstIndex { $0.contains("insecure: true") }) + 1

        let check = try await setup.capture(["check", "--config", setup.configPath])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stderr.contains("cancelwatch.yaml:\(mailLine):"), "\(check.stderr)")
        #expect(check.stderr.contains("warning: tls: none in sink 'mail' sends the SMTP password in clear (AUTH PLAIN)"), "\(check.stderr)")
        #expect(check.stderr.contains("cancelwatch.yaml:\(openLine):"), "\(check.stderr)")
        #expect(check.stderr.contains("warning: insecure: true in sink 'open'"), "\(check.stderr)")
        #expect(check.stderr.contains("warning: 'url' in sink 'open' is http:// to hooks.example.com"), "\(check.stderr)")
        #expect(check.stdout.contains("(3 warnings)"), "\(check.stdout)")
        for secret in ["pw-secret-7788", "tok-5566"] { #expect(!check.stderr.contains(secret), "\(check.stderr)") }

        let run = try setup.startRun()
        let said = "config: tls: none in sink 'mail'"
        try await eventually("the warnings at start\n\(run.stderr)") { run.stderr.contains("watching") }
        #expect(run.stderr.components(separatedBy: said).count - 1 == 1, "\(run.stderr)")
        #expect(run.stderr.contains("config: insecure: true in sink 'open'"), "\(run.stderr)")
        kill(run.process.processIdentifier, SIGHUP)
        try await eventually("the reload\n\(run.stderr)") { run.stderr.contains("reloaded") }
        try await eventually("the warnings again after the reload\n\(run.stderr)") {
            run.stderr.components(separatedBy: said).count - 1 == 2
        }
        for secret in ["pw-secret-7788", "tok-5566"] { #expect(!run.stderr.contains(secret), "\(run.stderr)") }
        #expect(try await run.stop() == 0, "\(run.stderr)")
    }
}
