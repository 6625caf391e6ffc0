import CSQLite
import Foundation

/// A state-store failure, with the file and what to do about it.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// The source whose lease a commit was refused for (nothing written): another replica
    /// holds it now, or nobody does.
    public var lostLease: String?
    /// Another process runs as this replica now (same instance id): this one must stop.
    public var supplanted = false
    /// The database connection the call used is gone (closed, or closing): the next call makes a new one.
    var connectionLost = false
    /// The state file's lock is held by another process (a watcher runs).
    var lockHeld = false
    public init(_ message: String, lostLease: String? = nil, supplanted: Bool = false) {
        self.message = message
        self.lostLease = lostLease
        self.supplanted = supplanted
    }
    public var description: String { message }
}

/// One SQLite connection, serialized by a lock. Statements are short and local.
final class SQLiteDatabase: @unchecked Sendable {
    let path: String
    private var handle: OpaquePointer?
    private let lock = NSRecursiveLock()
    /// Whether `transaction` is running its body (guarded by `lock`).
    private var inTransaction = false
    private var statements: [String: OpaquePointer] = [:]
    /// One line per file found readable or writable by others, and made 0600.
    let warnings: [String]

    /// Opens (creating with mode 0600 when absent) the database at `path`. The file and
    /// SQLite's files beside it are made 0600 first when they are looser (a restored backup).
    init(path: String, readOnly: Bool = false) throws(StoreError) {
        self.path = path
        warnings = Self.restrictModes(of: path)
        let fileManager = FileManager.default
        if !readOnly && !fileManager.fileExists(atPath: path) {
            try Self.requireDirectory(of: path)
            let fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0o600)
            if fd < 0 && errno != EEXIST {
                throw StoreError("state file \(path): cannot create it: \(String(cString: strerror(errno)))")
            }
            if fd >= 0 { close(fd) }
        }
        let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX)
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        handle = db
        guard rc == SQLITE_OK else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "error \(rc)"
            sqlite3_close(db)
            handle = nil
            throw StoreError("state file \(path): cannot open it: \(message)")
        }
        sqlite3_busy_timeout(db, 5000)
    }

    /// The files SQLite keeps beside the database, and cancelwatch's lock file.
    static func companions(of path: String) -> [String] { [path + "-wal", path + "-shm", path + "-journal", path + ".lock"] }

    /// Takes away group and other permissions from the database at `path` (followed if it
    /// is a link) and from each of its companions that is a regular file; returns one
    /// warning per file that had them.
    static func restrictModes(of path: String) -> [String] {
        var warnings: [String] = []
        for (path, follow) in [(path, true)] + companions(of: path).map({ ($0, false) }) {
            var info = stat()
            let found = follow ? stat(path, &info) == 0 : lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
            guard found, info.st_mode & 0o077 != 0 else { continue }
            let was = String(info.st_mode & 0o777, radix: 8)
            let tightened = info.st_mode & 0o600
            if chmod(path, tightened) == 0 {
                warnings.append(
                    "\(path) was mode \(was), readable or writable by others; it is now \(String(tightened, radix: 8)) (owner only)")
            } else {
                warnings.append(
                    "\(path) is mode \(was), readable or writable by others, and cannot be restricted: \(String(cString: strerror(errno))); chmod 600 it")
            }
        }
        return warnings
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close(handle)
    }

    func withLock<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    func execute(_ sql: String) throws(StoreError) {
        try withLock { () throws(StoreError) in
            var error: UnsafeMutablePointer<CChar>?
            let rc = sqlite3_exec(handle, sql, nil, nil, &error)
            if rc != SQLITE_OK {
                let message = error.map { String(cString: $0) } ?? "error \(rc)"
                sqlite3_free(error)
                throw failure(rc, message)
            }
        }
    }

    /// Runs `body` in one transaction: all of it lands, or none of it. Inside another
    /// transaction of this connection, it is part of that one.
    func transaction<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try withLock { () throws(StoreError) -> T in
            if inTransaction { return try body() }
            inTransaction = true
            defer { inTransaction = false }
            try execute("BEGIN IMMEDIATE")
            do throws(StoreError) {
                let result = try body()
                try execute("COMMIT")
                return result
            } catch {
                try? execute("ROLLBACK")
                throw error
            }
        }
    }

    /// Runs a statement with `bindings`, calling `row` for each result row.
    func query(_ sql: String, _ bindings: [SQLiteValue] = [], row: (SQLiteRow) throws(StoreError) -> Void = { _ in })
        throws(StoreError)
    {
        try withLock { () throws(StoreError) in
            let statement = try prepared(sql)
            defer {
                sqlite3_reset(statement)
                sqlite3_clear_bindings(statement)
            }
            for (index, value) in bindings.enumerated() {
                let position = Int32(index + 1)
                let rc: Int32
                switch value {
                case .null: rc = sqlite3_bind_null(statement, position)
                case .integer(let i): rc = sqlite3_bind_int64(statement, position, i)
                case .real(let d):
                    // SQLite would store NaN as NULL (a next attempt read back as "due now").
                    guard d.isFinite else {
                        throw StoreError("state file \(path): value #\(position) is not a finite number (\(d)); nothing was written")
                    }
                    rc = sqlite3_bind_double(statement, position, d)
                case .text(let s):
                    var s = s
                    rc = s.withUTF8 { bindText(statement, position, $0) }
                }
                guard rc == SQLITE_OK else { throw failure(rc, lastMessage) }
            }
            while true {
                let rc = sqlite3_step(statement)
                if rc == SQLITE_DONE { return }
                guard rc == SQLITE_ROW else { throw failure(rc, lastMessage) }
                try row(SQLiteRow(statement: statement))
            }
        }
    }

    /// Binds text with its byte length: a NUL inside it is text, not its end.
    private func bindText(_ statement: OpaquePointer, _ position: Int32, _ bytes: UnsafeBufferPointer<UInt8>) -> Int32 {
        guard let length = Int32(exactly: bytes.count) else { return SQLITE_TOOBIG }
        // Never a null pointer, which SQLite would store as NULL rather than as empty text.
        let start = UnsafeRawPointer(bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(to: CChar.self)
        return cw_sqlite3_bind_text_copy(statement, position, start, length)
    }

    /// Throws naming the directory `path` would be in when it does not exist.
    static func requireDirectory(of path: String) throws(StoreError) {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty && !FileManager.default.fileExists(atPath: directory) {
            throw StoreError("state file \(path): the directory \(directory) does not exist")
        }
    }

    private var lastMessage: String { handle.map { String(cString: sqlite3_errmsg($0)) } ?? "no connection" }

    private func prepared(_ sql: String) throws(StoreError) -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw failure(rc, lastMessage) }
        statements[sql] = statement
        return statement
    }

    private func failure(_ rc: Int32, _ message: String) -> StoreError {
        switch rc & 0xFF {
        case SQLITE_NOTADB, SQLITE_CORRUPT:
            return StoreError(
                "state file \(path) is not a cancelwatch state file or is corrupt (\(message)); it was left untouched: move it aside to start with an empty state, or restore a backup")
        case SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM:
            return StoreError("state file \(path): cannot write it (\(message)); check its permissions")
        case SQLITE_FULL:
            return StoreError("state file \(path): the disk is full (\(message))")
        default:
            return StoreError("state file \(path): \(message)")
        }
    }
}

enum SQLiteValue {
    case null
    case integer(Int64)
    case real(Double)
    /// Text, bound with its byte length.
    case text(String)

    init(_ string: String?) { self = string.map { .text($0) } ?? .null }
    init(_ date: Date?) { self = date.map { .real($0.timeIntervalSince1970) } ?? .null }
}

struct SQLiteRow {
    let statement: OpaquePointer

    var columnCount: Int32 { sqlite3_column_count(statement) }

    /// A text column as stored, with its byte length (a NUL inside it is kept); nil for NULL.
    func text(_ column: Int32) -> String? {
        guard sqlite3_column_type(statement, column) != SQLITE_NULL, let pointer = sqlite3_column_text(statement, column) else {
            return nil
        }
        let count = Int(sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    func string(_ column: Int32) -> String { text(column) ?? "" }

    func integer(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }

    func date(_ column: Int32) -> Date? {
        guard sqlite3_column_type(statement, column) != SQLITE_NULL else { return nil }
        return Date(timeIntervalSince1970: sqlite3_column_double(statement, column))
    }
}
