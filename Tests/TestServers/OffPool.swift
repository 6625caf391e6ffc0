import Foundation

/// Runs blocking work (starting a Python server, waiting for a subprocess) on a thread
/// of its own and awaits it: on a 2-core machine Swift's cooperative pool has two
/// threads, and one test blocking them stalls every other test's timers.
public func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try work() })
        }
        thread.start()
    }
}

extension SMTPTestServer {
    /// Starts a server without holding a cooperative thread while Python starts.
    public static func start(
        security: Security = .plain, credentials: (String, String)? = nil, refuse: [String] = []
    ) async throws -> SMTPTestServer {
        let user = credentials?.0
        let password = credentials?.1
        return try await offPool {
            try SMTPTestServer(security: security, credentials: user.map { ($0, password ?? "") }, refuse: refuse)
        }
    }
}
