import Foundation
import HTTPServing

/// A loopback HTTP server that answers from a script and records every request,
/// for client tests that need exact pages, errors and faults.
final class ScriptedServer: @unchecked Sendable {
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

    var baseURL: String { server.baseURL }

    var requests: [ServerRequest] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }

    private func answer(_ request: ServerRequest) -> ServerResponse {
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
