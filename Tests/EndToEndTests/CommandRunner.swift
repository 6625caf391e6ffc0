import Foundation
import TestServers
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The outcome of a finished command.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// A running `cancelwatch` process whose output is collected as it comes.
final class RunningCommand: @unchecked Sendable {
    let process: ChildProcess
    private let lock = NSLock()
    private var out = Data()
    private var err = Data()
    /// Set when each pipe reached end of file (the process and its children closed it).
    private var outClosed = false
    private var errClosed = false

    /// `standardOutput` / `standardError`: where that stream goes instead of a pipe the test reads.
    init(
        _ arguments: [String], directory: URL? = nil, environment: [String: String] = [:], standardOutput: FileHandle? = nil,
        standardError: FileHandle? = nil
    ) throws {
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        // Pipes only for the streams the test reads, close-on-exec so that no other
        // test's child holds their write ends open.
        let outPipe = standardOutput == nil ? Pipe.closeOnExec() : nil
        let errPipe = standardError == nil ? Pipe.closeOnExec() : nil
        process = try ChildProcess(
            executable: CancelWatchBinary.url.path, arguments: arguments, environment: env, directory: directory?.path,
            standardOutput: standardOutput?.fileDescriptor ?? outPipe?.fileHandleForWriting.fileDescriptor,
            standardError: standardError?.fileDescriptor ?? errPipe?.fileHandleForWriting.fileDescriptor)
        try? outPipe?.fileHandleForWriting.close()
        try? errPipe?.fileHandleForWriting.close()
        // Each pipe read on a thread of its own with blocking reads until end of file (no
        // dispatch readability handlers, which could end a read early under load). The
        // threads read descriptors of their own: these pipes may go with this object first.
        let lock = self.lock
        if let outPipe {
            readToEndInBackground(outPipe.fileHandleForReading.fileDescriptor, name: "command-stdout") { [weak self] data in
                lock.withLock { self?.out.append(data) }
            } closed: {
                [weak self] in lock.withLock { self?.outClosed = true }
            }
        } else {
            outClosed = true
        }
        if let errPipe {
            readToEndInBackground(errPipe.fileHandleForReading.fileDescriptor, name: "command-stderr") { [weak self] data in
                lock.withLock { self?.err.append(data) }
            } closed: {
                [weak self] in lock.withLock { self?.errClosed = true }
            }
        } else {
            errClosed = true
        }
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    var stdout: String { lock.withLock { String(decoding: out, as: UTF8.self) } }
    var stderr: String { lock.withLock { String(decoding: err, as: UTF8.self) } }

    /// Waits (up to `timeout` seconds: long, as a loaded machine is slow, and a match ends it at once)
    /// until stdout contains a line matching `predicate`.
    func waitForLine(timeout: TimeInterval = 90, _ predicate: (String) -> Bool) async throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = stdout.split(separator: "\n").map(String.init).first(where: predicate) { return line }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CommandFailure("no matching line within \(timeout)s; stdout:\n\(stdout)\nstderr:\n\(stderr)")
    }

    /// Sends `signal` and waits (up to `timeout`) for the process to exit.
    @discardableResult
    func stop(signal: Int32 = SIGTERM, timeout: TimeInterval = 20) async throws -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        return try await wait(timeout: timeout)
    }

    func wait(timeout: TimeInterval = 60) async throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            guard Date() < deadline else {
                process.terminate()
                throw CommandFailure("the command did not exit within \(timeout)s; stderr:\n\(stderr)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        // Everything the process wrote is collected once both pipes reached end of file.
        let drained = Date().addingTimeInterval(10)
        while !lock.withLock({ outClosed && errClosed }) && Date() < drained {
            try await Task.sleep(for: .milliseconds(10))
        }
        return process.terminationStatus
    }

    /// Runs a command to completion.
    static func run(
        _ arguments: [String], directory: URL? = nil, environment: [String: String] = [:], timeout: TimeInterval = 60
    ) async throws -> CommandResult {
        let command = try RunningCommand(arguments, directory: directory, environment: environment)
        let status = try await command.wait(timeout: timeout)
        return CommandResult(status: status, stdout: command.stdout, stderr: command.stderr)
    }
}

struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A fresh temporary directory per test.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("cw-e2e-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// `cancelwatch simulate` on an ephemeral loopback port, stopped with the test.
final class SimulatorProcess: @unchecked Sendable {
    let command: RunningCommand
    let baseURL: String

    init(scenario: String? = nil, directory: URL) async throws {
        var arguments = ["simulate", "--port", "0", "--duration", "300s"]
        if let scenario { arguments += ["--scenario", scenario] }
        command = try RunningCommand(arguments, directory: directory)
        let line = try await command.waitForLine { $0.hasPrefix("cancelwatch simulator listening on ") }
        baseURL = String(line.dropFirst("cancelwatch simulator listening on ".count))
    }

    deinit {
        if command.process.isRunning { kill(command.process.processIdentifier, SIGTERM) }
    }

    /// GETs a control endpoint and parses the JSON answer.
    func get(_ path: String) async throws -> Any {
        let (data, response) = try await URLSession.shared.data(from: URL(string: baseURL + path)!)
        do {
            return try JSONSerialization.jsonObject(with: data)
        } catch {
            let length = (response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Content-Length") ?? "?"
            throw CommandFailure("GET \(path): \(data.count) bytes (Content-Length \(length)) are not JSON: \(String(decoding: data.suffix(200), as: UTF8.self))")
        }
    }

    /// POSTs JSON to a control endpoint.
    func post(_ path: String, json: String) async throws {
        var request = URLRequest(url: URL(string: baseURL + path)!)
        request.httpMethod = "POST"
        request.httpBody = Data(json.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let (data, response) = try await URLSession.shared.data(for: request)
        guard let http = response as? HTTPURLResponse, http.statusCode == 200 else {
            throw CommandFailure("POST \(path) failed: \(String(decoding: data, as: UTF8.self))")
        }
    }
}
