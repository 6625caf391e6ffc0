import Foundation
import TestServers

/// A pipe the test gives a command as its stdout or stderr: the test holds the read end
/// and can close it (the writer then gets EPIPE) or leave it full and unread (the
/// writer's next write blocks). Both ends are close-on-exec, so no other child of the
/// test run holds them.
final class TestPipe: @unchecked Sendable {
    let readFD: Int32
    let writeFD: Int32
    private let lock = NSLock()
    private var readOpen = true
    private var writeOpen = true

    init() throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw CommandFailure("pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        readFD = fds[0]
        writeFD = fds[1]
    }

    deinit {
        closeReadEnd()
        closeWriteEnd()
    }

    /// The write end, for `Process.standardOutput` or `standardError` (not closed by the handle).
    var writeHandle: FileHandle { FileHandle(fileDescriptor: writeFD, closeOnDealloc: false) }

    /// Closes the test's copy of the write end (once the child has its own).
    func closeWriteEnd() {
        if lock.withLock({ () -> Bool in defer { writeOpen = false }; return writeOpen }) { close(writeFD) }
    }

    /// Closes the read end: every later write to the pipe fails with EPIPE.
    func closeReadEnd() {
        if lock.withLock({ () -> Bool in defer { readOpen = false }; return readOpen }) { close(readFD) }
    }

    /// The first bytes written to the pipe (a blocking read on a thread of its own).
    func readFirstBytes() async throws -> Data {
        let fd = readFD
        return try await offPool {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(fd, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { throw CommandFailure("the pipe ended before any byte came") }
                return Data(buffer[0..<count])
            }
        }
    }

    /// Fills the pipe's buffer, so that a writer's next write blocks until the test reads.
    /// The pipe is blocking again afterwards (the flag belongs to the pipe, not to this process).
    func fill() throws {
        let flags = fcntl(writeFD, F_GETFL)
        _ = fcntl(writeFD, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(writeFD, F_SETFL, flags) }
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 4096)
        while true {
            let written = write(writeFD, chunk, chunk.count)
            if written < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { break }
                throw CommandFailure("filling the pipe: \(String(cString: strerror(errno)))")
            }
        }
        // A write smaller than a page may still fit; fill byte by byte to the brim.
        while write(writeFD, chunk, 1) == 1 {}
    }

    /// Reads and drops everything written to the pipe until it ends (a thread of its own,
    /// on a duplicate of the read end: this pipe may be closed first).
    func drainInBackground() {
        readToEndInBackground(readFD, name: "drain", append: { _ in }, closed: {})
    }
}

/// `/dev/full`: every write fails with ENOSPC.
func fullDevice() throws -> FileHandle {
    guard let handle = FileHandle(forWritingAtPath: "/dev/full") else { throw CommandFailure("cannot open /dev/full") }
    return handle
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for a `listen:` the test must know
/// before the process logs it).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw CommandFailure("socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { throw CommandFailure("bind: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// The value of one sample in Prometheus text (`name{labels} value`, named without its
/// `instance` label), or nil when absent.
func metricValue(_ exposition: String, _ sample: String) -> Double? {
    for line in exposition.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), withoutInstance(line[..<space]) == sample else { continue }
        return Double(line[line.index(after: space)...])
    }
    return nil
}

/// A sample's `name{labels}` without the `instance` label that every series of `run`
/// carries first (PostgresOperationsTests checks it): the tests name series by the others.
func withoutInstance(_ sample: Substring) -> String {
    guard let label = sample.range(of: "{instance=\""), let end = sample[label.upperBound...].firstIndex(of: "\"") else {
        return String(sample)
    }
    let rest = sample[sample.index(after: end)...]
    if rest.hasPrefix(",") { return String(sample[..<label.lowerBound]) + "{" + rest.dropFirst() }
    return String(sample[..<label.lowerBound]) + rest.dropFirst()
}
