import Foundation
import Logging
import PostgresNIO

/// Whether the state's PostgreSQL database answers, for `/healthz`: `SELECT 1` on a
/// connection of its own (a long commit on the store's connection does not hold it up),
/// given ``timeout`` to connect and as long to answer. A result is reused for a second, and
/// checks asked for while one runs wait for it, so that a burst of requests makes one check.
///
/// ``problem()`` blocks its thread: call it from a thread of its own (the HTTP server's
/// handlers run on one), never from Swift's cooperative pool.
public final class StateDatabaseProbe: @unchecked Sendable {
    public let location: PostgresLocation
    /// How long connecting, and then the answer, may take before the database counts as unreachable.
    public let timeout: TimeInterval
    private let configuration: PostgresConnection.Configuration?
    private let setupError: StoreError?
    private let logger = Logger(label: "cancelwatch.probe", factory: { _ in SwiftLogNoOpLogHandler() })
    private let lock = NSLock()
    /// Guarded by `lock`.
    private var connection: PostgresConnection?
    private var last: (at: Date, problem: String?)?

    /// How long a result is reused.
    static let reuse: TimeInterval = 1

    public init(location: PostgresLocation, timeout: TimeInterval = 2) {
        self.location = location
        self.timeout = min(max(timeout, 0.01), 60)
        do {
            var configuration = try StateDatabaseConnection.configuration(for: location)
            configuration.options.connectTimeout = .milliseconds(Int64(self.timeout * 1000))
            self.configuration = configuration
            setupError = nil
        } catch {
            configuration = nil
            setupError = error
        }
    }

    deinit {
        // Not waited for: the last reference may go on any thread.
        if let connection { StateDatabaseSession.close(connection) }
    }

    /// Nil when the database answered; otherwise one line saying it is unreachable, naming
    /// its host and port (never the password) and why.
    public func problem() -> String? {
        lock.lock()
        defer { lock.unlock() }
        if let last, abs(last.at.timeIntervalSinceNow) < Self.reuse { return last.problem }
        let problem = check()
        last = (Date(), problem)
        return problem
    }

    /// One check (called with `lock` held).
    private func check() -> String? {
        guard let configuration else {
            return "state database unreachable at \(location.server): \(setupError?.description ?? "no configuration")"
        }
        do {
            let connection = try connected(configuration)
            // Waited for at most `timeout`, whatever the connection does with the query.
            guard try StateDatabaseSession.wait(for: connection.query("SELECT 1", logger: logger), seconds: timeout) != nil else {
                throw StoreError("no answer within \(DurationText.format(timeout))")
            }
            return nil
        } catch {
            if let connection { StateDatabaseSession.close(connection) }
            connection = nil
            return "state database unreachable at \(location.server): \(TerminalText.singleLine(StateDatabaseSession.describe(error)))"
        }
    }

    private func connected(_ configuration: PostgresConnection.Configuration) throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        let connecting = PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration, id: 0, logger: logger)
        guard let made = try StateDatabaseSession.wait(for: connecting, seconds: timeout) else {
            connecting.whenSuccess { StateDatabaseSession.close($0) }
            throw StoreError("no answer within \(DurationText.format(timeout))")
        }
        connection = made
        return made
    }
}
