import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway PostgreSQL server for tests: Debian's `postgresql` binaries, a cluster
/// made by `initdb` in a temporary directory, trust authentication for loopback only,
/// listening on 127.0.0.1 on a free port (its unix socket in the same directory).
/// PostgreSQL refuses to run as root: under root (as CI runs) the directory belongs to
/// `nobody` and the server runs as `nobody`.
///
/// The server is started by a small shell that is its parent and its watchdog: when the
/// test process lets go of the shell's stdin (``stop()``, or the test process exiting or
/// dying however it dies), the shell stops the server (fast shutdown), waits for it and
/// removes the directory.
public final class PostgresCluster: @unchecked Sendable {
    public let host = "127.0.0.1"
    public let port: Int
    /// The superuser, trusted on loopback without a password.
    public let user = "cancelwatch"
    /// The directory holding the cluster, its socket and its log.
    public let directory: URL
    private let binaries: URL
    private let shell: ChildProcess
    private let watchdog: Pipe

    /// The test process's own cluster, started on first use and stopped when the process
    /// ends. The first call blocks while it starts (a second or two).
    public static func shared() throws -> PostgresCluster { try started.get() }

    private static let started: Result<PostgresCluster, PostgresClusterError> = {
        do {
            return .success(try PostgresCluster())
        } catch let error as PostgresClusterError {
            return .failure(error)
        } catch {
            return .failure(PostgresClusterError("PostgreSQL did not start: \(error)"))
        }
    }()

    /// Starts a cluster of its own (blocking: call it off Swift's pool). `durable`: commits
    /// wait for the disk as PostgreSQL's defaults have them (fsync, synchronous commit, full
    /// page writes); without it they are off, the cluster being thrown away.
    public init(durable: Bool = false) throws {
        binaries = try Self.findBinaries()
        // A port taken between choosing it and the server binding it: a new cluster on another one.
        var attempt = 0
        while true {
            attempt += 1
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-postgres-\(UUID().uuidString)")
            let watchdog = Pipe.closeOnExec()
            do {
                let port = try Self.freePort()
                let shell = try Self.start(
                    binaries: binaries, in: directory, port: port, user: user, durable: durable, watchdog: watchdog)
                let ready: Bool
                do {
                    ready = try Self.waitUntilReady(in: directory, binaries: binaries, port: port, user: user)
                } catch {
                    try? watchdog.fileHandleForWriting.close()
                    shell.waitUntilExit()
                    throw error
                }
                if ready {
                    (self.directory, self.port, self.shell, self.watchdog) = (directory, port, shell, watchdog)
                    return
                }
                let log = Self.logTail(of: directory)
                try? watchdog.fileHandleForWriting.close()
                shell.waitUntilExit()
                if attempt == 5 { throw PostgresClusterError("PostgreSQL did not start:\n\(log)") }
            } catch {
                try? watchdog.fileHandleForWriting.close()
                try? FileManager.default.removeItem(at: directory)
                throw error
            }
        }
    }

    /// Makes the cluster in `directory` and starts its server.
    private static func start(binaries: URL, in directory: URL, port: Int, user: String, durable: Bool, watchdog: Pipe) throws
        -> ChildProcess
    {
        let data = directory.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        if let account = serverAccount, chown(directory.path, account.uid, account.gid) != 0 {
            throw PostgresClusterError("cannot give \(directory.path) to nobody: \(String(cString: strerror(errno)))")
        }
        try run(
            asServer(binaries.appendingPathComponent("initdb").path),
            ["-D", data.path, "-U", user, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            in: directory, log: directory.appendingPathComponent("initdb.log"))
        // Loopback only: the unix socket and 127.0.0.1, nothing else.
        try "local all all trust\nhost all all 127.0.0.1/32 trust\n".write(
            to: data.appendingPathComponent("pg_hba.conf"), atomically: false, encoding: .utf8)
        defer { try? watchdog.fileHandleForReading.close() }
        return try startServer(
            binaries: binaries, data: data, directory: directory, port: port, durable: durable,
            stdin: watchdog.fileHandleForReading.fileDescriptor)
    }

    deinit { stop() }

    /// Stops the server and removes its directory; returns once both are done.
    public func stop() {
        try? watchdog.fileHandleForWriting.close()
        shell.waitUntilExit()
    }

    /// The server's process (the postmaster, parent of every other process of the cluster),
    /// from its `postmaster.pid`; nil once it has stopped.
    public var serverProcessID: Int32? {
        let file = directory.appendingPathComponent("data").appendingPathComponent("postmaster.pid")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first.flatMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// Creates an empty database of its own and returns its name (blocking).
    public func createDatabase() throws -> String {
        let name = "cw_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try client("createdb", [name])
        return name
    }

    /// Drops `database`, whoever is still connected to it (blocking).
    public func dropDatabase(_ database: String) throws {
        try client("dropdb", ["--force", database])
    }

    /// Runs `sql` in `database` with `psql` and returns its rows, one line each, columns
    /// joined by `|` (blocking).
    public func query(_ sql: String, database: String) throws -> [String] {
        try client("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql])
            .split(separator: "\n").map(String.init)
    }

    /// Runs one of PostgreSQL's client programs against the cluster; returns what it printed.
    @discardableResult
    private func client(_ program: String, _ arguments: [String]) throws -> String {
        let log = directory.appendingPathComponent("\(program)-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: log) }
        try Self.run(
            binaries.appendingPathComponent(program).path, ["-h", host, "-p", String(port), "-U", user] + arguments, in: nil, log: log)
        return try String(contentsOf: log, encoding: .utf8)
    }

    /// A `state:` URL for `database` (no TLS: the server has none).
    public func url(database: String) -> String { "postgres://\(user)@\(host):\(port)/\(database)?sslmode=disable" }

    /// The account the server runs as: `nobody` when the tests run as root, else none (the current user).
    private static let serverAccount: (uid: uid_t, gid: gid_t)? = {
        guard getuid() == 0 else { return nil }
        guard let entry = getpwnam("nobody") else { return (65534, 65534) }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }()

    /// `executable` as the server's account would run it: under root through `setpriv`.
    private static func asServer(_ executable: String) -> [String] {
        guard let account = serverAccount else { return [executable] }
        return ["/usr/bin/setpriv", "--reuid=\(account.uid)", "--regid=\(account.gid)", "--clear-groups", "--", executable]
    }

    /// The newest installed server's binaries (`/usr/lib/postgresql/<version>/bin`), or
    /// the directory of an `initdb` on the PATH.
    private static func findBinaries() throws -> URL {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap { name in Int(name).map { (version: $0, name: name) } }
            .sorted { $0.version > $1.version }
        for version in versions {
            let bin = URL(fileURLWithPath: root).appendingPathComponent(version.name).appendingPathComponent("bin")
            if FileManager.default.isExecutableFile(atPath: bin.appendingPathComponent("postgres").path) { return bin }
        }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let bin = URL(fileURLWithPath: String(directory))
            if FileManager.default.isExecutableFile(atPath: bin.appendingPathComponent("initdb").path),
                FileManager.default.isExecutableFile(atPath: bin.appendingPathComponent("postgres").path)
            {
                return bin
            }
        }
        throw PostgresClusterError("PostgreSQL's server is not installed (no initdb and postgres): apt-get install -y postgresql")
    }

    /// A loopback port nothing listens on now.
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw PostgresClusterError("no socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let found = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard found else { throw PostgresClusterError("no free port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The shell that starts the server, stops it when its stdin closes, waits for it and
    /// removes the directory once its stdin is closed. A server that exits by itself leaves
    /// a file `exited` in the directory. Unless `durable`, fsync is off.
    private static func startServer(binaries: URL, data: URL, directory: URL, port: Int, durable: Bool, stdin: Int32) throws
        -> ChildProcess
    {
        let unsynced = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        let server =
            asServer(binaries.appendingPathComponent("postgres").path) + [
                "-D", data.path, "-p", String(port), "-c", "listen_addresses=127.0.0.1",
                "-c", "unix_socket_directories=\(directory.path)", "-c", "max_connections=300",
            ] + (durable ? [] : unsynced)
        let script = """
            "$@" &
            server=$!
            exec 3<&0
            (cat <&3 >/dev/null; kill -INT "$server" 2>/dev/null) &
            watcher=$!
            wait "$server"
            echo "$?" > "$CW_POSTGRES_DIRECTORY/exited"
            wait "$watcher"
            rm -rf "$CW_POSTGRES_DIRECTORY"
            """
        let log = directory.appendingPathComponent("postgres.log").path
        let descriptor = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw PostgresClusterError("cannot write \(log): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        return try ChildProcess(
            executable: "/bin/sh", arguments: ["-c", script, "sh"] + server,
            environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C", "CW_POSTGRES_DIRECTORY": directory.path],
            directory: directory.path, standardInput: stdin, standardOutput: descriptor, standardError: descriptor)
    }

    /// Waits until the server accepts connections (`pg_isready`); false when it exited first.
    private static func waitUntilReady(in directory: URL, binaries: URL, port: Int, user: String) throws -> Bool {
        let limit = Date().addingTimeInterval(120)
        let isReady = binaries.appendingPathComponent("pg_isready").path
        let exited = directory.appendingPathComponent("exited").path
        while Date() < limit {
            guard !FileManager.default.fileExists(atPath: exited) else { return false }
            let probe = try ChildProcess(
                executable: isReady, arguments: ["-q", "-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", "postgres", "-t", "5"],
                environment: ["PATH": "/usr/bin:/bin"])
            probe.waitUntilExit()
            if probe.terminationStatus == 0 { return true }
            usleep(20_000)
        }
        throw PostgresClusterError("PostgreSQL did not accept connections within 120 s")
    }

    private static func run(_ command: [String], _ arguments: [String], in directory: URL?, log: URL) throws {
        try run(command[0], Array(command.dropFirst()) + arguments, in: directory, log: log)
    }

    private static func run(_ executable: String, _ arguments: [String], in directory: URL?, log: URL) throws {
        let descriptor = open(log.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw PostgresClusterError("cannot write \(log.path): \(String(cString: strerror(errno)))") }
        let process: ChildProcess
        do {
            defer { close(descriptor) }
            process = try ChildProcess(
                executable: executable, arguments: arguments, environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"],
                directory: directory?.path, standardOutput: descriptor, standardError: descriptor)
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw PostgresClusterError("\((executable as NSString).lastPathComponent) failed (\(process.terminationStatus)):\n\(output)")
        }
    }

    private static func logTail(of directory: URL) -> String {
        let text = (try? String(contentsOf: directory.appendingPathComponent("postgres.log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(20).joined(separator: "\n")
    }
}

public struct PostgresClusterError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
