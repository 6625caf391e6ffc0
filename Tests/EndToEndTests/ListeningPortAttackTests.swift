import Foundation
import Testing
import TestServers

/// The `listen:` port of the real binary against clients that try to knock it over:
/// heads dripped a byte at a time, bodies of 16 MB, a head made of line feeds.
@Suite(.serialized) struct ListeningPortAttackTests {
    /// A watcher serving `/metrics` and `/healthz`, with every source healthy.
    final class Target: @unchecked Sendable {
        let setup: WatchSetup
        let run: RunningCommand
        let url: String
        let port: Int

        init() async throws {
            var options = WatchOptions()
            options.listen = true
            setup = try WatchSetup(ozon: 1, red: 1, options: options)
            run = try setup.startRun()
            url = try await run.metricsURL()
            port = try #require(URLComponents(string: url)?.port)
            try await eventually("/healthz ok\n\(run.stderr)") { try await httpGet(url + "/healthz").status == 200 }
        }

        var pid: Int32 { run.process.processIdentifier }

        deinit { setup.shutdown() }
    }

    @Test func sixtyFourSlowlorisClientsAreClosedAndHealthzKeepsAnswering() async throws {
        let target = try await Target()
        let port = target.port
        let drippers = try await offPool { try (0..<64).map { _ in try RawHTTPClient(port: port) } }
        // Each sends a head that never ends, one byte every two seconds, until the server closes it.
        let started = DispatchSemaphore(value: 0)
        let dripping = Task.detached {
            try await offPool { () -> Int in
                for client in drippers { client.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Drip: ") }
                started.signal()
                var open = Set(drippers.indices)
                let limit = Date().addingTimeInterval(90)
                while !open.isEmpty && Date() < limit {
                    for index in open.sorted() where drippers[index].isClosedByPeer(timeout: 0) || !drippers[index].send("a") {
                        open.remove(index)
                    }
                    Thread.sleep(forTimeInterval: 2)
                }
                return open.count
            }
        }
        // While all 64 drip, /healthz answers on a new connection (not one kept alive from before).
        try await offPool { started.wait() }
        let answer = try await offPool { () -> String in
            let client = try RawHTTPClient(port: port)
            client.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return client.read(until: "\r\n\r\n", timeout: 30)
        }
        #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(200))")
        #expect(try await dripping.value == 0, "drippers still open after 90 s")
        #expect(try await httpGet(target.url + "/healthz").status == 200)
        #expect(try await target.run.stop() == 0)
    }

    @Test func bodiesOf16MBAreRefusedWith413WithoutBeingBuffered() async throws {
        let target = try await Target()
        let port = target.port
        let before = try #require(ProcessUsage.residentBytes(pid: target.pid))
        for path in ["/metrics", "/healthz"] {
            let (response, _) = try await offPool {
                try RawHTTPClient(port: port).sendHead(
                    "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Length: 16777216\r\n\r\n", thenBody: 16_777_216)
            }
            #expect(response.hasPrefix("HTTP/1.1 413"), "\(path): \(response.prefix(200))")
        }
        // Twenty clients that send the whole 16 MB regardless of the answer.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await offPool {
                        let client = try RawHTTPClient(port: port)
                        client.send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 16777216\r\n\r\n")
                        let chunk = [UInt8](repeating: 0x78, count: 1 << 20)
                        for _ in 0..<16 where client.send(chunk) {}
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await httpGet(target.url + "/healthz").status == 200)
        let after = try #require(ProcessUsage.residentBytes(pid: target.pid))
        #expect(after - before < 64 << 20, "resident memory grew from \(before >> 20) MB to \(after >> 20) MB")
        #expect(try await target.run.stop() == 0)
    }

    @Test func aHeadOf80KBOfLineFeedsIsAnsweredWithAnErrorCheaply() async throws {
        let target = try await Target()
        let port = target.port
        let cpuBefore = try #require(ProcessUsage.cpuSeconds(pid: target.pid))
        for _ in 0..<5 {
            let response = try await offPool { () -> String in
                let client = try RawHTTPClient(port: port)
                client.send([UInt8](repeating: 0x0A, count: 80 * 1024))
                return client.read(until: "\r\n\r\n", timeout: 30)
            }
            #expect(response.hasPrefix("HTTP/1.1 4"), "\(response.prefix(200))")
        }
        let cpu = try #require(ProcessUsage.cpuSeconds(pid: target.pid)) - cpuBefore
        // Parsing is linear: five such heads cost milliseconds (a quadratic scan took 1.7 s each).
        #expect(cpu < 2, "five heads of line feeds cost \(cpu) s of CPU")
        #expect(try await httpGet(target.url + "/healthz").status == 200)
        #expect(try await target.run.stop() == 0)
    }
}
