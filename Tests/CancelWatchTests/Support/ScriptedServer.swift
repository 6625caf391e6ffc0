import Foundation
import HTTPServing

/// A loopback HTTP server that answers from a script and records every request,
/// for client tests that need exact pages, errors and faults.
///
/// Its ``baseURL`` ends in a path prefix of its own, and only requests under it are scripted,
/// recorded (with the prefix taken off) and answered: a loopback port is reused by the next
/// server that asks, and a client of an earlier test still sending to the port it knew would
/// otherwise take this test's scripted answers. One such stranger took a `dropConnection`
/// meant for a test's own request, which then got the fallback instead.
final class ScriptedServer: @unchecked Sendable {
    /// Requests outside the prefix are answered with this status, unrecorded.
    static let strangerStatus = 421
    private let prefix = "/s" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
    private let lock = NSLock()
    private var script: [(ServerRequest) -> ServerResponse]
    private var fallback: (ServerRequest) -> ServerResponse
    private var recorded: [ServerRequest] = []
    private(set) var server: HTTPServer!

    init(
        _ script: [(ServerRequest) -> ServerResponse] = [],
        fallback: @escaping (ServerRequest) -> ServerResponse = { _ in .text(status: 599, "script exhausted") },
        options: HTTPServer.Options = HTTPServer.Options()
    ) throws {
        self.script = script
        self.fallback = fallback
        server = try HTTPServer(options: options) { [unowned self] request in self.answer(request) }
    }

    deinit { server.shutdown() }

    var baseURL: String { server.baseURL + prefix }

    var requests: [ServerRequest] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }

    private func answer(_ sent: ServerRequest) -> ServerResponse {
        let rest = sent.target.hasPrefix(prefix) ? sent.target.dropFirst(prefix.count) : "-"
        guard rest.isEmpty || rest.first == "/" || rest.first == "?" else {
            return .text(status: Self.strangerStatus, "not this test's server")
        }
        let request = ServerRequest(
            method: sent.method, target: rest.first == "/" ? String(rest) : "/" + rest, version: sent.version,
            headers: sent.headers, body: sent.body, remoteAddress: sent.remoteAddress)
        lock.lock()
        recorded.append(request)
        let step = script.isEmpty ? fallback : script.removeFirst()
        lock.unlock()
        return step(request)
    }

    static func fixture(_ name: String) throws -> Data {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") else {
            throw CocoaError(.fileNoSuchFile)
        }
        return try Data(contentsOf: url)
    }
}
