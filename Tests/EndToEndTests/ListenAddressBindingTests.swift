import Foundation
import Testing
import TestServers

/// `listen:` in the real binary: what `check` accepts, `run` can bind, on IPv4, IPv6 and
/// `localhost`, at start and after a reload; every interface only when written out, with a warning.
@Suite(.serialized) struct ListenAddressBindingTests {
    /// The status of `GET /healthz` at `http://host:port` or `http://[v6]:port`, over a raw
    /// socket (Foundation's URL loading does not take IPv6 literals here).
    private func healthz(_ url: String) async throws -> Int {
        let rest = url.dropFirst("http://".count)
        let host: String
        let portText: Substring
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            portText = rest[rest.index(close, offsetBy: 2)...]
        } else {
            let colon = try #require(rest.lastIndex(of: ":"))
            host = String(rest[..<colon])
            portText = rest[rest.index(after: colon)...]
        }
        let port = try #require(Int(portText.prefix { $0.isNumber }))
        let answer = try await offPool { () -> String in
            let client = try RawHTTPClient(host: host, port: port)
            client.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return client.read(until: "\r\n\r\n")
        }
        return Int(answer.dropFirst("HTTP/1.1 ".count).prefix(3)) ?? 0
    }

    private func healthyRun(listen: String) async throws -> (WatchSetup, RunningCommand, String) {
        var options = WatchOptions()
        options.listen = true
        options.listenAddress = listen
        let setup = try WatchSetup(ozon: 1, red: 1, options: options)
        let run = try setup.startRun()
        let url = try await run.metricsURL()
        try await eventually("/healthz ok at \(url)\n\(run.stderr)") { try await healthz(url) == 200 }
        return (setup, run, url)
    }

    @Test func runServesHealthzOnIPv6Loopback() async throws {
        let (setup, run, url) = try await healthyRun(listen: "[::1]:0")
        defer { setup.shutdown() }
        #expect(url.hasPrefix("http://[::1]:"))
        #expect(try await run.stop() == 0)
    }

    @Test func runServesHealthzOnLocalhost() async throws {
        let (setup, run, url) = try await healthyRun(listen: "localhost:0")
        defer { setup.shutdown() }
        let port = try #require(URLComponents(string: url)?.port)
        #expect(try await httpGet("http://localhost:\(port)/healthz").status == 200)
        #expect(try await healthz(url) == 200)
        #expect(try await run.stop() == 0)
    }

    @Test func aReloadToIPv6KeepsRunningAndServesThere() async throws {
        let (setup, run, _) = try await healthyRun(listen: "127.0.0.1:0")
        defer { setup.shutdown() }
        setup.options.listenAddress = "[::1]:0"
        try setup.writeConfig()
        kill(run.process.processIdentifier, SIGHUP)
        try await eventually("the reload\n\(run.stderr)") { run.stderr.contains("reloaded") || !run.process.isRunning }
        #expect(run.process.isRunning, "\(run.stderr)")
        let line = try #require(run.stderr.split(separator: "\n").last { $0.contains("listen=http://[::1]:") }, "\(run.stderr)")
        let url = String(line[line.range(of: "http://")!.lowerBound...].prefix { !$0.isWhitespace })
        try await eventually("/healthz ok at \(url)") { try await healthz(url) == 200 }
        #expect(try await run.stop() == 0)
    }

    @Test func runRefusesToStartOnEveryInterfaceWithoutTheStatusPagesToken() async throws {
        var options = WatchOptions()
        options.listen = true
        options.listenAddress = "0.0.0.0:0"
        let setup = try WatchSetup(ozon: 1, red: 0, options: options)
        defer { setup.shutdown() }
        let result = try await setup.command(["run", "--config", setup.configPath])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("cancelwatch.yaml:4:9: error: listen 0.0.0.0:0 serves the status page to other machines"), "\(result.stderr)")
        #expect(!result.stderr.contains("serving /metrics"), "it must not have listened: \(result.stderr)")
    }

    @Test func checkRefusesABarePortWithLineColumnAndBothWaysToWriteIt() async throws {
        var options = WatchOptions()
        options.listen = true
        options.listenAddress = ":9464"
        let setup = try WatchSetup(ozon: 1, red: 0, options: options)
        defer { setup.shutdown() }
        let result = try await setup.command(["check", "--config", setup.configPath])
        #expect(result.status != 0)
        #expect(result.stderr.contains("cancelwatch.yaml:4:9: error:"), "\(result.stderr)")
        #expect(result.stderr.contains("127.0.0.1:9464") && result.stderr.contains("0.0.0.0:9464"), "\(result.stderr)")
    }

    @Test func everyInterfaceIsAcceptedWithAWarningFromCheckAndInRunsLog() async throws {
        // The status page on every interface needs its token.
        let setup = try WatchSetup(ozon: 1, red: 0, options: .onEveryInterfaceWithAToken)
        let environment = WatchOptions.statusTokenEnvironment
        defer { setup.shutdown() }
        let check = try await setup.command(["check", "--config", setup.configPath], environment: environment)
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stderr.contains("cancelwatch.yaml:4:9: warning:") && check.stderr.contains("public"), "\(check.stderr)")
        let run = try setup.startRun(environment: environment)
        try await eventually("the warning in the log\n\(run.stderr)") { run.stderr.contains("public") }
        #expect(run.stderr.split(separator: "\n").contains { $0.contains("warning") && $0.contains("public") }, "\(run.stderr)")
        #expect(try await run.stop() == 0)
    }
}
