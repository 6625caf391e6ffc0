import Foundation
import Logging
import PostgresNIO

/// One connection to the state's PostgreSQL database, used by one call at a time (a lock),
/// made again on the next call once it is lost. Each call waits on its calling thread while
/// the work runs on NIO's event loop: never call it from Swift's cooperative pool or from an
/// event loop (the engine calls stores from threads of its own, ``BlockingExecutor``).
final class StateDatabaseConnection: @unchecked Sendable {
    let location: PostgresLocation
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    /// How long a statement may go unanswered before its connection is closed and the call
    /// fails (a database cut off by the network answers nothing, and TCP would wait minutes).
    let answerDeadline: TimeInterval
    /// The longest a statement of the engine's takes on a healthy database is milliseconds.
    static let defaultAnswerDeadline: TimeInterval = 15
    private let lock = NSLock()
    /// Guarded by `lock`.
    private var connection: PostgresConnection?
    /// Connections attempted so far (guarded by `lock`).
    private(set) var connections = 0
    /// How long after a failed connect calls fail at once with its error instead of trying
    /// again: while the database is away, each poll's commit fails at once rather than
    /// holding the ledger for a connect timeout.
    let reconnectPause: TimeInterval
    /// The last connect's failure and when (guarded by `lock`).
    private var lastFailure: (at: ContinuousClock.Instant, error: StoreError)?

    /// How long the server lets a transaction of this connection sit idle, and wait for a
    /// lock, before it ends it: a replica that loses power or its network in the middle of a
    /// transaction (the server sees no close) must not hold its locks, and with them every
    /// other replica's lease rounds, until TCP gives up hours later.
    static let serverIdleInTransaction = 10
    static let serverLockWait = 5

    /// Connects, or throws naming the server (never the password). `serverLimits`: the
    /// server ends this connection's idle transactions and long waits (see above).
    init(
        location: PostgresLocation, logger: Logger, answerDeadline: TimeInterval = defaultAnswerDeadline,
        reconnectPause: TimeInterval = 5, serverLimits: Bool = true
    ) throws(StoreError) {
        self.location = location
        self.logger = logger
        self.answerDeadline = min(max(answerDeadline, 0.01), 3600)
        self.reconnectPause = min(max(reconnectPause, 0), 3600)
        var configuration = try Self.configuration(for: location)
        configuration.options.connectTimeout = .milliseconds(Int64(min(self.answerDeadline, 3) * 1000))
        if serverLimits {
            // Below the client's deadline, so that the server's error says what happened.
            let statement = Int(max(self.answerDeadline - 1, self.answerDeadline / 2) * 1000)
            configuration.options.additionalStartupParameters = [
                ("idle_in_transaction_session_timeout", "\(Self.serverIdleInTransaction)s"),
                ("lock_timeout", "\(Self.serverLockWait)s"),
                ("statement_timeout", "\(statement)ms"),
                // The server's own check that the client is still there, when it is idle.
                ("tcp_keepalives_idle", "10"), ("tcp_keepalives_interval", "5"), ("tcp_keepalives_count", "3"),
            ]
        }
        self.configuration = configuration
        lock.lock()
        defer { lock.unlock() }
        _ = try connected()
    }

    deinit {
        // Not waited for: the last reference may go on any thread, Swift's pool included.
        if let connection { StateDatabaseSession.close(connection) }
    }

    /// Runs `body` in one transaction: all of it lands, or none of it.
    func transaction<T>(_ body: (StateDatabaseSession) throws(StoreError) -> T) throws(StoreError) -> T {
        try withSession { (session) throws(StoreError) -> T in
            try session.execute("BEGIN")
            do throws(StoreError) {
                let result = try body(session)
                try session.execute("COMMIT")
                return result
            } catch {
                if !session.connection.isClosed { try? session.execute("ROLLBACK") }
                throw error
            }
        }
    }

    /// Runs `body`'s statements, each its own transaction.
    func withSession<T>(_ body: (StateDatabaseSession) throws(StoreError) -> T) throws(StoreError) -> T {
        lock.lock()
        defer { lock.unlock() }
        let connection = try connected()
        do throws(StoreError) {
            return try body(
                StateDatabaseSession(connection: connection, location: location, logger: logger, answerDeadline: answerDeadline))
        } catch {
            if error.connectionLost || connection.isClosed { self.connection = nil }
            throw error
        }
    }

    /// The open connection, or a new one (called with `lock` held).
    private func connected() throws(StoreError) -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        connection = nil
        if let lastFailure, ContinuousClock.now - lastFailure.at < .milliseconds(Int64(reconnectPause * 1000)) {
            throw lastFailure.error
        }
        connections += 1
        let future = PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration, id: connections, logger: logger)
        do {
            guard let made = try StateDatabaseSession.wait(for: future, seconds: answerDeadline) else {
                future.whenSuccess { StateDatabaseSession.close($0) }
                throw StoreError("no answer within \(DurationText.format(answerDeadline))")
            }
            connection = made
            lastFailure = nil
            return made
        } catch {
            let failure = StoreError(
                "state database \(location): cannot connect to \(location.server): \(StateDatabaseSession.describe(error))")
            lastFailure = (ContinuousClock.now, failure)
            throw failure
        }
    }

    static func configuration(for location: PostgresLocation) throws(StoreError) -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        do {
            var unchecked = TLSConfiguration.makeClientConfiguration()
            unchecked.certificateVerification = .none
            switch location.sslMode {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try NIOSSLContext(configuration: unchecked))
            case .require: tls = .require(try NIOSSLContext(configuration: unchecked))
            case .verifyFull: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
        } catch {
            throw StoreError("state database \(location): TLS cannot be set up: \(error)")
        }
        return PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password?.value,
            database: location.database, tls: tls)
    }
}

/// Statements on one connection, each waited for on the calling thread.
struct StateDatabaseSession {
    let connection: PostgresConnection
    let location: PostgresLocation
    let logger: Logger
    /// See ``StateDatabaseConnection/answerDeadline``.
    var answerDeadline: TimeInterval = StateDatabaseConnection.defaultAnswerDeadline

    /// Runs `query` and returns its rows.
    @discardableResult
    func query(_ query: PostgresQuery) throws(StoreError) -> PostgresQueryResult {
        let answer = connection.query(query, logger: logger)
        let result: PostgresQueryResult?
        do {
            result = try Self.wait(for: answer, seconds: answerDeadline)
        } catch {
            // A connection that failed (not a statement the server refused) is closed
            // here, so that the next call makes a new one.
            var failure = StoreError("state database \(location): \(Self.describe(error))")
            if Self.endsTheConnection(error) {
                Self.close(connection)
                failure.connectionLost = true
            }
            throw failure
        }
        guard let result else {
            // Closing does not always fail a query a closing connection has taken: the
            // caller is not kept waiting for it either way.
            Self.close(connection)
            var failure = StoreError("state database \(location): no answer within \(DurationText.format(answerDeadline))")
            failure.connectionLost = true
            throw failure
        }
        return result
    }

    /// Waits on the calling thread for `future`, at most `seconds`: its value, or nil when it
    /// has not completed by then (it may still complete later, unseen).
    static func wait<T: Sendable>(for future: EventLoopFuture<T>, seconds: TimeInterval) throws -> T? {
        let done = DispatchSemaphore(value: 0)
        let outcome = NSLock()
        nonisolated(unsafe) var result: Result<T, any Error>?
        future.whenComplete { completed in
            outcome.withLock { result = completed }
            done.signal()
        }
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        return try outcome.withLock { result }?.get()
    }

    /// Closes `connection` without waiting (a connection whose peer went silent may take
    /// long to close); it is kept alive until the close completes.
    static func close(_ connection: PostgresConnection) {
        let closing: EventLoopFuture<Void> = connection.close()
        closing.whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    /// Whether `error` leaves the connection unusable: the network failed, or the server
    /// ended the session (a FATAL error, as when it shuts down or an administrator ends it).
    static func endsTheConnection(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, let info = error.serverInfo else { return true }
        return info[.severity] == "FATAL" || info[.severity] == "PANIC"
    }

    func execute(_ query: PostgresQuery) throws(StoreError) { try self.query(query) }

    /// Decodes one row, or throws naming what did not read.
    func decode<each Column: PostgresDecodable>(_ row: PostgresRow, as: (repeat each Column).Type) throws(StoreError) -> (
        repeat each Column
    ) {
        do {
            return try row.decode((repeat each Column).self)
        } catch {
            throw StoreError("state database \(location): a row does not read: \(Self.describe(error))")
        }
    }

    /// Decodes a row of one column.
    func decode<Column: PostgresDecodable>(_ row: PostgresRow, as: Column.Type) throws(StoreError) -> Column {
        do {
            return try row.decode(Column.self)
        } catch {
            throw StoreError("state database \(location): a row does not read: \(Self.describe(error))")
        }
    }

    /// What went wrong, as the server or the network says it (PostgresNIO's own description
    /// says nothing, to keep queries out of logs; no password is in either).
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let info = error.serverInfo {
            let message = info[.message] ?? "server error"
            return info[.sqlState].map { "\(message) (SQLSTATE \($0))" } ?? message
        }
        if let underlying = error.underlying, let reason = networkReason(underlying) { return reason }
        switch error.code {
        case .serverClosedConnection: return "the server closed the connection"
        case .clientClosedConnection: return "the connection was closed"
        default: break
        }
        if let underlying = error.underlying {
            return underlying is PSQLError ? describe(underlying) : "\(error.code.description): \(underlying)"
        }
        return error.code.description
    }

    /// Why a connection could not be made, in the system's words ("Connection refused"); nil
    /// when `error` is not a network one.
    private static func networkReason(_ error: any Error) -> String? {
        switch error {
        case let error as NIOConnectionError:
            if let failure = error.connectionErrors.last { return networkReason(failure.error) ?? "\(failure.error)" }
            if let dns = error.dnsAError ?? error.dnsAAAAError { return "cannot resolve \(error.host): \(dns)" }
            return nil
        case let error as IOError: return String(cString: strerror(error.errnoCode))
        case ChannelError.connectTimeout: return "no answer within the connect timeout"
        default: return nil
        }
    }
}

extension StateDatabaseSession {
    /// Whether a table called `name` is on the search path.
    func tableExists(_ name: String) throws(StoreError) -> Bool {
        for row in try query("SELECT to_regclass(\(name)) IS NOT NULL").rows { return try decode(row, as: Bool.self) }
        return false
    }
}
